"""The public tracking page: an item's status for whoever holds its code and the phone's last digits."""
