"""Signed webhooks to counter systems on every status change, fed from the order event log."""
