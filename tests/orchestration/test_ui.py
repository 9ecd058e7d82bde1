"""The UI as a user sees it: `dagster dev` on a small library, the sensor cuts a batch and its runs finish, then a
real headless Chromium loads the asset graph and an asset's page, and the GraphQL API reports the metadata."""

from __future__ import annotations

import json
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from devtools.library import write_photo
from devtools.services import (
    CHROMIUM,
    CHROMIUM_FLAGS,
    PROJECT_DIR,
    SQLITE_HOME_TEMPLATE,
    DagsterDev,
    dagster_dev,
    dagster_home,
)
from photo_assets import settings
from photo_assets.demo import build_demo_library
from photo_assets.storage.scanner import DEFAULT_BATCH_SIZE

pytestmark = pytest.mark.slow  # dagster dev and a browser

ARTIFACTS_DIR = PROJECT_DIR / "test-artifacts" / "ui"
# The assets whose pages are opened and photographed (a preview table; the faces' and the people's contact sheets,
# pictures); every asset listed must have been materialized before the browser starts. The demo's photos include
# portraits, so faces are found and person_clusters follows them by automation.
SHOWN_ASSETS = ["color_histograms", "face_detections", "person_clusters"]
MATERIALIZED_ASSETS = ["photos", "color_histograms", "face_detections", "person_clusters"]
SENSOR = "new_photos_sensor"
# A full batch is cut at the sensor's first tick; a smaller library would wait for its batch to age.
LIBRARY_FILES = DEFAULT_BATCH_SIZE
# Startup, one sensor tick, the batch's run, and the face and people runs that follow it, on 2 busy cores.
RUNS_TIMEOUT_S = 900
PAGE_TIMEOUT_MS = 60_000
TERMINAL_RUN_STATUSES = {"SUCCESS", "FAILURE", "CANCELED"}
METADATA_FIELDS = """
    __typename label
    ... on IntMetadataEntry { intValue }
    ... on FloatMetadataEntry { floatValue }
    ... on JsonMetadataEntry { jsonString }
    ... on MarkdownMetadataEntry { mdStr }
    ... on PathMetadataEntry { path }
    ... on TextMetadataEntry { text }
"""
LATEST_MATERIALIZATIONS = f"""
query Latest($keys: [AssetKeyInput!]) {{
  assetNodes(assetKeys: $keys) {{
    assetKey {{ path }}
    assetMaterializations(limit: 1) {{ partition runId metadataEntries {{ {METADATA_FIELDS} }} }}
    assetChecksOrError {{
      ... on AssetChecks {{ checks {{ name executionForLatestMaterialization {{ status }} }} }}
    }}
  }}
}}
"""
RUNS = "{ runsOrError { ... on Runs { results { runId status tags { key value } } } } }"


def make_library(root: Path) -> int:
    """The demo photos (real pictures, one broken file), topped up with tiny generated ones to one full batch."""
    build_demo_library(root)
    demo_files = sum(1 for path in root.rglob("*") if path.is_file())
    for index in range(LIBRARY_FILES - demo_files):
        write_photo(root / "filler" / f"photo_{index:04d}.jpg", seed=index, size=(64, 48))
    return LIBRARY_FILES


def wait_for_runs(dev: DagsterDev) -> list[dict]:
    """Until the sensor's runs exist and have all ended, and every listed asset has a materialization."""
    deadline = time.monotonic() + RUNS_TIMEOUT_S
    while time.monotonic() < deadline:
        runs = dev.graphql(RUNS)["runsOrError"]["results"]
        done = runs and all(run["status"] in TERMINAL_RUN_STATUSES for run in runs)
        if done and all(node["assetMaterializations"] for node in latest_materializations(dev).values()):
            return runs
        time.sleep(3)
    raise TimeoutError(f"runs not finished after {RUNS_TIMEOUT_S} s: {runs}\n{dev.log_tail()}")


def latest_materializations(dev: DagsterDev) -> dict[str, dict]:
    keys = [{"path": [asset]} for asset in MATERIALIZED_ASSETS]
    nodes = dev.graphql(LATEST_MATERIALIZATIONS, {"keys": keys})["assetNodes"]
    return {"/".join(node["assetKey"]["path"]): node for node in nodes}


def metadata_of(node: dict) -> dict[str, dict]:
    return {entry["label"]: entry for entry in node["assetMaterializations"][0]["metadataEntries"]}


@pytest.fixture(scope="module")
def ui(tmp_path_factory, browser_launcher) -> Iterator[tuple[DagsterDev, list[dict], int]]:
    """`dagster dev` with the project's SQLite dagster.yaml, after the sensor's runs have finished."""
    root = tmp_path_factory.mktemp("ui")
    files = make_library(root / "library")
    env = {
        "DAGSTER_HOME": str(dagster_home(root / "home", SQLITE_HOME_TEMPLATE)),
        settings.LIBRARY_ENV: str(root / "library"),
        settings.DATA_ENV: str(root / "data"),
    }
    with dagster_dev(env, root / "dagster-dev.log") as dev:
        runs = wait_for_runs(dev)
        dev.graphql("mutation { setNuxSeen }")  # the first-visit newsletter dialog would cover the page
        yield dev, runs, files


@pytest.fixture
def page(browser_launcher):
    with tempfile.TemporaryDirectory(prefix="photo-assets-chromium-") as profile:
        context = browser_launcher.launch_persistent_context(
            profile,
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1920, "height": 1500},  # the whole asset graph, fitted, with readable names
        )
        context.set_default_timeout(PAGE_TIMEOUT_MS)
        try:
            yield context.new_page()
        finally:
            context.close()


def screenshot(page, name: str) -> Path:
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS_DIR / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def test_sensor_runs_succeed_and_graphql_reports_their_metadata(ui):
    dev, runs, files = ui
    failed = [run for run in runs if run["status"] != "SUCCESS"]
    assert not failed, f"{failed}\n{dev.log_tail()}"
    assert any({"key": "dagster/sensor_name", "value": SENSOR} in run["tags"] for run in runs)

    nodes = latest_materializations(dev)
    photos = metadata_of(nodes["photos"])
    assert photos["dagster/row_count"]["intValue"] == files
    assert sum(json.loads(photos["errors_by_kind"]["jsonString"]).values()) == 1  # the demo's broken download
    assert photos["photos_with_gps"]["intValue"] >= 5
    colours = metadata_of(nodes["color_histograms"])
    assert colours["photos_coloured"]["intValue"] == files - 1
    assert colours["errors"]["intValue"] == 0
    assert "| photo_id | color | score | rank |" in colours["preview"]["mdStr"]
    people = metadata_of(nodes["person_clusters"])
    assert people["people"]["intValue"] >= 1
    assert people["contact_sheet"]["mdStr"].startswith("![people](data:image/png;base64,")
    for asset, node in nodes.items():
        metadata = metadata_of(node)
        # The row count the UI shows is the number of rows in the batch's Parquet file.
        assert metadata["dagster/row_count"]["intValue"] == pq.read_metadata(metadata["path"]["path"]).num_rows, asset
        checks = node["assetChecksOrError"]["checks"]
        assert checks and all(check["executionForLatestMaterialization"]["status"] == "SUCCEEDED" for check in checks)


def expand_all_groups(page) -> None:
    """Open every collapsed asset group of the graph. Expanding one re-lays the graph out under the pointer: click by
    event, one group at a time, and wait until it has opened before the next (a second click would close it)."""
    collapsed_groups = page.locator("[class*=collapsedGroupNodeContainer]")
    while collapsed_groups.count():
        group = collapsed_groups.first.inner_text().split("\n")[0]
        collapsed_groups.first.dispatch_event("click")
        collapsed_groups.filter(has_text=group).wait_for(state="detached")


def test_asset_graph_shows_every_asset(ui, page):
    dev, _, _ = ui
    page.goto(f"{dev.url}/asset-groups")
    page.locator("[class*=collapsedGroupNodeContainer]").first.wait_for()
    expand_all_groups(page)
    page.reload()  # a fresh load fits the whole graph in view; groups it did not keep open are opened again
    page.locator("foreignObject").first.wait_for()
    page.wait_for_timeout(1000)
    expand_all_groups(page)
    try:
        # Zoomed out to fit a large graph, nodes show their names only; their status is checked through GraphQL.
        for asset in MATERIALIZED_ASSETS:
            page.locator("foreignObject").get_by_text(asset, exact=True).first.wait_for()
    finally:
        screenshot(page, "asset-graph")


@pytest.mark.parametrize("asset", SHOWN_ASSETS)
def test_asset_page_shows_row_count_and_metadata(ui, page, asset):
    dev, _, _ = ui
    metadata = metadata_of(latest_materializations(dev)[asset])
    page.goto(f"{dev.url}/assets/{asset}")
    try:
        page.get_by_text("Row count", exact=True).wait_for()
        page.get_by_text(f"{metadata['dagster/row_count']['intValue']:,}", exact=True).first.wait_for()
        for label, entry in metadata.items():
            if entry["__typename"] == "MarkdownMetadataEntry":
                check_markdown_shown(page, asset, label, entry["mdStr"])
    finally:  # what the page showed, pass or fail
        screenshot(page, asset)


def check_markdown_shown(page, asset: str, label: str, markdown: str) -> None:
    """A Markdown entry is rendered in its row of the metadata table, or (when long) in the dialog its
    "[Show Markdown]" link opens: a table with its header, a picture decoded."""
    row = page.locator("tr").filter(has=page.get_by_text(label, exact=True)).first
    row.wait_for()
    behind_link = row.get_by_text("Show Markdown")
    shown = row
    if behind_link.count():
        behind_link.click()
        shown = page.get_by_role("dialog")
        shown.wait_for()
    for header in re.findall(r"^\| (\w+) \|", markdown, flags=re.MULTILINE)[:1]:  # a table's first header
        shown.locator("th", has_text=header).first.wait_for()
    pictures = len(re.findall(r"!\[[^\]]*\]\(data:image/", markdown))
    if pictures:
        images = shown.locator("img[src^='data:image/']")
        images.first.wait_for()
        assert images.count() == pictures, label
        loaded = images.evaluate_all("all => all.map(img => img.complete && img.naturalWidth > 0)")
        assert all(loaded), f"{label}: a picture did not decode"
    if shown is not row:
        screenshot(page, f"{asset}-{label}")
        shown.get_by_role("button", name="Close").click()
        shown.wait_for(state="hidden")
