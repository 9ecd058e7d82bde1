"""The per-batch assets materialized with Dagster's `materialize` on a small real library."""

from pathlib import Path

import dagster as dg
import pyarrow.compute as pc
import pytest
from PIL import Image

from devtools.library import make_library
from photo_assets.analysis.images import GPS_IFD
from photo_assets.assets.batches import BACKFILL_POLICY
from photo_assets.assets.catalog import photos
from photo_assets.assets.colours import color_histograms
from photo_assets.assets.locations import locations
from photo_assets.partitions import photo_batches
from photo_assets.resources import GeoData, PhotoLibrary
from photo_assets.storage import DataLayout, DataStore
from photo_assets.storage.scanner import LibraryScanner

EIFFEL_TOWER = {1: "N", 2: (48.0, 51.0, 29.6), 3: "E", 4: (2.0, 17.0, 40.2)}
# How Dagster tells a run it covers a range of partitions (what a backfill under a multi-run policy launches).
RANGE_START_TAG, RANGE_END_TAG = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


@pytest.fixture
def batch(tmp_path: Path):
    library = tmp_path / "library"
    library.mkdir()
    exif = Image.Exif()
    exif.get_ifd(GPS_IFD).update(EIFFEL_TOWER)
    Image.new("RGB", (80, 60), (0, 0, 255)).save(library / "blue_paris.jpg", exif=exif)
    Image.new("RGB", (80, 60), (0, 200, 0)).save(library / "green.png")
    (library / "duplicate.png").write_bytes((library / "green.png").read_bytes())
    (library / "notes.txt").write_text("not a photo")
    scanner = LibraryScanner(library, DataLayout(tmp_path / "data"))
    scanner.scan()
    (key,) = scanner.cut_batches(max_wait_s=0)
    resources = {
        "photo_library": PhotoLibrary(library_dir=str(library), data_dir=str(tmp_path / "data")),
        "geodata": GeoData(),
    }
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(photo_batches.name, [key])
        yield instance, key, resources, DataStore(DataLayout(tmp_path / "data"))


def test_batch_assets_materialize_with_metadata_and_passing_checks(batch):
    instance, key, resources, store = batch
    result = dg.materialize(
        [photos, color_histograms, locations], partition_key=key, instance=instance, resources=resources
    )
    assert result.success
    checks = result.get_asset_check_evaluations()
    assert len(checks) == 3 and all(check.passed for check in checks)

    catalog = store.read_batch("photos", key)
    assert catalog.num_rows == 4
    assert catalog.filter(pc.is_valid(catalog["error"]))["path"].to_pylist() == ["notes.txt"]

    colours = store.read_batch("color_histograms", key)
    assert sorted(colours.filter(pc.equal(colours["rank"], 1))["color"].to_pylist()) == ["Blue", "Green"]

    (place,) = store.read_batch("locations", key).to_pylist()
    assert place["country_code"] == "FR" and place["city"].startswith("Paris") and place["city_distance_m"] < 2000
    assert place["country_source"] == "polygon"

    metadata = {
        event.asset_key.to_user_string(): event.step_materialization_data.materialization.metadata
        for event in result.get_asset_materialization_events()
    }
    assert metadata["photos"]["dagster/row_count"].value == 4
    assert metadata["photos"]["errors"].value == 1
    assert metadata["locations"]["photos_with_location"].value == 1
    assert metadata["locations"]["country_sources"].value == {"polygon": 1}
    assert metadata["color_histograms"]["photos_coloured"].value == 2  # the duplicate is analysed once


def test_rematerializing_a_batch_is_idempotent(batch):
    instance, key, resources, store = batch
    for _ in range(2):
        assert dg.materialize([photos, color_histograms], partition_key=key, instance=instance, resources=resources).success
    assert store.read_batch("photos", key).num_rows == 4
    assert store.read_batch("color_histograms", key).num_rows == 2
    second = instance.get_latest_materialization_event(dg.AssetKey("color_histograms")).asset_materialization
    assert second.metadata["photos_reused"].value == 2


def test_a_backfill_run_over_several_batches_writes_and_describes_each_batch(tmp_path: Path):
    """One run for a range of batches (as a backfill launches, BATCHES_PER_BACKFILL_RUN at a time): every batch gets
    its own file and its own materialization, with its own row count; the checks cover them all."""
    library, data = tmp_path / "library", tmp_path / "data"
    make_library(library, 7)
    scanner = LibraryScanner(library, DataLayout(data))
    scanner.scan()
    keys = scanner.cut_batches(batch_size=3, max_wait_s=0)
    assert len(keys) == 3
    resources = {"photo_library": PhotoLibrary(library_dir=str(library), data_dir=str(data)), "geodata": GeoData()}
    assert all(asset.backfill_policy == BACKFILL_POLICY for asset in (photos, color_histograms, locations))
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(photo_batches.name, keys)
        result = dg.materialize(
            [photos, color_histograms, locations], instance=instance, resources=resources,
            tags={RANGE_START_TAG: keys[0], RANGE_END_TAG: keys[-1]},
        )  # fmt: skip
        assert result.success
        materializations = [
            event.step_materialization_data.materialization for event in result.get_asset_materialization_events()
        ]
        rows = {
            (materialization.asset_key.to_user_string(), materialization.partition): materialization.metadata[
                "dagster/row_count"
            ].value
            for materialization in materializations
        }
        assert len(materializations) == 3 * len(keys)
        assert {key: rows[("photos", key)] for key in keys} == {keys[0]: 3, keys[1]: 3, keys[2]: 1}
        assert {key: rows[("color_histograms", key)] > 0 for key in keys} == dict.fromkeys(keys, True)
        assert all(DataStore(DataLayout(data)).read_batch("photos", key).num_rows == rows[("photos", key)] for key in keys)
        checks = result.get_asset_check_evaluations()
        assert len(checks) == 3 and all(check.passed for check in checks)
        assert {check.metadata["batches_checked"].value for check in checks} == {3}
        assert instance.get_materialized_partitions(dg.AssetKey("locations")) == set(keys)
