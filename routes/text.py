"""Address text in the one form that rules, caches and look-ups compare."""

from __future__ import annotations

import re
import unicodedata

_PUNCT = re.compile(r"[^\w\s/]+")
_SPACES = re.compile(r"\s+")


def fold(text: str) -> str:
    """Lower case, no diacritics (đ → d), punctuation as spaces, single spaces.

    People type the same hamlet as "Thôn Phú Lộc", "thon phu loc" or "Thôn  Phú-Lộc"; all fold to
    "thon phu loc". Slashes stay, because "12/3" is a house number.
    """
    text = unicodedata.normalize("NFD", text.casefold().replace("đ", "d"))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return _SPACES.sub(" ", _PUNCT.sub(" ", text)).strip()


def words(text: str) -> tuple[str, ...]:
    """The folded words of ``text``."""
    return tuple(fold(text).split())
