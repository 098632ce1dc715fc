"""Debian's Chromium driven by Playwright, for the dashboard and /docs tests.

The flags keep Chromium off the network this machine does not have; a missing browser or
Playwright skips with the reason, unless NPSLOOP_REQUIRE_BROWSER=1 makes that a failure.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("NPSLOOP_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"  # screenshots for people to look at


def playwright_or_skip() -> Any:
    """``sync_playwright``, or a skip (a failure in CI) saying what is missing."""
    reason = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        reason, sync_playwright = "Playwright for Python is not installed (pip install playwright)", None
    if reason is None and not (Path(CHROMIUM).exists() or shutil.which("chromium")):
        reason = f"no Chromium at {CHROMIUM}: run scripts/setup-system-packages"
    if reason:
        if os.environ.get("NPSLOOP_REQUIRE_BROWSER") == "1":
            pytest.fail(reason + " (NPSLOOP_REQUIRE_BROWSER=1)")
        pytest.skip(reason)
    return sync_playwright
