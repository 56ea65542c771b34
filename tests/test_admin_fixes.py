"""Administration pages, fixes of 7 Dec: one spelling of "hủy" in the Vietnamese texts."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "delivery_service"

# The old tone placement ("huỷ", the mark on the y) beside the one the pages use ("hủy", on the u).
OLD_HUY = re.compile("huỷ", re.I)


def test_cancel_is_spelt_huy_with_the_mark_on_the_u_everywhere():
    """The catalogue's msgstrs and the texts the administration pages carry in tr("…", "…") both say
    "Hủy"; "Huỷ" beside it looked like two different words on one page."""
    places = [PACKAGE / "translations" / "vi" / "LC_MESSAGES" / "messages.po",
              *PACKAGE.glob("templates/**/*.html"), *PACKAGE.glob("**/*.py")]
    found = [f"{path.relative_to(ROOT)}:{number}"
             for path in places
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if OLD_HUY.search(unicodedata.normalize("NFC", line))]
    assert not found, found
