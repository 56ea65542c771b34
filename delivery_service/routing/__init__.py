"""Routing: orders onto postal routes (automatic and by hand), route coverage, and daily runs."""
