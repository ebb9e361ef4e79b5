"""The HTTP edge of Feather: parses, validates, authorises, responds.

``create_app`` is imported lazily so that modules with no Flask in them (the field
schema, the settings) can be used by the command line without loading Flask.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask

    from feather_server.settings import Settings

__all__ = ["create_app"]


def create_app(settings: Settings | None = None) -> Flask:
    """Build the Flask app; ``settings`` defaults to ``Settings.from_env()``."""
    from feather_server.app import create_app as build

    return build(settings)


def __getattr__(name: str) -> Any:
    raise AttributeError(f"module 'feather_server' has no attribute {name!r}")
