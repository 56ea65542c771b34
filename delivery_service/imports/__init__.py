"""Batch import of orders from CSV and XLSX files."""
