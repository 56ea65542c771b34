"""The organisations: post offices, one-stop counters and postal delivery routes."""
