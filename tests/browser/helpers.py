"""What the browser journeys share: where Chromium is and how it starts, skipping without it,
submitting a page and taking a screenshot."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"


def skip_without_browser() -> None:
    """Skip the calling test module, saying why, when Chromium or Playwright is missing."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium; .ci/run "
                    "does)", allow_module_level=True)
    pytest.importorskip("playwright.sync_api",
                        reason="playwright is not installed (pip install -e '.[test]')")


def submit(page: Any, action: Any) -> None:
    """Run `action` (a key press, a click) and wait for the page it submits to."""
    with page.expect_navigation():
        action()


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
