"""Addresses as people write them: an offline parser to unit codes, and its API."""
