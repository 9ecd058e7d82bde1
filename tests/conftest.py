"""Fixtures shared by the tests: the `../shared` corpora beside the checkout, the labelled face sets embedded once
per session, a throwaway Dagster home and a PostgreSQL database. The command-line helper is
devtools.services.photo_assets_cli."""

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


@pytest.fixture(scope="session")
def face_sets(shared_dir: Path):
    """lfw_dev and deepface's labelled faces, embedded once per test session by the real pipeline (MTCNN + FaceNet)."""
    from devtools.labelled_faces import FACE_SETS, embed_labelled_set

    return {name: embed_labelled_set(shared_dir, name) for name in FACE_SETS}


@pytest.fixture(scope="session")
def lfw(face_sets):
    return face_sets["lfw_dev"]


@pytest.fixture
def dagster_home_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A throwaway Dagster instance (the project's SQLite dagster.yaml) that this process and its children use."""
    from devtools.services import SQLITE_HOME_TEMPLATE, dagster_home

    home = dagster_home(tmp_path / "dagster_home", SQLITE_HOME_TEMPLATE)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


@pytest.fixture(scope="module")
def postgres():
    """The PostgreSQL server named by PHOTO_ASSETS_PG_* when given, else a throwaway cluster for the module."""
    from devtools.services import postgres_server

    with postgres_server() as server:
        yield server


@pytest.fixture
def postgres_database(postgres):
    """A new, empty database on that server for one test, dropped afterwards."""
    from devtools.services import fresh_database

    with fresh_database(postgres) as database:
        yield database


@pytest.fixture(scope="module")
def browser_launcher():
    """Debian's Chromium through Playwright (no browser download): a loud failure in CI when it is missing."""
    from devtools.services import CHROMIUM, unavailable

    if not CHROMIUM.is_file():
        unavailable(f"no browser: install Debian's chromium ({CHROMIUM}; scripts/ci_services.sh does)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright Python package is not installed (pip install playwright; no browser download)")
    with sync_playwright() as playwright:
        yield playwright.chromium


@pytest.fixture(scope="session")
def search_library(shared_dir: Path, tmp_path_factory) -> dict:
    """The library the search tests query (tests/search_library.py), built once a session: read-only to them."""
    from tests.search_library import build_search_library

    return build_search_library(shared_dir, tmp_path_factory.mktemp("search"))
