"""Helpers of the review pages' browser tests: the app served in a thread, and whole-page screenshots."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from devtools.services import PROJECT_DIR, free_port

ARTIFACTS_DIR = PROJECT_DIR / "test-artifacts" / "review"
START_TIMEOUT_S = 30


@contextlib.contextmanager
def served(data: Path, library: Path, token: str, dagster_home: Path | None = None) -> Iterator[str]:
    """The review app over `data` on a free loopback port, by uvicorn in a thread: its URL, until the block ends."""
    import uvicorn

    from photo_assets.review.app import create_app

    port = free_port()
    app = create_app(data, library, token=token, port=port, dagster_home=dagster_home)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def screenshot(page, name: str) -> Path:
    """The whole page, once every picture on it has loaded (lazy ones too)."""
    page.evaluate(
        "Promise.all(Array.from(document.images).map(i => { i.loading = 'eager'; return i.decode().catch(() => 0); }))"
    )
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS_DIR / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
