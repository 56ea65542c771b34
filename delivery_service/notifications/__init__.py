"""Messages to citizens about their order (SMS or Zalo ZNS), following the order event log
(docs/notifications.md)."""
