"""The courier's phone app: the page shell, its service worker and its web manifest (the data comes
from the courier API, see docs/courier-api.md)."""
