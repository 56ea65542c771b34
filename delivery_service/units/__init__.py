"""Administrative units: provinces, districts (until 30 Jun 2025) and communes."""
