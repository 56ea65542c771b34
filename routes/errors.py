"""The library's own exceptions: callers map them to their own errors (HTTP or otherwise)."""

from __future__ import annotations


class RoutesError(ValueError):
    """Input the routes library cannot work with; the message says what is wrong."""


class InvalidMatrix(RoutesError):
    """A distance matrix that is not square, has negative, NaN or infinite entries, or a bad start."""


class InvalidRoute(RoutesError):
    """A route definition that cannot be used (no commune covered, a backup that does not exist…)."""
