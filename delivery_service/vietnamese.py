"""Vietnamese text for people: the one sort order (ICU's Vietnamese collation) and the one search key.

Every list a person reads (provinces, communes, people) is sorted with ``sort_key``, so a list is in
the same order on every page and in every API answer: "Cà Mau" before "Cao Bằng", "Đ" after "D".
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Callable, Iterable
from typing import TypeVar

import icu  # PyICU: the CLDR Vietnamese tailoring, which plain UCA (pyuca) lacks

T = TypeVar("T")


@functools.cache
def _collator() -> icu.Collator:
    return icu.Collator.createInstance(icu.Locale("vi"))


def sort_key(text: str | None) -> bytes:
    """The key that sorts ``text`` in Vietnamese alphabetical order (ICU collation, locale ``vi``)."""
    return _collator().getSortKey(unicodedata.normalize("NFC", text or ""))


def sorted_vi(items: Iterable[T], key: Callable[[T], str] | None = None) -> list[T]:
    """``items`` in Vietnamese order of ``key(item)`` (the item itself by default)."""
    return sorted(items, key=lambda item: sort_key(key(item) if key else item))


def search_key(text: str | None) -> str:
    """Lower case, without diacritics, single spaces: "Ánh  Tuyết" → "anh tuyet".

    NFD does not decompose đ/Đ (a letter of its own, not d with a mark), so it is mapped explicitly.
    """
    folded = (text or "").casefold().replace("đ", "d")
    folded = "".join(ch for ch in unicodedata.normalize("NFD", folded) if not unicodedata.combining(ch))
    return " ".join(unicodedata.normalize("NFC", folded).split())
