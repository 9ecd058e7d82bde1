"""The production issue's concurrency fault: a backfill running while the sensor adds new batches and the user
relabels people loses nothing and duplicates nothing.

A library of real portraits of three people is analysed from the command line (two batches, faces, people); then
`dagster dev` (webserver, daemon, sensors, declarative automation, run queue, pools) takes over, and three things
happen at once: a backfill of colours and faces over every existing batch is launched through GraphQL (what the UI's
"Materialize" does), new portraits, photos and a broken file arrive just before the sensor's tick cuts them into a
new batch, and the user renames, undoes and renames again from the command line and from the relabel job. Once
everything has settled (judged by what was made, not by a quiet moment): every file is in one batch and has one
catalog row, every batch of every per-batch asset is materialized with each colour, face scan and face exactly once,
no run failed, every edit is in the label log, which reads cleanly, and person_clusters, re-run by automation after
the last edit, shows each person's faces, old and new, together under the name the edits left them with.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from devtools.library import copy_portraits, write_photo
from devtools.services import (
    LAUNCH_BACKFILL,
    SQLITE_HOME_TEMPLATE,
    DagsterDev,
    dagster_dev,
    dagster_home,
    photo_assets_cli,
)
from photo_assets import settings
from photo_assets.analysis.labels import Op
from photo_assets.sensors import new_photos_sensor
from photo_assets.storage import DataLayout, LabelLog
from photo_assets.storage.layout import ADDED_FACES_STEM, FACE_SCANS

pytestmark = pytest.mark.slow  # dagster dev and concurrent pipeline runs

# Three people the face model tells apart reliably (tests/orchestration/test_jobs.py clusters the same ones).
PEOPLE = ["person_01", "person_02", "person_03"]
# Portraits per person before the storm: enough for each to form a group of its own.
FIRST_PORTRAITS = 3
# Photos without faces beside the portraits: cheap to analyse, they make colour and catalog rows of their own.
GENERATED_PER_WAVE = 3
# Every per-batch asset: what the sensor's runs (catalog, analysis) and the automation's (faces) make per batch.
PER_BATCH_ASSETS = ["photos", "color_histograms", "locations", "face_detections", "face_embeddings",
                    "object_detections"]
# What the backfill re-materializes; faces is one multi-asset that cannot be split, so all three of its assets go.
BACKFILLED_ASSETS = ["color_histograms", "face_detections", "face_embeddings", "object_detections"]
WATCHED_ASSETS = [*PER_BATCH_ASSETS, "person_clusters"]
# Where `dagster dev` serves the project (pyproject's code_location_name; a Definitions' repository is nameless).
REPOSITORY = {"repositoryLocationName": "photo_assets", "repositoryName": "__repository__"}
# `dagster dev` finds the library analysed already; only a failure waits this long.
STARTUP_TIMEOUT_S = 300
# The backfill, the new batch's runs (catalog, then faces: model load and ~1-2 s a portrait), the relabel run and
# the people runs that follow the edits, on 2 busy cores. Only a failure waits this long.
SETTLE_TIMEOUT_S = 900
POLL_INTERVAL_S = 3
# `photo-assets run` loads the face models and analyses every portrait of the first batch.
CLI_TIMEOUT_S = 900
# The storm starts when the sensor's next tick is this many seconds away: far enough to place the files first, near
# enough that the backfill launched with them is still running at that tick (its run alone takes longer to start).
NEXT_TICK_WINDOW_S = (8, 25)
SENSOR = new_photos_sensor.name
SENSOR_INTERVAL_S = new_photos_sensor.minimum_interval_seconds
TERMINAL_RUN_STATUSES = {"SUCCESS", "FAILURE", "CANCELED"}
BACKFILL_DONE_STATUSES = {"COMPLETED", "COMPLETED_SUCCESS"}
BACKFILL_RUNNING_STATUSES = {"REQUESTED"}

STATE = """
query State($keys: [AssetKeyInput!]) {
  assetNodes(assetKeys: $keys) {
    assetKey { path }
    partitionKeys
    partitionStats { numMaterialized numPartitions numFailed numMaterializing }
    assetMaterializations(limit: 1) { timestamp runId partition }
  }
  runsOrError {
    ... on Runs { results { runId status jobName creationTime startTime endTime tags { key value } } }
  }
}
"""
SENSOR_TICKS = """
query Ticks($selector: SensorSelector!) {
  sensorOrError(sensorSelector: $selector) { ... on Sensor { sensorState { ticks(limit: 1) { timestamp } } } }
}
"""
RUNS_IN_FLIGHT = """
{ runsOrError(filter: {statuses: [QUEUED, NOT_STARTED, STARTING, STARTED]}) { ... on Runs { results { runId } } } }
"""
BACKFILL = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    ... on PartitionBackfill {
      status timestamp endTimestamp partitionNames
      assetBackfillData {
        assetBackfillStatuses {
          ... on AssetPartitionsStatusCounts {
            assetKey { path } numPartitionsTargeted numPartitionsMaterialized numPartitionsFailed
          }
        }
      }
    }
  }
}
"""
LAUNCH_RUN = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}
"""


# -- the library -----------------------------------------------------------------------------------------------------


def place(source: Path, target: Path) -> None:
    """Copy under a hidden name, then rename: the sensor (which skips dot-files) sees the whole file or nothing, as
    with an import tool. A file caught half-copied is another test's subject (the batch is re-cut when it grows)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    hidden = target.with_name(f".{target.name}.part")
    shutil.copyfile(source, hidden)
    os.replace(hidden, target)


def add_generated(library: Path, wave: str, first_seed: int) -> None:
    for seed in range(first_seed, first_seed + GENERATED_PER_WAVE):
        made = write_photo(library.parent / "staging" / wave / f"generated_{seed:03d}.jpg", seed=seed)
        place(made, library / "generated" / wave / made.name)


def add_portraits(library: Path, source: Path, which: slice) -> None:
    copy_portraits(source, library, PEOPLE, which, copy=place)


def add_broken(library: Path, staging: Path) -> None:
    """A truncated download: catalogued with an error, never coloured or scanned for faces."""
    whole = write_photo(staging / "whole.jpg", seed=999, size=(320, 240)).read_bytes()
    broken = staging / "broken_download.jpg"
    broken.write_bytes(whole[: len(whole) // 3])
    place(broken, library / "misc" / broken.name)


def library_files(library: Path) -> set[str]:
    return {
        str(path.relative_to(library))
        for path in library.rglob("*")
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(library).parts)
    }


def manifests(data: Path) -> dict[str, list[str]]:
    """batch key -> the files its manifest lists (as the sensor or `photo-assets run` cut them)."""
    return {
        path.stem: [entry["path"] for entry in json.loads(path.read_text())["files"]]
        for path in sorted((data / "batches").glob("*.json"))
    }


# -- talking to the running pipeline ---------------------------------------------------------------------------------


@dataclass
class Snapshot:
    nodes: dict[str, dict]
    runs: list[dict]

    @property
    def partitions(self) -> set[str]:
        return set(self.nodes["photos"]["partitionKeys"])

    def latest(self, asset: str) -> dict | None:
        events = self.nodes[asset]["assetMaterializations"]
        return events[0] if events else None

    def run(self, run_id: str) -> dict:
        return next(run for run in self.runs if run["runId"] == run_id)


def snapshot(dev: DagsterDev) -> Snapshot:
    answer = dev.graphql(STATE, {"keys": [{"path": [asset]} for asset in WATCHED_ASSETS]})
    nodes = {"/".join(node["assetKey"]["path"]): node for node in answer["assetNodes"]}
    return Snapshot(nodes, answer["runsOrError"]["results"])


def tag(run: dict, key: str) -> str | None:
    return next((entry["value"] for entry in run["tags"] if entry["key"] == key), None)


def backfill_state(dev: DagsterDev, backfill_id: str) -> dict:
    return dev.graphql(BACKFILL, {"id": backfill_id})["partitionBackfillOrError"]


def last_edit_time(data: Path) -> float:
    edits = LabelLog(DataLayout(data).label_log).read().edits
    return max((datetime.fromisoformat(edit.time).timestamp() for edit in edits), default=0.0)


def unsettled(dev: DagsterDev, library: Path, data: Path, backfill_id: str | None = None) -> tuple[list[str], Snapshot]:
    """Why the pipeline has not caught up yet (nothing: it has), judged by what it made, not by a quiet moment: a
    quiet moment also comes between a batch's catalog run and the face run automation asks for next."""
    state = snapshot(dev)
    reasons = []
    cut = manifests(data)
    uncut = library_files(library) - {path for files in cut.values() for path in files}
    if uncut:
        reasons.append(f"{len(uncut)} files in no batch yet")
    if set(cut) - state.partitions:
        reasons.append(f"batches not yet partitions: {sorted(set(cut) - state.partitions)}")
    active = [f"{run['jobName']}:{run['status']}" for run in state.runs if run["status"] not in TERMINAL_RUN_STATUSES]
    if active:
        reasons.append(f"runs not finished: {active}")
    if backfill_id and backfill_state(dev, backfill_id)["status"] in BACKFILL_RUNNING_STATUSES:
        reasons.append("backfill in progress")
    for asset in PER_BATCH_ASSETS:
        stats = state.nodes[asset]["partitionStats"]
        if stats["numMaterialized"] < len(cut):
            reasons.append(f"{asset}: {stats['numMaterialized']} of {len(cut)} batches materialized")
    people = state.latest("person_clusters")
    if people is None:
        reasons.append("person_clusters never materialized")
    else:
        # The people run must have started after its last inputs arrived: one that began earlier read older ones.
        started = state.run(people["runId"])["startTime"] or 0.0
        embedded = state.latest("face_embeddings")
        if embedded and started < int(embedded["timestamp"]) / 1000:
            reasons.append("person_clusters started before the latest face embeddings")
        if started < last_edit_time(data):
            reasons.append("person_clusters started before the latest label edit")
    return reasons, state


def wait_until_settled(
    dev: DagsterDev, library: Path, data: Path, timeout_s: float, backfill_id: str | None = None
) -> Snapshot:
    deadline = time.monotonic() + timeout_s
    while True:
        reasons, state = unsettled(dev, library, data, backfill_id)
        if not reasons:
            return state
        if time.monotonic() > deadline:
            runs = [(run["jobName"], run["status"], tag(run, "dagster/partition")) for run in state.runs]
            raise TimeoutError(f"not settled after {timeout_s} s: {reasons}\nruns: {runs}\n{dev.log_tail(8000)}")
        time.sleep(POLL_INTERVAL_S)


def wait_until_next_sensor_tick_is_near(dev: DagsterDev) -> None:
    """Until the sensor's next tick (a minimum interval after its latest) is NEXT_TICK_WINDOW_S away."""
    selector = {**REPOSITORY, "sensorName": SENSOR}
    deadline = time.monotonic() + 3 * SENSOR_INTERVAL_S
    while time.monotonic() < deadline:
        ticks = dev.graphql(SENSOR_TICKS, {"selector": selector})["sensorOrError"]["sensorState"]["ticks"]
        if ticks:
            next_tick_in = ticks[0]["timestamp"] + SENSOR_INTERVAL_S - time.time()
            if NEXT_TICK_WINDOW_S[0] <= next_tick_in <= NEXT_TICK_WINDOW_S[1]:
                return
        time.sleep(0.5)
    raise TimeoutError(f"the sensor {SENSOR} did not tick every {SENSOR_INTERVAL_S} s:\n{dev.log_tail()}")


@dataclass(frozen=True)
class Moment:
    at: float  # seconds since the storm began
    what: str
    backfill: str  # the backfill's status then
    runs_in_flight: int
    edit: bool


class Timeline:
    """What happened when during the storm, with what was in flight: printed, and shown by failing assertions."""

    def __init__(self, dev: DagsterDev):
        self.dev, self.started, self.backfill_id, self.moments = dev, time.time(), "", []

    def note(self, what: str, edit: bool = False) -> None:
        status = backfill_state(self.dev, self.backfill_id)["status"] if self.backfill_id else "-"
        in_flight = len(self.dev.graphql(RUNS_IN_FLIGHT)["runsOrError"]["results"])
        self.moments.append(Moment(round(time.time() - self.started, 1), what, status, in_flight, edit))

    def __str__(self) -> str:
        return "\n".join(
            f"{moment.at:7.1f} s  {moment.what}  (backfill {moment.backfill}, {moment.runs_in_flight} runs in flight)"
            for moment in self.moments
        )


def launch_backfill(dev: DagsterDev, partitions: list[str]) -> str:
    params = {"partitionNames": partitions, "assetSelection": [{"path": [asset]} for asset in BACKFILLED_ASSETS]}
    launched = dev.graphql(LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    return launched["backfillId"]


def launch_relabel(dev: DagsterDev, config: dict) -> str:
    """The relabel job from the launchpad: the same edits as the command line, in a run of its own."""
    params = {
        "selector": {**REPOSITORY, "jobName": "relabel"},
        "runConfigData": {"ops": {"apply_label_edit": {"config": config}}},
    }
    launched = dev.graphql(LAUNCH_RUN, {"params": params})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    return launched["run"]["runId"]


def photo_assets(env: dict, *args: str) -> subprocess.CompletedProcess:
    """The `photo-assets` command line, as the user runs it beside the running pipeline."""
    result = photo_assets_cli(env, *args, timeout=CLI_TIMEOUT_S)
    assert result.returncode == 0, f"photo-assets {' '.join(args)}: {result.stdout}{result.stderr[-3000:]}"
    return result


# -- what the data says ----------------------------------------------------------------------------------------------


def folder_of_photo(data: Path) -> dict[str, str]:
    """photo_id -> the library folder (the true person, for portraits) its file is in."""
    photos = pq.ParquetDataset(data / "photos").read(columns=["photo_id", "path"])
    return {row["photo_id"]: row["path"].split("/")[0] for row in photos.to_pylist() if row["photo_id"]}


def people_by_folder(data: Path) -> dict[str, set[tuple[str, str]]]:
    """folder -> the (person_id, person_name) pairs its faces were given by the latest person_clusters."""
    folder = folder_of_photo(data)
    found: dict[str, set[tuple[str, str]]] = {}
    for row in pq.read_table(DataLayout(data).people_faces).to_pylist():
        found.setdefault(folder[row["photo_id"]], set()).add((row["person_id"], row["person_name"]))
    return found


def read_asset(data: Path, asset: str) -> pa.Table:
    return pq.ParquetDataset(data / asset).read()


# -- the scenario ----------------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    library: Path
    data: Path
    env: dict[str, str]
    before: dict[str, set[tuple[str, str]]]  # people by folder before the storm
    first_batches: list[str]
    state: Snapshot
    backfill: dict
    backfill_runs: list[dict]
    relabel_run: str
    edits_made: int
    timeline: list[Moment]


@pytest.fixture(scope="module")
def storm(shared_dir: Path, tmp_path_factory) -> Outcome:
    root = tmp_path_factory.mktemp("concurrency")
    library, data, staging = root / "library", root / "data", root / "staging"
    source = shared_dir / "faces" / "deepface"
    env = {
        "DAGSTER_HOME": str(dagster_home(root / "home", SQLITE_HOME_TEMPLATE)),
        settings.LIBRARY_ENV: str(library),
        settings.DATA_ENV: str(data),
        settings.BATCH_WAIT_ENV: "0",  # every tick cuts what arrived: batches do not wait 10 minutes to fill up
    }
    cli_env = {**os.environ, **env}

    # Before the storm, the library was analysed from the command line twice: two batches, faces and people, in one
    # process each (through the sensor, the same takes several more minutes of run start-ups and ticks).
    add_portraits(library, source, slice(0, FIRST_PORTRAITS))
    add_generated(library, "first", first_seed=0)
    photo_assets(cli_env, "run", "--without-faces")
    add_generated(library, "second", first_seed=100)
    photo_assets(cli_env, "run")  # the second batch, the first one's faces, then the people
    before = people_by_folder(data)
    number = {folder: next(iter(pairs))[0] for folder, pairs in before.items() if folder in PEOPLE}
    assert set(number) == set(PEOPLE), f"a person's faces were not found before the storm: {before}"

    with dagster_dev(env, root / "dagster-dev.log") as dev:
        first_batches = sorted(wait_until_settled(dev, library, data, STARTUP_TIMEOUT_S).partitions)
        wait_until_next_sensor_tick_is_near(dev)
        timeline = Timeline(dev)

        # The storm: the new files go in just before the sensor's next tick, the backfill starts at once (it cannot
        # finish before that tick: its run alone takes longer to start), and the edits follow one another while
        # both are in flight.
        add_portraits(library, source, slice(FIRST_PORTRAITS, FIRST_PORTRAITS + 1))
        add_generated(library, "late", first_seed=200)
        add_broken(library, staging)
        timeline.note("new portraits, photos and a broken file placed in the library")
        timeline.backfill_id = launch_backfill(dev, first_batches)
        timeline.note(f"backfill of {len(first_batches)} batches launched")
        photo_assets(cli_env, "people", "rename", number["person_01"], "Alice")
        timeline.note("cli: rename person_01 to Alice", edit=True)
        photo_assets(cli_env, "people", "rename", f"Unknown person {number['person_03']}", "Carol")
        timeline.note("cli: rename person_03 to Carol", edit=True)
        photo_assets(cli_env, "people", "undo")
        timeline.note("cli: undo (Carol)", edit=True)
        # After the undo: run asynchronously, the job's edit could otherwise become the one the undo cancels.
        relabel_run = launch_relabel(dev, {"operation": "RENAME", "person": number["person_02"], "name": "Bob"})
        timeline.note("relabel job launched: person_02 to Bob", edit=True)
        photo_assets(cli_env, "people", "rename", "alice", "Alice Smith")
        timeline.note("cli: rename Alice to Alice Smith", edit=True)

        state = wait_until_settled(dev, library, data, SETTLE_TIMEOUT_S, timeline.backfill_id)
        timeline.note("settled")
        backfill = backfill_state(dev, timeline.backfill_id)
        backfill_runs = [run for run in state.runs if tag(run, "dagster/backfill") == timeline.backfill_id]
    print(timeline)
    return Outcome(library, data, cli_env, before, first_batches, state, backfill, backfill_runs, relabel_run,
                   sum(moment.edit for moment in timeline.moments), timeline.moments)


# -- what must hold --------------------------------------------------------------------------------------------------


def test_people_were_found_before_the_storm(storm):
    """The scenario means something only if the three people were there to be edited."""
    groups = {folder: pairs for folder, pairs in storm.before.items() if folder in PEOPLE}
    assert set(groups) == set(PEOPLE), storm.before
    assert all(len(pairs) == 1 for pairs in groups.values()), groups
    assert len({next(iter(pairs)) for pairs in groups.values()}) == len(PEOPLE), groups
    assert len(storm.first_batches) >= 2, storm.first_batches


def test_the_backfill_completed_over_every_first_batch(storm):
    assert storm.backfill["status"] in BACKFILL_DONE_STATUSES, storm.backfill
    assert sorted(storm.backfill["partitionNames"]) == storm.first_batches
    # Counted per asset by the backfill itself: a backfill run may hold one batch or a range of them.
    statuses = {
        "/".join(status["assetKey"]["path"]): status
        for status in storm.backfill["assetBackfillData"]["assetBackfillStatuses"]
    }
    assert set(statuses) == set(BACKFILLED_ASSETS), statuses
    for asset, status in statuses.items():
        counts = (status["numPartitionsTargeted"], status["numPartitionsMaterialized"], status["numPartitionsFailed"])
        assert counts == (len(storm.first_batches), len(storm.first_batches), 0), (asset, status)
    assert storm.backfill_runs and all(run["status"] == "SUCCESS" for run in storm.backfill_runs)


def test_the_sensor_cut_a_batch_and_every_edit_was_made_while_the_backfill_or_other_runs_were_in_flight(storm):
    """Without this overlap the other tests would prove nothing about concurrency."""
    new_runs = [run for run in storm.state.runs if tag(run, "dagster/sensor_name") == SENSOR]
    assert new_runs, f"the sensor cut no batch from the files added during the storm:\n{storm.timeline}"
    window = (storm.backfill["timestamp"], storm.backfill["endTimestamp"])
    assert any(window[0] < run["creationTime"] < window[1] for run in new_runs), (window, new_runs)
    edits = [moment for moment in storm.timeline if moment.edit]
    assert all(moment.backfill == "REQUESTED" or moment.runs_in_flight for moment in edits), storm.timeline


def test_no_run_failed(storm):
    failed = [(run["jobName"], run["status"], tag(run, "dagster/partition")) for run in storm.state.runs
              if run["status"] != "SUCCESS"]
    assert not failed, failed
    assert storm.state.run(storm.relabel_run)["status"] == "SUCCESS"


def test_every_file_is_in_exactly_one_batch_and_each_new_batch_ran_once_for_the_sensor(storm):
    cut = manifests(storm.data)
    placed = Counter(path for files in cut.values() for path in files)
    assert set(placed) == library_files(storm.library)
    assert [path for path, times in placed.items() if times > 1] == []
    assert set(cut) == storm.state.partitions
    # A batch rewritten without some of its photos keeps their rows aside (photo_assets/storage.py): none may have.
    assert not (storm.data / "_retired").exists(), sorted((storm.data / "_retired").rglob("*"))
    sensor_runs = Counter(
        tag(run, "dagster/partition") for run in storm.state.runs if tag(run, "dagster/sensor_name") == SENSOR
    )
    # One run per batch cut during the storm (its run key dedupes a re-request); the first two came from the CLI.
    assert sensor_runs == Counter(set(cut) - set(storm.first_batches)), sensor_runs


def test_every_batch_of_every_per_batch_asset_is_materialized(storm):
    batches = storm.state.partitions
    for asset in PER_BATCH_ASSETS:
        stats = storm.state.nodes[asset]["partitionStats"]
        assert stats["numMaterialized"] == stats["numPartitions"] == len(batches), (asset, stats)
        assert stats["numFailed"] == 0, (asset, stats)
        # Faces added from regions or by hand sit beside the batches, in a file of their own.
        on_disk = {path.stem for path in (storm.data / asset).glob("*.parquet")} - {ADDED_FACES_STEM}
        assert on_disk == batches, asset


def test_every_library_file_has_exactly_one_catalog_row(storm):
    paths = Counter(read_asset(storm.data, "photos")["path"].to_pylist())
    assert set(paths) == library_files(storm.library)
    assert [path for path, rows in paths.items() if rows != 1] == []


def decodable_photos(data: Path) -> set[str]:
    photos = read_asset(data, "photos")
    return set(photos.filter(pc.is_null(photos["error"]))["photo_id"].to_pylist())


def test_colour_rows_are_unique_and_cover_every_decodable_photo(storm):
    photos = read_asset(storm.data, "photos")
    assert photos.filter(pc.is_valid(photos["error"]))["path"].to_pylist() == ["misc/broken_download.jpg"]
    colours = read_asset(storm.data, "color_histograms")
    keys = Counter(zip(colours["photo_id"].to_pylist(), colours["rank"].to_pylist()))
    assert [key for key, rows in keys.items() if rows != 1] == []
    coloured = colours.filter(pc.is_null(colours["error"]))
    assert set(coloured["photo_id"].to_pylist()) == decodable_photos(storm.data)


def test_every_photo_is_scanned_once_and_every_face_appears_once(storm):
    scans = Counter(read_asset(storm.data, FACE_SCANS)["photo_id"].to_pylist())
    assert set(scans) == decodable_photos(storm.data)
    assert [photo for photo, rows in scans.items() if rows != 1] == []
    detections = Counter(read_asset(storm.data, "face_detections")["face_id"].to_pylist())
    embeddings = Counter(read_asset(storm.data, "face_embeddings")["face_id"].to_pylist())
    assert [face for face, rows in (detections + embeddings).items() if rows != 2] == []
    assert set(detections) == set(embeddings)
    clustered = Counter(pq.read_table(DataLayout(storm.data).people_faces)["face_id"].to_pylist())
    assert clustered == Counter(set(embeddings)), "person_clusters lost or repeated a face"
    # Every portrait, old or new, has its face found.
    folder = folder_of_photo(storm.data)
    portraits = {photo for photo, where in folder.items() if where in PEOPLE}
    faced = set(read_asset(storm.data, "face_detections")["photo_id"].to_pylist())
    assert portraits <= faced, f"portraits without a face: {len(portraits - faced)}"


def test_every_edit_is_in_the_label_log_which_reads_cleanly(storm):
    reading = LabelLog(DataLayout(storm.data).label_log).read()
    assert reading.problems == []
    assert len(reading.edits) == storm.edits_made
    assert Counter(edit.op for edit in reading.edits) == {Op.RENAME: 4, Op.UNDO: 1}


def test_person_clusters_followed_the_last_edit_and_the_last_faces_by_automation(storm):
    latest = storm.state.latest("person_clusters")
    run = storm.state.run(latest["runId"])
    assert run["startTime"] > last_edit_time(storm.data)
    assert run["startTime"] > int(storm.state.latest("face_embeddings")["timestamp"]) / 1000
    assert tag(run, "dagster/sensor_name") == "follow_new_batches", run["tags"]  # nobody asked but the automation


def test_person_clusters_show_every_edit_with_each_persons_faces_together(storm):
    after = people_by_folder(storm.data)
    number = {folder: next(iter(pairs))[0] for folder, pairs in storm.before.items() if folder in PEOPLE}
    # Every face of a person, the new portrait's too, is in that person's group under the name left by the edits.
    assert after["person_01"] == {(number["person_01"], "Alice Smith")}, after
    assert after["person_02"] == {(number["person_02"], "Bob")}, after
    assert after["person_03"] == {(number["person_03"], f"Unknown person {number['person_03']}")}, after  # undone
    people = pq.read_table(DataLayout(storm.data).people)
    named = people.filter(people["named"])
    assert sorted(named["name"].to_pylist()) == ["Alice Smith", "Bob"]
    assert people.num_rows == len(PEOPLE)
    listing = photo_assets(storm.env, "people", "list").stdout
    assert "Alice Smith" in listing and "Bob" in listing and "Carol" not in listing
