"""What the browser tests of the review pages share: a Chromium page, and the review app served on a free loopback
port (tests/review/browser.py has the helpers that are not fixtures)."""

from __future__ import annotations

import tempfile

import pytest

from devtools.services import CHROMIUM, CHROMIUM_FLAGS

PAGE_TIMEOUT_MS = 30_000
VIEWPORT = {"width": 1400, "height": 900}


@pytest.fixture
def page(browser_launcher):
    with tempfile.TemporaryDirectory(prefix="photo-assets-chromium-") as profile:
        context = browser_launcher.launch_persistent_context(
            profile, executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS, viewport=VIEWPORT,
        )  # fmt: skip
        context.set_default_timeout(PAGE_TIMEOUT_MS)
        try:
            page = context.new_page()
            page.on("dialog", lambda dialog: dialog.accept())  # "merge into …?" confirmations
            yield page
        finally:
            context.close()
