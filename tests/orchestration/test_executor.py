"""The real pipeline on Dagster's multiprocess executor (the default for launched runs): `analyse_batch` and then
`update_people` run through `execute_job` against a persistent instance made from the project's
dagster_home/dagster.yaml, on a small library of real portraits and generated photos.

Proves that every step runs in a process of its own (never the test's, which only orchestrates), that nothing a step
needs fails to cross a process boundary (each step process rebuilds the job from its module; the runs succeed), that
the face and people steps claim the one slot dagster.yaml gives each pool, and that the faces found and embedded in
the step processes are exactly the ones the same models find in this process."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
import numpy as np
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from devtools.library import copy_portraits, write_photo
from devtools.services import PROJECT_DIR, SQLITE_HOME_TEMPLATE, dagster_home
from photo_assets import settings
from photo_assets.analysis.faces import EMBEDDING_SIZE, PhotoFaces, face_id
from photo_assets.assets.names import FACE_POOL, PEOPLE_POOL
from photo_assets.assets.photo_rows import analysable_photos
from photo_assets.jobs import analyse_batch_job, update_people_job
from photo_assets.partitions import photo_batches
from photo_assets.resources import FaceModels, PhotoLibrary
from photo_assets.sensors import plan_batches
from photo_assets.storage import DataLayout
from photo_assets.storage.scanner import ScanCursor

pytestmark = pytest.mark.slow  # pipeline runs with a process per step

if TYPE_CHECKING:
    from dagster._core.definitions.reconstruct import ReconstructableJob  # what build_reconstructable_job returns

# Two people, two portraits each: enough for faces and a people step, small enough for a few minutes on 2 cores.
PORTRAIT_PEOPLE = ["person_01", "person_02"]
PORTRAITS_PER_PERSON = 2
# Generated photos (noise) beside the portraits: a batch is never all faces.
GENERATED_PHOTOS = 2
# Two cores: two step processes at once (faces beside colours/locations), as a launched run on this machine would.
MULTIPROCESS = {"execution": {"config": {"multiprocess": {"max_concurrent": 2}}}}
# The per-batch steps of analyse_batch: one per asset op; `faces` is the multi_asset (detections + embeddings).
BATCH_STEPS = {"photos", "color_histograms", "locations", "faces"}
PEOPLE_ASSETS = {"face_index", "person_clusters"}
# The pools dagster.yaml limits to one step at a time across all runs.
POOLS = (FACE_POOL, PEOPLE_POOL)
# How a new process imports this module: from the project root, as devtools.library is imported above.
RECONSTRUCTOR_MODULE = f"tests.orchestration.{Path(__file__).stem}"
# Step processes recompute with the same weights and inputs; only float summation order may differ between processes.
EMBEDDING_TOLERANCE = 1e-4


def project_definitions() -> dg.Definitions:
    """The project's definitions with resources read from the environment now: definitions.py reads its paths once,
    at its first import, which in the test process may have happened before the fixture set them."""
    from photo_assets.definitions import build_resources, defs

    return dg.Definitions(assets=defs.assets, asset_checks=defs.asset_checks, jobs=defs.jobs,
                          resources=build_resources(settings.Settings.from_env()))


def project_job(job_name: str) -> dg.JobDefinition:
    """What each step process calls to rebuild the job it runs a step of."""
    return project_definitions().resolve_job_def(job_name)


def reconstructable_job(job_name: str) -> ReconstructableJob:
    """The job as step processes rebuild it: by importing this module as `tests.test_executor` from the project root
    (pytest imports it under another name, which a new process could not import) and calling `project_job`."""
    return dg.build_reconstructable_job(
        RECONSTRUCTOR_MODULE, project_job.__name__, reconstructable_args=(job_name,),
        reconstructor_working_directory=str(PROJECT_DIR),
    )


@dataclass(frozen=True)
class Pipeline:
    instance: dg.DagsterInstance
    photo_library: PhotoLibrary
    batch: str
    portraits: set[str]  # paths relative to the library
    pool_slots_before: dict[str, int]  # pool -> slots before either run
    batch_run: dg.JobExecutionResult
    people_run: dg.JobExecutionResult


def build_library(library: Path, shared_dir: Path) -> set[str]:
    source = shared_dir / "faces" / "deepface"
    portraits = set(copy_portraits(source, library, PORTRAIT_PEOPLE, slice(PORTRAITS_PER_PERSON)))
    for seed in range(GENERATED_PHOTOS):
        write_photo(library / "generated" / f"photo_{seed}.jpg", seed=seed)
    return portraits


@pytest.fixture(scope="module")
def pipeline(shared_dir: Path, tmp_path_factory) -> Iterator[Pipeline]:
    root = tmp_path_factory.mktemp("executor")
    library, data = root / "library", root / "data"
    portraits = build_library(library, shared_dir)
    home = dagster_home(root / "home", SQLITE_HOME_TEMPLATE)
    # Step processes inherit this process's environment: it is how they find the library, data and instance.
    with pytest.MonkeyPatch.context() as environment:
        environment.setenv("DAGSTER_HOME", str(home))
        environment.setenv(settings.LIBRARY_ENV, str(library))
        environment.setenv(settings.DATA_ENV, str(data))
        photo_library = PhotoLibrary(library_dir=str(library), data_dir=str(data), max_wait_seconds=0)
        with dg.DagsterInstance.get() as instance:
            _, new_batches, _, _ = plan_batches(photo_library, ScanCursor(), set(), time_budget_s=None)
            assert len(new_batches) == 1, new_batches
            (batch,) = new_batches
            instance.add_dynamic_partitions(photo_batches.name, [batch])
            pool_slots_before = {
                pool: instance.event_log_storage.get_concurrency_info(pool).slot_count for pool in POOLS
            }
            batch_run = dg.execute_job(
                reconstructable_job(analyse_batch_job.name), instance=instance, run_config=MULTIPROCESS,
                tags=photo_batches.get_tags_for_partition_key(batch),
            )
            people_run = dg.execute_job(
                reconstructable_job(update_people_job.name), instance=instance, run_config=MULTIPROCESS
            )
            yield Pipeline(instance, photo_library, batch, portraits, pool_slots_before, batch_run, people_run)


def step_start_pids(instance: dg.DagsterInstance, run_id: str) -> dict[str, int]:
    """step key -> pid of the process that started it, as recorded in the instance's event log."""
    starts = instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_START)
    return {entry.step_key: entry.dagster_event.pid for entry in starts}


def failures(result: dg.JobExecutionResult) -> str:
    return "\n".join(
        f"{event.step_key}: {event.step_failure_data.error.to_string()}"
        for event in result.all_events if event.is_step_failure
    )


def test_every_step_of_both_jobs_runs_in_a_process_of_its_own(pipeline):
    assert pipeline.batch_run.success, failures(pipeline.batch_run)
    assert pipeline.people_run.success, failures(pipeline.people_run)
    batch_pids = step_start_pids(pipeline.instance, pipeline.batch_run.run_id)
    people_pids = step_start_pids(pipeline.instance, pipeline.people_run.run_id)
    assert set(batch_pids) == BATCH_STEPS
    assert PEOPLE_ASSETS <= set(people_pids), people_pids  # the asset steps, and their checks' steps beside them
    for run, pids in ((pipeline.batch_run, batch_pids), (pipeline.people_run, people_pids)):
        # This process only orchestrated the run; each step was a new process.
        run_start = pipeline.instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_START)
        assert [entry.dagster_event.pid for entry in run_start] == [os.getpid()]
        assert os.getpid() not in pids.values(), pids
        assert len(set(pids.values())) == len(pids), pids


def test_face_and_people_steps_ran_under_the_pools_of_dagster_yaml(pipeline):
    """A pool has no slots until a step claims one; then it gets dagster.yaml's limit (one), which multiprocess runs
    share with every other run of the instance. Every slot is given back at the end."""
    assert pipeline.pool_slots_before == {pool: 0 for pool in POOLS}
    for pool in POOLS:
        info = pipeline.instance.event_log_storage.get_concurrency_info(pool)
        assert (info.slot_count, info.claimed_slots, info.pending_steps) == (1, [], []), (pool, info)


def test_step_processes_find_and_embed_the_faces_this_process_finds(pipeline):
    data = Path(pipeline.photo_library.data_dir)
    photos = ds.dataset(data / "photos").to_table(columns=["photo_id", "path", "error"]).to_pylist()
    assert all(row["error"] is None for row in photos), photos
    portrait_ids = {row["photo_id"] for row in photos if row["path"] in pipeline.portraits}
    assert len(portrait_ids) == len(pipeline.portraits)

    embeddings = ds.dataset(data / "face_embeddings").to_table().to_pylist()
    stored = {row["face_id"]: np.asarray(row["embedding"], dtype=np.float32) for row in embeddings}
    assert portrait_ids <= {row["photo_id"] for row in embeddings}  # every portrait has a face
    assert all(vector.shape == (EMBEDDING_SIZE,) and np.isfinite(vector).all() for vector in stored.values())
    detected = set(ds.dataset(data / "face_detections").to_table(columns=["face_id"])["face_id"].to_pylist())
    assert detected == set(stored)

    # The same models on the same photos, in this process: the same faces, the same vectors.
    face_models = FaceModels()
    here = {}
    for photo_id, result in face_models.analyzer().analyse(
        analysable_photos(pipeline.photo_library, pipeline.batch).items(), batch_size=face_models.embed_batch_size
    ):
        assert isinstance(result, PhotoFaces), result
        for face, embedding in zip(result.faces, result.embeddings):
            here[face_id(photo_id, face)] = embedding
    assert set(here) == set(stored)
    for identifier, embedding in here.items():
        np.testing.assert_allclose(stored[identifier], embedding, atol=EMBEDDING_TOLERANCE, err_msg=identifier)


def test_people_steps_give_every_face_a_person(pipeline):
    data = Path(pipeline.photo_library.data_dir)
    faces = pq.read_table(DataLayout(data).people_faces).to_pylist()
    embedded = set(ds.dataset(data / "face_embeddings").to_table(columns=["face_id"])["face_id"].to_pylist())
    assert {row["face_id"] for row in faces} == embedded
    assert all(row["person_name"] for row in faces)
    checks = pipeline.people_run.get_asset_check_evaluations()
    assert checks and all(check.passed for check in checks), [(c.check_name, c.passed) for c in checks]
