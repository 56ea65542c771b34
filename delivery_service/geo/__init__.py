"""Geocoding: where each order's address is, with the source and precision of every coordinate."""
