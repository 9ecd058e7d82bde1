"""Dagster's orchestration overhead per photo when a whole library is analysed batch by batch, with Postgres storage.

A generated library of small photos (10k by default: 20 batches of 500) is scanned and cut into batches; then every
batch's catalog and analysis assets (what the sensor asks for each new batch) are computed several ways, each into a
data folder of its own (so none reuses another's results) and each against a fresh Postgres database:
- direct: each asset's function called in-process, in dependency order: no run, no event log, no instance;
- in-process runs: one Dagster run per batch, executed in this process as `photo-assets run` does, with the
  instance reached over TCP (password auth, as a server elsewhere is), then over the server's Unix socket;
- backfill: one backfill of every batch launched through the GraphQL API of `dagster dev` (what the UI's
  "Materialize all" does), its runs queued and launched by the daemon, each in a process of its own; with the
  default executor (every step in a process of its own) and with the in-process executor (steps in the run's
  process). The per-batch assets' backfill policy puts 10 batches in a run; the last pass sets it to 1 batch per
  run (PHOTO_ASSETS_BATCHES_PER_BACKFILL_RUN=1), as before the policy, for the ratio.
Overhead = (pass time - direct time) / photos; a backfill's pass ends when its last run ends (the results are all
written then). A backfill also waits for the daemon, once per backfill whatever the library's size: its first run
starts tens of seconds after the launch (the backfill daemon's 30 s loop, the run queue, a process start). That
latency is printed apart, with the overhead left once it is taken out. The passes with runs go first, so one-time costs (imports, loading the
geodata) count against them: the overheads printed err high. The server is the one named by PHOTO_ASSETS_PG_* or a
throwaway cluster (devtools/services.py); the socket pass needs the throwaway cluster. Usage, from the project folder:

    .venv/bin/python bench/backfill.py [--photos 10000] [--skip-backfill]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

# Run as a script from anywhere: the project's test helpers (the Postgres server, dagster dev, the photo writer).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dagster as dg  # noqa: E402

from devtools.library import write_photo  # noqa: E402
from devtools.services import (  # noqa: E402
    LAUNCH_BACKFILL,
    POSTGRES_HOME_TEMPLATE,
    DagsterDev,
    PostgresServer,
    dagster_dev,
    dagster_home,
    fresh_database,
    postgres_server,
)
from photo_assets import settings  # noqa: E402
from photo_assets.storage.scanner import DEFAULT_BATCH_SIZE, ScanCursor  # noqa: E402

DEFAULT_PHOTOS = 20 * DEFAULT_BATCH_SIZE
# Small photos keep the analysis cheap, so the orchestration's share of the time shows.
PHOTO_SIZE = (64, 48)
TARGET_OVERHEAD_MS_PER_PHOTO = 5.0
# Dagster's step-by-step log stays in the instance; the console would only add printing time.
QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
BACKFILL_TIMEOUT_S = 3600
POLL_INTERVAL_S = 1.0
# Sensors would add their own runs (faces follow new batches) to the backfill's: they are stopped for the measure.
SENSORS = """{ repositoriesOrError { ... on RepositoryConnection { nodes { sensors { sensorState { id } } } } } }"""
STOP_SENSOR = """mutation Stop($id: String) { stopSensor(id: $id) { __typename } }"""
BACKFILL_RUNS = """
query Runs($id: String!) {
  partitionBackfillOrError(backfillId: $id) { ... on PartitionBackfill { status } }
  runsOrError(filter: {tags: [{key: "dagster/backfill", value: $id}]}) {
    ... on Runs { results { status creationTime startTime endTime } }
  }
}"""
BACKFILL_IN_PROGRESS = {"REQUESTED", "CANCELING"}
# Enough of the dagster dev log to say why runs failed, without flooding the figures.
FAILURE_LINES_SHOWN = 6
# Run config choosing the in-process executor for the default (multi-or-in-process) executor of asset jobs.
IN_PROCESS = {"execution": {"config": {"in_process": {}}}}
RUN_TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}


def generate_library(root: Path, count: int) -> None:
    for index in range(count):
        write_photo(root / f"album_{index // DEFAULT_BATCH_SIZE:03d}" / f"photo_{index:06d}.jpg", index, PHOTO_SIZE)


def cut_batches(library: Path, data: Path) -> list[str]:
    """The sensor's planning (scan, then cut): not orchestration, timed apart."""
    from photo_assets.resources import PhotoLibrary
    from photo_assets.sensors import plan_batches

    photo_library = PhotoLibrary(library_dir=str(library), data_dir=str(data), max_wait_seconds=0)
    _, new, _, _ = plan_batches(photo_library, ScanCursor(), set(), time_budget_s=None)
    return new


def point_at(library: Path, data: Path) -> None:
    """Set before the definitions are imported, these make their resources read the folders at run time."""
    os.environ[settings.LIBRARY_ENV] = str(library)
    os.environ[settings.DATA_ENV] = str(data)


def batch_assets() -> list[dg.AssetKey]:
    from photo_assets.assets.names import CATALOG_ASSETS
    from photo_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    selected = CATALOG_ASSETS.resolve(graph)
    return [key for key in graph.toposorted_asset_keys if key in selected]


def analyse_directly(library: Path, data: Path, batches: list[str]) -> float:
    """Seconds spent in the asset functions themselves, called in-process without Dagster's run machinery."""
    from photo_assets.definitions import defs
    from photo_assets.partitions import photo_batches
    from photo_assets.resources import PhotoLibrary

    resources = {**defs.resources, "photo_library": PhotoLibrary(library_dir=str(library), data_dir=str(data))}
    assets = [defs.resolve_assets_def(key) for key in batch_assets()]
    with dg.DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(photo_batches.name, batches)
        started = time.perf_counter()
        for batch in batches:
            for asset in assets:
                needed = {key: resources[key] for key in asset.required_resource_keys if key in resources}
                asset(dg.build_asset_context(partition_key=batch, instance=instance), **needed)
        return time.perf_counter() - started


def run_in_process(
    batches: list[str], home: Path, env: dict[str, str], scratch: Path
) -> tuple[float, list[str], float]:
    """One Dagster run per batch, in this process, against the instance at `home`: (seconds, run statuses, 0: runs
    start at once)."""
    from photo_assets.definitions import defs
    from photo_assets.partitions import photo_batches

    os.environ.update(env)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        job = defs.resolve_implicit_global_asset_job_def().get_subset(asset_selection=set(batch_assets()))
        started = time.perf_counter()
        instance.add_dynamic_partitions(photo_batches.name, batches)
        for batch in batches:
            job.execute_in_process(instance=instance, partition_key=batch, run_config=QUIET_LOGS, raise_on_error=False)
        elapsed = time.perf_counter() - started
        return elapsed, [record.dagster_run.status.value for record in instance.get_run_records()], 0.0


def run_backfill(
    batches: list[str],
    home: Path,
    env: dict[str, str],
    scratch: Path,
    run_config: dict | None = None,
    batches_per_run: int | None = None,
) -> tuple[float, list[str], float]:
    """One backfill of every batch through `dagster dev` (webserver + daemon): (seconds from the launch to the end of
    the last run, run statuses, seconds from the launch to the start of the first run)."""
    from photo_assets.partitions import photo_batches

    os.environ.update(env)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.add_dynamic_partitions(photo_batches.name, batches)
    policy = {settings.BATCHES_PER_BACKFILL_RUN_ENV: str(batches_per_run)} if batches_per_run else {}
    with dagster_dev({**env, **policy, "DAGSTER_HOME": str(home)}, scratch / "dagster-dev.log") as dev:
        for repository in dev.graphql(SENSORS)["repositoriesOrError"]["nodes"]:
            for sensor in repository["sensors"]:
                dev.graphql(STOP_SENSOR, {"id": sensor["sensorState"]["id"]})
        params = {"partitionNames": batches, "assetSelection": [{"path": key.path} for key in batch_assets()]}
        if run_config:
            params["runConfigData"] = run_config
        launched = dev.graphql(LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
        if launched["__typename"] != "LaunchBackfillSuccess":
            raise RuntimeError(f"backfill not launched: {launched}")
        launched_at = time.time()
        runs = wait_for_backfill(dev, launched["backfillId"])
        completed_at = time.time()
        failures = [line for line in dev.log_text().splitlines() if "STEP_FAILURE" in line or "RUN_FAILURE" in line]
    for line in failures[:FAILURE_LINES_SHOWN]:
        print(f"  failed: {line[:500]}")
    created = [run["creationTime"] - launched_at for run in runs]
    queued = [run["startTime"] - run["creationTime"] for run in runs if run["startTime"]]
    running = [run["endTime"] - run["startTime"] for run in runs if run["startTime"] and run["endTime"]]
    first_start = min(run["startTime"] for run in runs if run["startTime"]) - launched_at
    last_end = max(run["endTime"] for run in runs if run["endTime"]) - launched_at
    print(
        f"  backfill timeline: runs created {min(created):.1f}-{max(created):.1f} s after the launch, the first "
        f"started at {first_start:.1f} s, the last ended at {last_end:.1f} s, the backfill was marked done at "
        f"{completed_at - launched_at:.1f} s; {sum(queued) / len(queued):.1f} s mean from creation to start (queue "
        f"and process launch); {sum(running) / len(running):.1f} s mean from start to end"
    )
    return last_end, [run["status"] for run in runs], first_start


def wait_for_backfill(dev: DagsterDev, backfill_id: str) -> list[dict]:
    deadline = time.monotonic() + BACKFILL_TIMEOUT_S
    while time.monotonic() < deadline:
        answer = dev.graphql(BACKFILL_RUNS, {"id": backfill_id})
        runs = answer["runsOrError"]["results"]
        if answer["partitionBackfillOrError"]["status"] not in BACKFILL_IN_PROGRESS and all(
            run["status"] in RUN_TERMINAL for run in runs
        ):
            return runs
        time.sleep(POLL_INTERVAL_S)
    raise TimeoutError(f"backfill {backfill_id} not finished after {BACKFILL_TIMEOUT_S} s:\n{dev.log_tail()}")


Pass = Callable[[list[str], Path, dict[str, str], Path], tuple[float, list[str], float]]


def orchestrated_passes(server: PostgresServer, skip_backfill: bool) -> list[tuple[str, Pass, bool]]:
    """(description, how, through the Unix socket) for every pass the server allows."""
    passes = [("in-process runs, Postgres over TCP", run_in_process, False)]
    if server.socket_dir:
        passes.append(("in-process runs, Postgres over its Unix socket", run_in_process, True))
    if not skip_backfill:
        one_batch_per_run = partial(run_backfill, batches_per_run=1)
        passes += [
            ("backfill by the daemon, in-process executor, Postgres over TCP", partial(run_backfill, run_config=IN_PROCESS), False),
            ("backfill by the daemon, default executor (a process per step), Postgres over TCP", run_backfill, False),
            ("the same, one batch per run (before the backfill policy)", one_batch_per_run, False),
        ]
    return passes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=DEFAULT_PHOTOS)
    parser.add_argument("--skip-backfill", action="store_true", help="skip the pass through dagster dev's daemon")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="photo-assets-bench-") as scratch_dir:
        scratch = Path(scratch_dir)
        library = scratch / "library"
        started = time.perf_counter()
        generate_library(library, args.photos)
        print(f"library: {args.photos} photos of {PHOTO_SIZE[0]}x{PHOTO_SIZE[1]} in {time.perf_counter() - started:.1f} s")
        point_at(library, scratch / "data-0")  # before the definitions are imported: their paths follow the variables
        print(f"per batch: {', '.join(key.to_user_string() for key in batch_assets())}")

        results = []
        with postgres_server() as server:
            for index, (description, orchestrate, via_socket) in enumerate(
                orchestrated_passes(server, args.skip_backfill)
            ):
                data, home = scratch / f"data-{index}", dagster_home(scratch / f"home-{index}", POSTGRES_HOME_TEMPLATE)
                point_at(library, data)
                started = time.perf_counter()
                batches = cut_batches(library, data)
                scan_s = time.perf_counter() - started
                with fresh_database(server) as database:
                    env = {**database.env(via_socket), settings.LIBRARY_ENV: str(library), settings.DATA_ENV: str(data)}
                    elapsed, statuses, latency = orchestrate(batches, home, env, scratch / f"pass-{index}")
                succeeded = statuses.count("SUCCESS")
                print(
                    f"{description}: {elapsed:.1f} s, {args.photos / elapsed:.0f} photos/s; {len(batches)} batches "
                    f"(scan and cut {scan_s:.1f} s, not counted); runs launched: {len(statuses)}, {succeeded} succeeded"
                )
                results.append((description, elapsed, latency))

        direct_data = scratch / "data-direct"
        batches = cut_batches(library, direct_data)
        direct_s = analyse_directly(library, direct_data, batches)
        print(f"direct (asset functions in-process, no Dagster run): {direct_s:.1f} s, {args.photos / direct_s:.0f} photos/s")
        for description, elapsed, latency in results:
            overhead_ms = (elapsed - direct_s) / args.photos * 1000
            verdict = "within" if overhead_ms <= TARGET_OVERHEAD_MS_PER_PHOTO else "OVER"
            line = (
                f"overhead, {description}: {overhead_ms:.2f} ms/photo ({(elapsed - direct_s) / len(batches):.2f} s "
                f"per batch of {DEFAULT_BATCH_SIZE}); target <= {TARGET_OVERHEAD_MS_PER_PHOTO:.0f} ms/photo: {verdict}"
            )
            if latency:
                steady_ms = (elapsed - latency - direct_s) / args.photos * 1000
                line += f"; without the daemon's {latency:.0f} s before the first run: {steady_ms:.2f} ms/photo"
            print(line)


if __name__ == "__main__":
    main()
