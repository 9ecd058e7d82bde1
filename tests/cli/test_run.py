"""`photo-assets run` end to end, as a user runs it: real libraries, a real (temporary) Dagster instance."""

import json
import os
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest

from devtools.library import make_library
from devtools.services import photo_assets_run
from photo_assets.storage import DataLayout

pytestmark = pytest.mark.slow  # `photo-assets run` subprocesses


def files_under(root: Path) -> set[str]:
    return {
        os.fsdecode(path.relative_to(root)).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        for path in root.rglob("*")
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(root).parts)
    }


def test_run_on_gps_corpus_catalogues_colours_and_reruns_only_new_files(shared_dir: Path, tmp_path: Path):
    library = shared_dir / "corpus" / "gps"
    first = photo_assets_run(library, tmp_path / "data", tmp_path / "home", "--without-faces")
    assert first.returncode == 0, first.stdout + first.stderr
    assert not (tmp_path / "data" / "face_detections").exists()
    photos = ds.dataset(tmp_path / "data" / "photos").to_table()
    assert set(photos["path"].to_pylist()) == files_under(library)
    colours = ds.dataset(tmp_path / "data" / "color_histograms").to_table()
    fine = photos.filter(pc.is_null(photos["error"]))
    assert set(colours["photo_id"].to_pylist()) == set(fine["photo_id"].to_pylist())

    again = photo_assets_run(library, tmp_path / "data", tmp_path / "home", "--without-faces")
    assert again.returncode == 0 and "0 new batches" in again.stdout


def test_run_after_adding_files_analyses_only_the_new_ones(tmp_path: Path):
    library = tmp_path / "library"
    make_library(library, 3)
    assert photo_assets_run(library, tmp_path / "data", tmp_path / "home", "--without-faces").returncode == 0
    make_library(library, 2, folder="new")
    second = photo_assets_run(library, tmp_path / "data", tmp_path / "home", "--without-faces")
    assert second.returncode == 0
    assert "1 new batches" in second.stdout and "photos 2" in second.stdout
    assert ds.dataset(tmp_path / "data" / "photos").count_rows() == 5


def test_run_on_mixed_corpus_accounts_for_every_file(shared_dir: Path, tmp_path: Path):
    library = shared_dir / "corpus" / "mixed"
    result = photo_assets_run(library, tmp_path / "data", tmp_path / "home")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    photos = ds.dataset(tmp_path / "data" / "photos").to_table()
    assert sorted(photos["path"].to_pylist()) == sorted(files_under(library))
    failed = photos.filter(pc.is_valid(photos["error"]))
    assert failed.num_rows > 600  # the fuzzed files
    assert all(kind for kind in failed["error_kind"].to_pylist())
    fine = photos.filter(pc.is_null(photos["error"]))
    assert fine.num_rows > 250
    colours = ds.dataset(tmp_path / "data" / "color_histograms").to_table()
    assert set(fine["photo_id"].to_pylist()) <= set(colours["photo_id"].to_pylist())


def test_run_on_the_face_photos_finds_and_embeds_a_face_in_every_identity_photo(shared_dir: Path, tmp_path: Path):
    library = shared_dir / "faces" / "deepface"
    result = photo_assets_run(library, tmp_path / "data", tmp_path / "home")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    identities = json.loads((library / "identities.json").read_text())
    listed = {name for names in identities.values() for name in names}
    photos = ds.dataset(tmp_path / "data" / "photos").to_table(columns=["photo_id", "path"])
    path_of = dict(zip(photos["photo_id"].to_pylist(), photos["path"].to_pylist()))
    detections = ds.dataset(tmp_path / "data" / "face_detections").to_table()
    embeddings = ds.dataset(tmp_path / "data" / "face_embeddings").to_table()
    assert listed <= {path_of[photo_id] for photo_id in detections["photo_id"].to_pylist()}
    assert set(embeddings["face_id"].to_pylist()) == set(detections["face_id"].to_pylist())
    assert embeddings.schema.field("embedding").type == pa.list_(pa.float32(), 128)
    layout = DataLayout(tmp_path / "data")
    assert all(layout.face_crop(face_id).is_file() for face_id in detections["face_id"].to_pylist())

    with dg.DagsterInstance.from_config(str(tmp_path / "home")) as instance:
        event = instance.get_latest_materialization_event(dg.AssetKey("face_detections"))
        metadata = event.asset_materialization.metadata
        assert metadata["photos_with_faces"].value >= len(listed)
        assert metadata["contact_sheet"].value.startswith("![faces found](data:image/png;base64,")
        checks = [
            instance.event_log_storage.get_latest_asset_check_execution_by_key([key])[key]
            for key in (dg.AssetCheckKey(dg.AssetKey("face_embeddings"), "embeddings_have_128_finite_values"),)
        ]
        assert all(check.status.value == "SUCCEEDED" for check in checks)


def test_run_after_a_rename_writes_the_name_into_the_sidecars(shared_dir: Path, tmp_path: Path):
    """As a user without the UI: `run`, `people rename`, `run` again — exiftool, a reader no one here wrote, finds the
    name in the MWG face region of that person's photos' sidecars."""
    import shutil
    import subprocess

    from devtools.library import copy_portraits
    from devtools.services import photo_assets_cli, unavailable

    if shutil.which("exiftool") is None:
        unavailable("exiftool missing: scripts/ci_services.sh installs Debian's libimage-exiftool-perl")

    copy_portraits(shared_dir / "faces" / "deepface", tmp_path / "library", ["person_01"], slice(3))
    library, data, home = tmp_path / "library", tmp_path / "data", tmp_path / "home"
    assert photo_assets_run(library, data, home).returncode == 0
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    (person,) = [json.loads(line)["person_id"] for line in
                 photo_assets_cli(env, "people", "list", "--json", "--data", str(data)).stdout.splitlines()]
    assert photo_assets_cli(env, "people", "rename", person, "Alice", "--data", str(data)).returncode == 0
    again = photo_assets_run(library, data, home)
    assert again.returncode == 0 and "sidecars" in again.stdout, again.stdout + again.stderr
    sidecars = sorted((data / "xmp_sidecars").rglob("*.xmp"))
    assert len(sidecars) == 3
    read = json.loads(subprocess.run(["exiftool", "-j", "-RegionName", "-RegionType", *map(str, sidecars)],
                                     capture_output=True, text=True, check=True).stdout)
    assert all(entry["RegionName"] == "Alice" and entry["RegionType"] == "Face" for entry in read)
