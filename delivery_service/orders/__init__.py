"""Delivery orders: intake, item identifiers, the status machine and the event log."""
