"""Pages for people: log-in, the counter desk. Server-rendered, Vietnamese first."""

from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    pass
