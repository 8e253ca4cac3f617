"""The dashboard's own assets: served by gate, nothing from a CDN."""

from pathlib import Path

STATIC_DIR = Path(__file__).resolve().parent
