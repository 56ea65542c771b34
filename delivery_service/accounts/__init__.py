"""Staff accounts, roles and scopes, and the API clients of counter systems."""
