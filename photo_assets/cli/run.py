"""`photo-assets run`: catalogue and analyse a library in this process, against the configured Dagster instance."""

from __future__ import annotations

import os
import socket
import time

import click

from photo_assets.assets.progress import listening
from photo_assets.cli.options import current_settings, dagster_instance, data_option, library_option
from photo_assets.cli.progress import ProgressDisplay
from photo_assets.storage import DataLayout, DataStore

# The command prints one line per batch; Dagster's step-by-step log stays in the instance (and the UI).
QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
# The CLI's runs say which process on which machine executes them: a run whose process was killed stays STARTED and
# keeps its pool slot for ever (no daemon watches in-process runs), so the next command must be able to tell.
RUN_PID_TAG, RUN_HOST_TAG = "photo_assets/pid", "photo_assets/host"
# Materialization records read per query when looking for batches left behind: every record is read, page by page.
RECORDS_PAGE = 1000


def _report(result, what: str) -> bool:
    """Print one line for a finished run (row counts per asset, failures with their cause); True if it failed."""
    counts = {
        event.asset_key.to_user_string(): event.step_materialization_data.materialization.metadata.get(
            "dagster/row_count"
        )
        for event in result.get_asset_materialization_events()
    }
    rows = ", ".join(f"{name} {value.value if value else 0}" for name, value in sorted(counts.items()))
    click.echo(f"{what}: {'ok' if result.success else 'FAILED'} ({rows})")
    for event in result.all_events:
        if event.is_step_failure:
            error = event.step_failure_data.error
            click.echo(f"    {event.step_key} failed: {error.cause.message if error.cause else error.message}")
    return not result.success


def _reclaim_dead_runs(instance) -> list[str]:
    """Mark failed the runs of `photo-assets` processes on this machine that died mid-run, and free their pool slots."""
    import dagster as dg

    from photo_assets.storage.atomic import process_alive

    unfinished = [dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.NOT_STARTED]
    runs = instance.get_runs(filters=dg.RunsFilter(statuses=unfinished, tags={RUN_HOST_TAG: socket.gethostname()}))
    reclaimed = []
    for run in runs:
        pid = int(run.tags.get(RUN_PID_TAG, "0"))
        if pid and not process_alive(pid):
            instance.report_run_failed(run, f"its photo-assets process (pid {pid}) died before the run ended")
            instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
            reclaimed.append(run.run_id)
    return reclaimed


def _batches_behind(instance, asset_keys, batches: list[str], layout: DataLayout) -> list[str]:
    """Batches some asset of `asset_keys` never materialized, or last materialized before the batch's manifest was
    rewritten (its files changed): what a run that died or failed left undone, found again by the next command."""
    from photo_assets.storage.manifests import manifest_written

    oldest: dict[str, float] = dict.fromkeys(batches, float("inf"))  # per batch, its least recent asset
    for asset_key in asset_keys:
        latest: dict[str, float] = {}
        cursor = None
        while True:
            page = instance.fetch_materializations(asset_key, limit=RECORDS_PAGE, cursor=cursor)
            for record in page.records:
                latest[record.partition_key] = max(latest.get(record.partition_key, 0.0), record.timestamp)
            if not page.has_more:
                break
            cursor = page.cursor
        for batch in batches:
            oldest[batch] = min(oldest[batch], latest.get(batch, 0.0))
    return [batch for batch in batches if manifest_written(layout, batch) > oldest[batch]]


def _batches_of_another_model(layout: DataLayout, batches: list[str], version: str) -> list[str]:
    """Batches whose faces another model made (a descriptor switched, a detector setting changed): their faces are
    made again; every label stays, since labels name faces by photo and box."""
    from photo_assets.storage.layout import FACE_SCANS

    store = DataStore(layout)
    return [batch for batch in batches if (store.batch_versions(FACE_SCANS, batch) or {version}) != {version}]


def _people_behind(instance) -> bool:
    """Faces newer than the people (an update that died or failed) or edits since the people were last made: people
    are recomputed even with no new batch."""
    from photo_assets.assets.names import FACE_EMBEDDINGS_KEY, LABEL_LOG_KEY, PERSON_CLUSTERS_KEY

    faces = instance.get_latest_materialization_event(FACE_EMBEDDINGS_KEY)
    people = instance.get_latest_materialization_event(PERSON_CLUSTERS_KEY)
    edits = instance.fetch_observations(LABEL_LOG_KEY, limit=1).records
    made = people.timestamp if people is not None else 0.0
    return faces is not None and (made < faces.timestamp or bool(edits and made < edits[0].timestamp))


@click.command()
@library_option
@data_option
@click.option("--without-faces", is_flag=True, help="catalog, colours and locations only (faces can follow later)")
def run(without_faces: bool) -> int:
    """Catalogue the library and analyse every new batch, in this process, against the Dagster instance."""
    config = current_settings()

    from photo_assets.assets.added_faces import regions_behind
    from photo_assets.definitions import build_definitions
    from photo_assets.jobs import analyse_batch_job, catalog_batch_job, update_people_job, write_sidecars_job
    from photo_assets.partitions import photo_batches
    from photo_assets.resources import FaceModels, PhotoLibrary
    from photo_assets.sensors import plan_batches
    from photo_assets.storage.scanner import ScanCursor

    if not config.library_dir.is_dir():
        raise click.ClickException(f"library folder not found: {config.library_dir}")
    config.data_dir.mkdir(parents=True, exist_ok=True)
    defs = build_definitions(config)
    instance = dagster_instance(config)
    for run_id in _reclaim_dead_runs(instance):
        click.echo(f"run {run_id} of a photo-assets process that died: marked failed, its pool slots freed")
    # Everything pending becomes a batch now: nobody is waiting for a trickle import to fill up.
    photo_library = PhotoLibrary(library_dir=str(config.library_dir), data_dir=str(config.data_dir), max_wait_seconds=0)
    known = set(instance.get_dynamic_partitions(photo_batches.name))
    started = time.monotonic()
    _, new, rerun, summary = plan_batches(photo_library, ScanCursor(), known, time_budget_s=None)
    click.echo(f"library {config.library_dir}: {summary}")
    if new:
        instance.add_dynamic_partitions(photo_batches.name, new)
    batch_job = defs.resolve_job_def((catalog_batch_job if without_faces else analyse_batch_job).name)
    rerun += [
        batch
        for batch in _batches_behind(
            instance, batch_job.asset_layer.selected_asset_keys, sorted(known), DataLayout(config.data_dir)
        )
        if batch not in rerun
    ]
    if not without_faces:
        version = FaceModels(models_dir=str(config.models_dir), descriptor=config.face_descriptor).scan_version()
        rerun += [batch for batch in _batches_of_another_model(DataLayout(config.data_dir), sorted(known), version)
                  if batch not in rerun]
    tags = {RUN_PID_TAG: str(os.getpid()), RUN_HOST_TAG: socket.gethostname()}
    failed = 0
    display = ProgressDisplay()
    for index, batch_key in enumerate(new + rerun, start=1):
        with listening(display):
            result = batch_job.execute_in_process(
                instance=instance, partition_key=batch_key, raise_on_error=False, run_config=QUIET_LOGS, tags=tags
            )
        display.close()
        failed += _report(result, f"[{index}/{len(new) + len(rerun)}] batch {batch_key}")
    sidecars = new + rerun
    if (new or rerun or _people_behind(instance) or regions_behind(photo_library)) and not without_faces:
        result = defs.resolve_job_def(update_people_job.name).execute_in_process(
            instance=instance, raise_on_error=False, run_config=QUIET_LOGS, tags=tags
        )
        failed += _report(result, "people")
        sidecars = sorted(known | set(new))  # people changed: every photo's names may have
    sidecar_job = defs.resolve_job_def(write_sidecars_job.name)
    for index, batch_key in enumerate(sidecars, start=1):
        result = sidecar_job.execute_in_process(
            instance=instance, partition_key=batch_key, raise_on_error=False, run_config=QUIET_LOGS, tags=tags
        )
        failed += _report(result, f"[{index}/{len(sidecars)}] sidecars {batch_key}")
    click.echo(f"done in {time.monotonic() - started:.1f} s; data in {config.data_dir}")
    return 1 if failed else 0
