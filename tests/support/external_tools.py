"""Standards' own tools (AsyncAPI CLI, promtool) that the project installs outside pip.

A test that needs one and cannot find it skips with the reason; CI sets
NPSLOOP_REQUIRE_CONTRACT_TOOLS=1 so that a missing tool fails there instead of being skipped.
"""

from __future__ import annotations

import os

import pytest


def require_tool(reason: str) -> None:
    """Skip with ``reason`` (fail under NPSLOOP_REQUIRE_CONTRACT_TOOLS=1)."""
    if os.environ.get("NPSLOOP_REQUIRE_CONTRACT_TOOLS") == "1":
        pytest.fail(reason + " (NPSLOOP_REQUIRE_CONTRACT_TOOLS=1)")
    pytest.skip(reason)
