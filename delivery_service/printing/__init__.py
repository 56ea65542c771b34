"""Printing: shipping labels (PDF and ZPL), receipts, handover manifests and run sheets."""
