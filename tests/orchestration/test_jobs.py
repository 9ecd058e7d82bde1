"""People end to end on real faces: the pipeline names groups "Unknown person NNNNNN"; edits from the command line
and from the relabel job (the launchpad's) reach person_clusters, and survive re-running everything upstream."""

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from devtools.library import copy_portraits
from devtools.services import photo_assets_cli as cli
from photo_assets.storage import DataLayout, LabelLog

PEOPLE = ["person_01", "person_02", "person_03"]
PHOTOS_PER_PERSON = 4


pytestmark = pytest.mark.slow


def environment(root: Path) -> dict[str, str]:
    return {**os.environ, "DAGSTER_HOME": str(root / "home"), "PHOTO_ASSETS_DATA": str(root / "data"),
            "PHOTO_ASSETS_LIBRARY": str(root / "library")}


@pytest.fixture(scope="module")
def baseline(shared_dir: Path, tmp_path_factory) -> Path:
    """A library of 12 real portraits of 3 people, run through `photo-assets run` once for the module."""
    root = tmp_path_factory.mktemp("people")
    copy_portraits(shared_dir / "faces" / "deepface", root / "library", PEOPLE, slice(PHOTOS_PER_PERSON))
    result = cli(environment(root), "run")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return root


@pytest.fixture
def pipeline(baseline: Path, tmp_path: Path):
    """A private copy of the baseline (library, data, instance) for one test to edit: every test stands alone."""
    root = tmp_path / "people"
    shutil.copytree(baseline, root, symlinks=True)
    return root, environment(root)


def rename(env: dict, person: str, name: str) -> None:
    renamed = cli(env, "people", "rename", person, name)
    assert renamed.returncode == 0, renamed.stderr


def person_of_folder(data: Path) -> dict[str, set[str]]:
    """folder (true person) -> names of the people its faces were given."""
    faces = pq.read_table(DataLayout(data).people_faces)
    photos = pq.ParquetDataset(data / "photos").read(columns=["photo_id", "path"])
    folder = {row["photo_id"]: row["path"].split("/")[0] for row in photos.to_pylist()}
    found: dict[str, set[str]] = {}
    for row in faces.to_pylist():
        found.setdefault(folder[row["photo_id"]], set()).add(row["person_name"])
    return found


def execute(env: dict, job_name: str, **kwargs) -> dg.ExecuteInProcessResult:
    code = (
        "import json, sys\n"
        "import dagster as dg\n"
        "from photo_assets.definitions import defs\n"
        f"job = defs.resolve_job_def({job_name!r})\n"
        f"result = job.execute_in_process(instance=dg.DagsterInstance.get(), raise_on_error=False, **{kwargs!r})\n"
        "sys.exit(0 if result.success else 1)\n"
    )
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=1200)


def test_people_start_unknown_and_follow_edits_from_cli_and_launchpad(pipeline):
    root, env = pipeline
    data = root / "data"
    groups = person_of_folder(data)
    assert set(groups) == set(PEOPLE)
    assert all(len(names) == 1 and next(iter(names)).startswith("Unknown person ") for names in groups.values())
    assert len({next(iter(names)) for names in groups.values()}) == 3  # three people, not merged

    first_number = next(iter(groups["person_01"])).split()[-1]
    renamed = cli(env, "people", "rename", first_number, "Alice")
    assert renamed.returncode == 0, renamed.stderr
    listing = cli(env, "people", "list")
    assert "Alice" in listing.stdout

    second = next(iter(groups["person_02"]))
    relabel = execute(env, "relabel", run_config={"ops": {"apply_label_edit": {"config": {
        "operation": "RENAME", "person": second, "name": "Bob"}}}})
    assert relabel.returncode == 0, relabel.stderr[-3000:]

    assert execute(env, "update_people").returncode == 0
    groups = person_of_folder(data)
    assert groups["person_01"] == {"Alice"} and groups["person_02"] == {"Bob"}
    people = pq.read_table(DataLayout(data).people)
    assert sorted(people.filter(pc.invert(pc.starts_with(people["name"], "Unknown")))["name"].to_pylist()) == [
        "Alice", "Bob"]

    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        observed = instance.fetch_observations(dg.AssetKey("label_log"), limit=5).records
        assert len(observed) == 2  # one per edit: the CLI's and the job's
        latest = instance.get_latest_materialization_event(dg.AssetKey("person_clusters"))
        metadata = latest.asset_materialization.metadata
        assert metadata["named_people"].value == 2
        assert metadata["contact_sheet"].value.startswith("![people](data:image/png;base64,")


def test_edits_survive_rematerializing_every_batch_and_rebuilding_the_index(pipeline):
    root, env = pipeline
    data = root / "data"
    groups = person_of_folder(data)
    rename(env, next(iter(groups["person_02"])), "Bob")
    rename(env, next(iter(groups["person_01"])), "Alice")
    assert execute(env, "update_people").returncode == 0
    before = person_of_folder(data)
    assert before["person_01"] == {"Alice"} and before["person_02"] == {"Bob"}
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        batches = instance.get_dynamic_partitions("photo_batches")
    for batch in batches:
        assert execute(env, "analyse_batch", partition_key=batch).returncode == 0
    shutil.rmtree(data / "face_index")
    assert execute(env, "update_people").returncode == 0
    assert person_of_folder(data) == before

    undo = cli(env, "people", "undo")
    assert undo.returncode == 0 and "undid the latest rename" in undo.stdout
    assert execute(env, "update_people").returncode == 0
    after = person_of_folder(data)
    assert after["person_02"] == {"Bob"} and next(iter(after["person_01"])).startswith("Unknown person ")


def test_a_crash_mid_append_keeps_every_earlier_edit_and_is_reported(pipeline):
    """A process killed while appending an edit (its line half written) loses that edit only: the earlier edits
    hold, the torn line is reported (CLI and person_clusters' metadata), and the next edit lands after it."""
    root, env = pipeline
    data = root / "data"
    log_path = DataLayout(data).label_log
    groups = person_of_folder(data)
    rename(env, next(iter(groups["person_01"])), "Alice")
    edits_before = len(LabelLog(log_path).read().edits)
    third = next(iter(groups["person_03"]))
    half_line = json.dumps({"v": 1, "id": "torn", "op": "rename", "args": {"person_id": third, "name": "Torn"}})
    crash = (
        "import os, signal, sys\n"
        "fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)\n"
        "os.write(fd, sys.argv[2].encode()[: len(sys.argv[2]) // 2])\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    killed = subprocess.run([sys.executable, "-c", crash, str(log_path), half_line], timeout=60)
    assert killed.returncode == -signal.SIGKILL

    reading = LabelLog(log_path).read()
    assert len(reading.edits) == edits_before and len(reading.problems) == 1
    assert "torn" in cli(env, "people", "list").stderr  # the user is told, not left guessing
    rename(env, third, "Carol")
    assert execute(env, "update_people").returncode == 0
    after = person_of_folder(data)
    assert after["person_01"] == {"Alice"} and after["person_03"] == {"Carol"}
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        metadata = instance.get_latest_materialization_event(dg.AssetKey("person_clusters")).asset_materialization.metadata
        assert metadata["label_edits"].value == edits_before + 1
        (problem,) = metadata["label_log_problems"].value  # no longer the last line: shown as unreadable
        assert problem.startswith(f"line {edits_before + 1}: ") and problem.endswith("skipped")


def test_a_declined_suggestion_survives_rematerializing_every_batch(pipeline):
    """`people suggestions`, then `people not-same` on the first: after every batch and the people are materialized
    again, the pair is never suggested again, and person_clusters' checks pass."""
    root, env = pipeline
    listed = cli(env, "people", "suggestions", "--json")
    assert listed.returncode == 0, listed.stderr
    suggestions = [json.loads(line) for line in listed.stdout.splitlines()]
    assert suggestions, "three people of twelve portraits always leave something to ask"
    first = suggestions[0]
    declined = cli(env, "people", "not-same", first["person_id"], first["other_person_id"])
    assert declined.returncode == 0, declined.stderr
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        batches = instance.get_dynamic_partitions("photo_batches")
    for batch in batches:
        assert execute(env, "analyse_batch", partition_key=batch).returncode == 0
    assert execute(env, "update_people").returncode == 0
    again = [json.loads(line) for line in cli(env, "people", "suggestions", "--json").stdout.splitlines()]
    pair = {first["person_id"], first["other_person_id"]}
    assert all({row["person_id"], row["other_person_id"]} != pair for row in again)
    assert LabelLog(DataLayout(root / "data").label_log).state().are_not_same(*pair)
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        for name in ("every_person_is_plausible", "every_face_has_a_person"):
            key = dg.AssetCheckKey(dg.AssetKey("person_clusters"), name)
            latest = instance.event_log_storage.get_latest_asset_check_execution_by_key([key])[key]
            assert latest.status.value == "SUCCEEDED", name
