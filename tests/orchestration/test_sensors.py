"""new_photos_sensor with build_sensor_context on a real library folder and a real (temporary) Dagster instance."""

import os
import shutil
from pathlib import Path

import dagster as dg
import pytest

from devtools.library import make_library, write_photo
from photo_assets.definitions import defs
from photo_assets.partitions import photo_batches
from photo_assets.resources import PhotoLibrary
from photo_assets.sensors import new_photos_sensor
from photo_assets.storage import DataLayout
from photo_assets.storage.manifests import read_manifest
from photo_assets.storage.scanner import LibraryScanner, ScanCursor


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


def tick(instance, photo_library: PhotoLibrary, cursor: str | None = None) -> dg.SensorResult:
    """One sensor evaluation, with its partition requests applied as the daemon would."""
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"photo_library": photo_library})
    result = new_photos_sensor(context)
    for request in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    return result


def library_resource(tmp_path: Path, **overrides) -> PhotoLibrary:
    return PhotoLibrary(library_dir=str(tmp_path / "library"), data_dir=str(tmp_path / "data"), **overrides)


def test_batches_are_cut_by_count_and_then_by_age(tmp_path, instance):
    make_library(tmp_path / "library", 5)
    result = tick(instance, library_resource(tmp_path, batch_size=2, max_wait_seconds=3600))
    assert len(result.run_requests) == 2  # two full batches; the fifth file waits for company
    keys = instance.get_dynamic_partitions(photo_batches.name)
    assert [request.partition_key for request in result.run_requests] == keys
    assert all(len(read_manifest(DataLayout(tmp_path / "data"), key)[1]) == 2 for key in keys)

    quiet = tick(instance, library_resource(tmp_path, batch_size=2, max_wait_seconds=3600), result.cursor)
    assert not quiet.run_requests and "1 files pending" in quiet.skip_reason.skip_message

    aged = tick(instance, library_resource(tmp_path, batch_size=2, max_wait_seconds=0), quiet.cursor)
    assert len(aged.run_requests) == 1
    assert len(instance.get_dynamic_partitions(photo_batches.name)) == 3


def test_a_big_first_scan_resumes_through_the_cursor(tmp_path):
    for folder in range(6):
        make_library(tmp_path / "library", 2, folder=f"album_{folder}")
    library = LibraryScanner(tmp_path / "library", DataLayout(tmp_path / "data"))
    report = library.scan(ScanCursor(), time_budget_s=1e-9)  # one directory per call
    calls = 1
    while not report.complete:
        report = library.scan(report.cursor, time_budget_s=1e-9)
        calls += 1
    assert calls == 7  # the root and six albums
    assert library.pending_count() == 12
    cursor = ScanCursor.from_json(report.cursor.to_json())
    assert library.scan(cursor).new_or_changed == 0  # a second walk finds nothing new


def test_deleted_file_refreshes_its_batch(tmp_path, instance):
    photos = make_library(tmp_path / "library", 3)
    first = tick(instance, library_resource(tmp_path, max_wait_seconds=0))
    (batch,) = [request.partition_key for request in first.run_requests]
    photos[1].unlink()
    second = tick(instance, library_resource(tmp_path, max_wait_seconds=0), first.cursor)
    assert [request.partition_key for request in second.run_requests] == [batch]
    assert second.dynamic_partitions_requests == []
    _, entries = read_manifest(DataLayout(tmp_path / "data"), batch)
    assert [entry.path for entry in entries] == ["photo_000.jpg", "photo_002.jpg"]


def test_links_out_of_the_library_are_not_followed(tmp_path, instance):
    make_library(tmp_path / "library", 1)
    outside = write_photo(tmp_path / "elsewhere" / "secret.jpg", seed=99)
    os.symlink(outside, tmp_path / "library" / "link_out.jpg")
    os.symlink(tmp_path / "elsewhere", tmp_path / "library" / "dir_out")
    os.symlink(tmp_path / "library", tmp_path / "library" / "loop")  # a directory loop
    os.symlink("self_loop", tmp_path / "library" / "self_loop")  # a link to itself
    tick(instance, library_resource(tmp_path, max_wait_seconds=0))
    (batch,) = instance.get_dynamic_partitions(photo_batches.name)
    paths = sorted(entry.path for entry in read_manifest(DataLayout(tmp_path / "data"), batch)[1])
    assert paths == ["photo_000.jpg"]  # nothing outside, no loop walked, the self-loop is not a file

    allowed = library_resource(tmp_path, max_wait_seconds=0, follow_external_links=True)
    shutil.rmtree(tmp_path / "data")
    with dg.instance_for_test() as fresh:
        tick(fresh, allowed)
        (batch,) = fresh.get_dynamic_partitions(photo_batches.name)
        paths = sorted(entry.path for entry in read_manifest(DataLayout(tmp_path / "data"), batch)[1])
    assert "link_out.jpg" in paths and "dir_out/secret.jpg" in paths


def test_moved_file_is_not_analysed_again(tmp_path, instance):
    photos = make_library(tmp_path / "library", 2)
    photo_library = library_resource(tmp_path, max_wait_seconds=0)
    job = defs.resolve_implicit_global_asset_job_def().get_subset(asset_selection={dg.AssetKey("photos"), dg.AssetKey("color_histograms")})
    first = tick(instance, photo_library)
    job.execute_in_process(instance=instance, partition_key=first.run_requests[0].partition_key,
                           resources={"photo_library": photo_library})
    (tmp_path / "library" / "moved").mkdir()
    photos[0].rename(tmp_path / "library" / "moved" / "renamed.jpg")
    second = tick(instance, photo_library, first.cursor)
    refreshed, new = second.run_requests[1].partition_key, second.run_requests[0].partition_key
    assert refreshed == first.run_requests[0].partition_key
    # The old batch is refreshed first: the moved photo's results leave it, and are still found by content hash.
    for key in (refreshed, new):
        result = job.execute_in_process(instance=instance, partition_key=key, resources={"photo_library": photo_library})
        assert result.success
    materialization = instance.get_latest_materialization_event(dg.AssetKey("color_histograms")).asset_materialization
    assert materialization.partition == new
    assert materialization.metadata["photos_reused"].value == 1
    assert materialization.metadata["photos_coloured"].value == 1
