"""Chalice's entry point, a shim: the app lives in chalice_app/, handlers in its handlers.py."""

from chalice_app.application import app

__all__ = ["app"]
