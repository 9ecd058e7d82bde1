"""The real pipeline on the Celery executor, with a real Redis broker and two workers, on the Postgres instance.

Started here, as docs/scale-out.md starts them on two machines: a Redis server on a free loopback port, a throwaway
PostgreSQL database, and two `dagster-celery worker start` processes with the shipped deploy/celery/celery.yaml, one
serving the `faces` queue one step at a time (the desktop with the models), one serving the default `dagster` queue
(the NAS). Two batches of real photos (GPS photos and portraits) are analysed by two `analyse_batch` runs at once,
then `update_people` runs; each run process is `dagster job execute` on the project's own module, which picks the
Celery executor because PHOTO_ASSETS_CELERY_BROKER is set (what a launched run's process does).

Proves: the runs succeed, so everything a step needs reached the workers through Celery's JSON messages and the
instance; face steps ran on the faces worker only and every other step on the other; the two face steps never
overlapped (the face_models pool's one slot and the faces worker's one process); and the colour, location, face and
people outputs are right."""

from __future__ import annotations

import csv
import json
import shutil
import sys
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from dagster_celery.core_execution_loop import DELEGATE_MARKER
from dagster_celery.defaults import task_default_queue as DEFAULT_QUEUE

from devtools.library import copy_portraits
from devtools.services import (
    POSTGRES_HOME_TEMPLATE,
    PostgresServer,
    celery_worker,
    dagster_home,
    fresh_database,
    instance_at,
    redis_server,
    run_env,
    start_process_group,
    stop_process_group,
)
from photo_assets import settings
from photo_assets.assets.names import FACE_POOL, FACES_QUEUE
from photo_assets.jobs import analyse_batch_job, update_people_job
from photo_assets.partitions import photo_batches
from photo_assets.resources import PhotoLibrary
from photo_assets.sensors import plan_batches
from photo_assets.storage import DataLayout
from photo_assets.storage.scanner import ScanCursor

pytestmark = pytest.mark.slow  # Redis, Celery workers and pipeline runs

if TYPE_CHECKING:
    from dagster._core.storage.event_log.base import ConcurrencyKeyInfo  # what get_concurrency_info returns

# Two GPS photos in two countries (truth.csv) and two people's portraits: faces, places and people, in minutes.
GPS_PHOTOS = ["mei__jpg__FujiFilm_FinePixS2Pro.jpg", "ianare__jpg__gps__DSCN0010.jpg"]
PEOPLE = ["person_01", "person_02"]
PORTRAITS = slice(0, 2)
# Six photos in batches of three: two analyse_batch runs, so two face steps that could overlap.
BATCH_SIZE = 3
BATCHES = 2
# The faces worker takes one step at a time in one process: one face step's memory (~2 GB with the models), which
# that process keeps loaded from one face step to the next.
FACES_WORKER_OPTIONS = ["--concurrency", "1"]
# The run process, as a launched run's: the project's module, whose executor the environment picks.
RUN_COMMAND = [Path(sys.executable).parent / "dagster", "job", "execute", "-m", "photo_assets.definitions"]
# Imports, a first load of the face models and the people steps, on 2 busy cores.
RUN_TIMEOUT_S = 900
# How a Celery task's first event names the worker that executes the step.
WORKER_METADATA = "Celery worker"
# The step of the `faces` multi-asset, and the events that open and close it.
FACE_STEP = "faces"
FACE_SPAN_EVENTS = (dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE)
# When the run handed the step to Celery (its engine event carries dagster-celery's delegation marker).
SUBMITTED = "submitted"
# The people job's step that embeds faces added from regions or by hand: it needs the face models too.
ADDED_FACES_STEP = "added_faces"
# Every other step of the two jobs; all of them go to the default queue.
OTHER_STEPS = {"photos", "color_histograms", "locations", "face_index", "person_clusters"}


@dataclass
class Steps:
    """What the event log says of each run's steps."""

    workers: dict[tuple[str, str], str] = field(default_factory=dict)  # (run id, step) -> Celery worker
    pids: dict[tuple[str, str], int] = field(default_factory=dict)  # (run id, step) -> pid that started it
    run_pids: dict[str, int] = field(default_factory=dict)  # run id -> pid of its run process
    # Each face step's times: handed to Celery, started, ended.
    face_spans: list[tuple[float, float, float | None]] = field(default_factory=list)


@dataclass(frozen=True)
class Pipeline:
    data: Path
    gps_photos: dict[str, str]  # path in the library -> country code of truth.csv
    portraits: set[str]  # paths in the library
    nodes: dict[str, str]  # queue -> the Celery name of the worker serving it
    batch_runs: list[dg.DagsterRun]
    people_run: dg.DagsterRun
    steps: Steps
    face_pool: ConcurrencyKeyInfo  # the pool's state once every run is over
    people_checks: dict[str, bool]  # check -> passed


def build_library(library: Path, shared_dir: Path) -> tuple[dict[str, str], set[str]]:
    with open(shared_dir / "corpus" / "gps" / "truth.csv", newline="", encoding="utf-8") as handle:
        country = {row["file"]: row["country_10m"].split("/")[-1] for row in csv.DictReader(handle)}
    (library / "trips").mkdir(parents=True)
    for name in GPS_PHOTOS:
        shutil.copyfile(shared_dir / "corpus" / "gps" / name, library / "trips" / name)
    gps = {f"trips/{name}": country[name] for name in GPS_PHOTOS}
    return gps, set(copy_portraits(shared_dir / "faces" / "deepface", library, PEOPLE, PORTRAITS))


def execute(stack: ExitStack, job: str, env: dict[str, str], log_file: Path, tags: dict[str, str]) -> Callable:
    """A run process started now; the returned function waits for it to succeed. The stack stops it in any case."""
    process = start_process_group([*RUN_COMMAND, "-j", job, "--tags", json.dumps(tags)], env, log_file)
    stack.callback(stop_process_group, process, 0)

    def finish() -> None:
        process.wait(timeout=RUN_TIMEOUT_S)
        assert process.returncode == 0, log_file.read_text(errors="replace")[-5000:]

    return finish


def read_steps(instance: dg.DagsterInstance, run_ids: list[str]) -> Steps:
    steps = Steps()
    for run_id in run_ids:
        face_times = {}
        for entry in instance.all_logs(run_id):
            event = entry.dagster_event
            if event is None:
                continue
            if event.event_type == dg.DagsterEventType.RUN_START:
                steps.run_pids[run_id] = event.pid
            elif event.event_type == dg.DagsterEventType.STEP_START:
                steps.pids[run_id, entry.step_key] = event.pid
            elif event.is_engine_event and WORKER_METADATA in event.engine_event_data.metadata:
                steps.workers[run_id, entry.step_key] = event.engine_event_data.metadata[WORKER_METADATA].value
            if entry.step_key != FACE_STEP:
                continue
            if event.is_engine_event and event.engine_event_data.marker_start == DELEGATE_MARKER:
                face_times[SUBMITTED] = entry.timestamp
            elif event.event_type in FACE_SPAN_EVENTS:
                face_times[event.event_type] = entry.timestamp
        if face_times:
            steps.face_spans.append((
                face_times[SUBMITTED], face_times[dg.DagsterEventType.STEP_START],
                face_times.get(dg.DagsterEventType.STEP_SUCCESS, face_times.get(dg.DagsterEventType.STEP_FAILURE)),
            ))  # fmt: skip
    return steps


def run_pipeline(root: Path, shared_dir: Path, postgres: PostgresServer) -> Pipeline:
    """Both batch runs at once, then the people run, each through Celery; what they wrote and what the instance
    recorded of them."""
    library, data, logs = root / "library", root / "data", root / "logs"
    gps, portraits = build_library(library, shared_dir)
    home = dagster_home(root / "home", POSTGRES_HOME_TEMPLATE)
    photo_library = PhotoLibrary(library_dir=str(library), data_dir=str(data), batch_size=BATCH_SIZE,
                                 max_wait_seconds=0)
    _, batches, _, _ = plan_batches(photo_library, ScanCursor(), set(), time_budget_s=None)
    assert len(batches) == BATCHES, batches
    with (
        fresh_database(postgres) as database,
        pytest.MonkeyPatch.context() as monkeypatch,
        instance_at(home, database, monkeypatch) as instance,  # made before the workers: one process migrates it
        redis_server(logs / "redis.log") as broker,
        ExitStack() as stack,  # the workers and the runs: stopped first, while the broker and database are up
    ):
        instance.add_dynamic_partitions(photo_batches.name, batches)
        # The pool's row at its configured default (one slot), as docs/scale-out.md sets it up once: two runs that
        # both meet a missing row would both insert it, and the second fails on the unique key.
        instance.event_log_storage.initialize_concurrency_limit_to_default(FACE_POOL)
        env = {
            **run_env(home, database), settings.LIBRARY_ENV: str(library), settings.DATA_ENV: str(data),
            settings.CELERY_BROKER_ENV: broker,
        }  # fmt: skip
        nodes = {
            FACES_QUEUE: stack.enter_context(
                celery_worker(FACES_QUEUE, FACES_QUEUE, env, logs / "faces.log", *FACES_WORKER_OPTIONS)
            ),
            DEFAULT_QUEUE: stack.enter_context(celery_worker(DEFAULT_QUEUE, DEFAULT_QUEUE, env, logs / "dagster.log")),
        }
        tags = {batch: photo_batches.get_tags_for_partition_key(batch) for batch in batches}
        started = [execute(stack, analyse_batch_job.name, env, logs / f"{batch}.log", tags[batch]) for batch in batches]
        for finish in started:
            finish()
        execute(stack, update_people_job.name, env, logs / "people.log", {})()
        batch_runs = [
            instance.get_runs(dg.RunsFilter(job_name=analyse_batch_job.name, tags=tags[batch]))[0] for batch in batches
        ]
        (people_run,) = instance.get_runs(dg.RunsFilter(job_name=update_people_job.name))
        steps = read_steps(instance, [run.run_id for run in [*batch_runs, people_run]])
        checks = instance.all_logs(people_run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
        return Pipeline(
            data, gps, portraits, nodes, batch_runs, people_run, steps,
            instance.event_log_storage.get_concurrency_info(FACE_POOL),
            {entry.dagster_event.event_specific_data.check_name: entry.dagster_event.event_specific_data.passed
             for entry in checks},
        )  # fmt: skip


@pytest.fixture(scope="module")
def pipeline(shared_dir: Path, postgres: PostgresServer, tmp_path_factory) -> Pipeline:
    return run_pipeline(tmp_path_factory.mktemp("celery"), shared_dir, postgres)


def test_every_run_succeeds_with_each_step_in_a_worker_process(pipeline):
    for run in [*pipeline.batch_runs, pipeline.people_run]:
        assert run.status == dg.DagsterRunStatus.SUCCESS, (run.job_name, run.status)
    steps = pipeline.steps
    assert set(steps.pids) == set(steps.workers), "a step ran without a Celery task"
    # A run's process only hands steps to the broker: none started in it.
    for (run_id, step), pid in steps.pids.items():
        assert pid != steps.run_pids[run_id], step


def test_face_steps_run_on_the_faces_queue_and_every_other_step_on_the_default_queue(pipeline):
    workers = {}
    for (_, step), worker in pipeline.steps.workers.items():
        workers.setdefault(step, set()).add(worker)
    assert workers.pop(FACE_STEP) == {pipeline.nodes[FACES_QUEUE]}
    assert workers.pop(ADDED_FACES_STEP) == {pipeline.nodes[FACES_QUEUE]}
    assert OTHER_STEPS <= set(workers), workers
    assert all(served == {pipeline.nodes[DEFAULT_QUEUE]} for served in workers.values()), workers


def test_face_steps_never_overlap_and_the_face_pool_holds_one_slot(pipeline):
    """Both batch runs started together and each has a face step, yet one ended before the other was even handed to
    Celery: a run claims the pool's one slot before it sends the step to the broker and frees it when the step's
    events come back, so the second step waited in its run, not in the faces worker's queue."""
    spans = sorted(pipeline.steps.face_spans)
    assert len(spans) == BATCHES and all(end is not None for *_, end in spans), spans
    (_, _, first_end), (second_submitted, second_start, _) = spans
    assert first_end <= second_submitted <= second_start, spans
    pool = pipeline.face_pool
    assert (pool.slot_count, pool.claimed_slots, pool.pending_steps) == (1, [], []), pool


def test_colours_places_and_faces_are_written_for_every_photo(pipeline):
    photos = ds.dataset(pipeline.data / "photos").to_table(columns=["photo_id", "path", "error"]).to_pylist()
    assert {row["path"] for row in photos} == set(pipeline.gps_photos) | pipeline.portraits
    assert all(row["error"] is None for row in photos), photos
    photo_of = {row["path"]: row["photo_id"] for row in photos}

    coloured = ds.dataset(pipeline.data / "color_histograms").to_table(columns=["photo_id"])["photo_id"].to_pylist()
    assert set(coloured) == set(photo_of.values())

    places = ds.dataset(pipeline.data / "locations").to_table(columns=["photo_id", "country_code"]).to_pylist()
    truth = {photo_of[path]: code for path, code in pipeline.gps_photos.items()}
    assert {row["photo_id"]: row["country_code"] for row in places} == truth

    detections = ds.dataset(pipeline.data / "face_detections").to_table(columns=["face_id", "photo_id"]).to_pylist()
    assert {photo_of[path] for path in pipeline.portraits} <= {row["photo_id"] for row in detections}
    embedded = ds.dataset(pipeline.data / "face_embeddings").to_table(columns=["face_id"])["face_id"].to_pylist()
    assert sorted(embedded) == sorted(row["face_id"] for row in detections)


def test_people_steps_give_every_face_a_person(pipeline):
    faces = pq.read_table(DataLayout(pipeline.data).people_faces).to_pylist()
    embedded = ds.dataset(pipeline.data / "face_embeddings").to_table(columns=["face_id"])["face_id"].to_pylist()
    assert sorted(row["face_id"] for row in faces) == sorted(embedded)
    assert all(row["person_name"] for row in faces)
    assert pipeline.people_checks and all(pipeline.people_checks.values()), pipeline.people_checks
