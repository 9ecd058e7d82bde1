"""`photo-assets`: catalogue and analyse a library from the command line, against the configured Dagster instance."""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import sys
import time
from pathlib import Path

from photo_assets import settings

# Without DAGSTER_HOME, runs are recorded in the project's own instance: the one `dagster dev` shows.
DEFAULT_DAGSTER_HOME = settings.PROJECT_DIR / "dagster_home"
# The command prints one line per batch; Dagster's step-by-step log stays in the instance (and the UI).
QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
# The CLI's runs say which process on which machine executes them: a run whose process was killed stays STARTED and
# keeps its pool slot for ever (no daemon watches in-process runs), so the next command must be able to tell.
RUN_PID_TAG, RUN_HOST_TAG = "photo_assets/pid", "photo_assets/host"
# Materialization records read per query when looking for batches left behind: every record is read, page by page.
RECORDS_PAGE = 1000
# Exit status when the instance's database cannot be reached: not the library's fault, and nothing was lost.
EXIT_DATABASE_UNREACHABLE = 3


def _apply_paths(args: argparse.Namespace) -> None:
    """Flags win over the environment; the Dagster resources read the same variables."""
    if getattr(args, "library", None):
        os.environ[settings.LIBRARY_ENV] = str(Path(args.library).resolve())
    if args.data:
        os.environ[settings.DATA_ENV] = str(Path(args.data).resolve())
    settings.data_dir().mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("DAGSTER_HOME", str(DEFAULT_DAGSTER_HOME))
    home = Path(os.environ["DAGSTER_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():  # a new home gets the project's defaults (SQLite, pools, retention)
        shutil.copyfile(DEFAULT_DAGSTER_HOME / "dagster.yaml", home / "dagster.yaml")


def _report(result, what: str) -> bool:
    """Print one line for a finished run (row counts per asset, failures with their cause); True if it failed."""
    counts = {
        event.asset_key.to_user_string(): event.step_materialization_data.materialization.metadata.get(
            "dagster/row_count"
        )
        for event in result.get_asset_materialization_events()
    }
    rows = ", ".join(f"{name} {value.value if value else 0}" for name, value in sorted(counts.items()))
    print(f"{what}: {'ok' if result.success else 'FAILED'} ({rows})", flush=True)
    for event in result.all_events:
        if event.is_step_failure:
            error = event.step_failure_data.error
            print(f"    {event.step_key} failed: {error.cause.message if error.cause else error.message}", flush=True)
    return not result.success


def _reclaim_dead_runs(instance) -> list[str]:
    """Mark failed the runs of `photo-assets` processes on this machine that died mid-run, and free their pool slots."""
    import dagster as dg

    from photo_assets.library import process_alive

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


def _batches_behind(instance, asset_keys, batches: list[str], data_dir: Path) -> list[str]:
    """Batches some asset of `asset_keys` never materialized, or last materialized before the batch's manifest was
    rewritten (its files changed): what a run that died or failed left undone, found again by the next command."""
    from photo_assets.library import manifest_written

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
    return [batch for batch in batches if manifest_written(data_dir, batch) > oldest[batch]]


def _people_behind(instance) -> bool:
    """Faces newer than the people (an update that died or failed): people are recomputed even with no new batch."""
    import dagster as dg

    faces = instance.get_latest_materialization_event(dg.AssetKey("face_embeddings"))
    people = instance.get_latest_materialization_event(dg.AssetKey("person_clusters"))
    return faces is not None and (people is None or people.timestamp < faces.timestamp)


def run(args: argparse.Namespace) -> int:
    _apply_paths(args)
    import dagster as dg

    from photo_assets.definitions import defs
    from photo_assets.jobs import analyse_batch_job, catalog_batch_job, update_people_job
    from photo_assets.library import ScanCursor
    from photo_assets.partitions import photo_batches
    from photo_assets.resources import PhotoLibrary
    from photo_assets.sensors import plan_batches

    if not settings.library_dir().is_dir():
        print(f"error: library folder not found: {settings.library_dir()}", file=sys.stderr)
        return 2
    instance = dg.DagsterInstance.get()
    for run_id in _reclaim_dead_runs(instance):
        print(f"run {run_id} of a photo-assets process that died: marked failed, its pool slots freed", flush=True)
    # Everything pending becomes a batch now: nobody is waiting for a trickle import to fill up.
    photo_library = PhotoLibrary(
        library_dir=str(settings.library_dir()), data_dir=str(settings.data_dir()), max_wait_seconds=0
    )
    known = set(instance.get_dynamic_partitions(photo_batches.name))
    started = time.monotonic()
    _, new, rerun, summary = plan_batches(photo_library, ScanCursor(), known, time_budget_s=None)
    print(f"library {settings.library_dir()}: {summary}", flush=True)
    if new:
        instance.add_dynamic_partitions(photo_batches.name, new)
    batch_job = defs.resolve_job_def((catalog_batch_job if args.without_faces else analyse_batch_job).name)
    rerun += [
        batch
        for batch in _batches_behind(
            instance, batch_job.asset_layer.selected_asset_keys, sorted(known), settings.data_dir()
        )
        if batch not in rerun
    ]
    tags = {RUN_PID_TAG: str(os.getpid()), RUN_HOST_TAG: socket.gethostname()}
    failed = 0
    for index, batch_key in enumerate(new + rerun, start=1):
        result = batch_job.execute_in_process(
            instance=instance, partition_key=batch_key, raise_on_error=False, run_config=QUIET_LOGS, tags=tags
        )
        failed += _report(result, f"[{index}/{len(new) + len(rerun)}] batch {batch_key}")
    if (new or rerun or _people_behind(instance)) and not args.without_faces:
        result = defs.resolve_job_def(update_people_job.name).execute_in_process(
            instance=instance, raise_on_error=False, run_config=QUIET_LOGS, tags=tags
        )
        failed += _report(result, "people")
    print(f"done in {time.monotonic() - started:.1f} s; data in {settings.data_dir()}", flush=True)
    return 1 if failed else 0


def status(args: argparse.Namespace) -> int:
    _apply_paths(args)
    import dagster as dg

    from photo_assets.definitions import defs
    from photo_assets.partitions import photo_batches
    from photo_assets.status import instance_summary, library_summary

    print(f"data folder: {settings.data_dir()}")
    for line in library_summary(settings.data_dir()):
        print(line)
    for line in instance_summary(dg.DagsterInstance.get(), defs, photo_batches.name):
        print(line)
    return 0


def people(args: argparse.Namespace) -> int:
    _apply_paths(args)
    from photo_assets.people_cli import people_cli

    before = _label_log_version()
    status = people_cli(args.people_args, settings.data_dir())
    if _label_log_version() != before:
        import dagster as dg

        from photo_assets.jobs import label_log_observation

        # Tell the instance: the UI shows person_clusters stale, and its automation re-runs it.
        dg.DagsterInstance.get().report_runless_asset_event(label_log_observation(settings.data_dir()))
    return status


def review(args: argparse.Namespace) -> int:
    _apply_paths(args)
    from photo_assets.review.app import serve

    serve(settings.data_dir(), settings.library_dir(), host=args.host, port=args.port)
    return 0


def _label_log_version() -> str:
    from photo_assets.labels import LabelLog

    return LabelLog(settings.data_dir()).version()


def _database_unreachable(error: BaseException) -> str | None:
    """The driver's own words when `error` (or what caused it) says the instance's database is gone, else None."""
    import sqlalchemy.exc

    gone: list[type[BaseException]] = [sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError]
    try:
        from dagster_postgres.utils import DagsterPostgresException

        gone.append(DagsterPostgresException)
    except ImportError:  # dagster-postgres is only needed with a Postgres instance
        pass
    causes = []
    while error is not None and error not in causes:
        causes.append(error)
        error = error.__cause__ or error.__context__
    if not any(isinstance(cause, tuple(gone)) for cause in causes):
        return None
    # The innermost cause names the server and what went wrong ("connection refused", "server closed the connection").
    return " ".join(str(getattr(causes[-1], "orig", None) or causes[-1]).split())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="photo-assets", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="catalogue the library and analyse every new batch")
    run_parser.add_argument("--library", help=f"photo library folder (default ${settings.LIBRARY_ENV})")
    run_parser.add_argument("--data", help=f"data folder (default ${settings.DATA_ENV})")
    run_parser.add_argument(
        "--without-faces", action="store_true", help="catalog, colours and locations only (faces can follow later)"
    )
    run_parser.set_defaults(handler=run)
    status_parser = commands.add_parser("status", help="what is catalogued, analysed, failed and stale")
    status_parser.add_argument("--data", help=f"data folder (default ${settings.DATA_ENV})")
    status_parser.set_defaults(handler=status)
    people_parser = commands.add_parser(
        "people", help="list, show, rename, merge, move, reject, undo (see `photo-assets people --help`)",
        add_help=False,
    )
    people_parser.add_argument("--data", help=f"data folder (default ${settings.DATA_ENV})")
    people_parser.add_argument("people_args", nargs=argparse.REMAINDER)
    people_parser.set_defaults(handler=people)
    review_parser = commands.add_parser("review", help="the people pages in the browser (http://127.0.0.1:3001)")
    review_parser.add_argument("--data", help=f"data folder (default ${settings.DATA_ENV})")
    review_parser.add_argument("--library", help=f"photo library folder (default ${settings.LIBRARY_ENV})")
    review_parser.add_argument("--host", default="127.0.0.1", help="address to bind (anything but loopback warns)")
    review_parser.add_argument("--port", type=int, default=3001)
    review_parser.set_defaults(handler=review)
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except Exception as error:
        reason = _database_unreachable(error)
        if reason is None:
            raise
        print(
            f"error: the Dagster instance's database is unreachable ({reason}); instance: "
            f"{os.environ.get('DAGSTER_HOME')}/dagster.yaml. Batches that finished are kept: start the database and "
            f"run the same command again.",
            file=sys.stderr,
        )
        return EXIT_DATABASE_UNREACHABLE


if __name__ == "__main__":
    sys.exit(main())
