"""Personal data of citizens (Decree 13/2023/NĐ-CP; Law on Personal Data Protection, 2026): who opened
whose data (``access``), erasure after the retention period (``erasure``, run daily by ``jobs``), and
everything held about one person for their request (``export``). docs/privacy.md says why."""

# What replaces a name, an address or a note once erased (NFC; fits every column it goes into but a
# phone's 16 characters, which take PHONE_PLACEHOLDER).
PLACEHOLDER = "(đã xoá / erased)"
PHONE_PLACEHOLDER = "(đã xoá)"
