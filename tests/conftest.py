"""Fixtures shared by the tests: the `../shared` corpora beside the checkout, and a throwaway Dagster home."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DIR = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """`../shared` beside the checkout: a loud failure in CI, a clear skip elsewhere."""
    if not SHARED_DIR.is_dir():
        message = f"the shared corpora are missing: expected {SHARED_DIR} beside the checkout"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return SHARED_DIR
