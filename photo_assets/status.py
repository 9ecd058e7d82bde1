"""`photo-assets status`: what a user asks first — how much is catalogued and analysed, what failed, what is stale."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import dagster as dg
import pyarrow.compute as pc
import pyarrow.parquet as pq

from photo_assets.analysis.people import PEOPLE_PATH

from photo_assets.storage import DataStore

# Per-batch assets whose outputs are counted per distinct photo.
PHOTO_ASSETS = ["color_histograms", "locations", "face_detections", "face_embeddings"]
LAST_RUNS = 5


def _distinct_photos(store: DataStore, asset: str) -> int | None:
    table = store.read_all(asset, columns=["photo_id"])
    return None if table is None else len(pc.unique(table["photo_id"].drop_null()))


def library_summary(data_dir: Path) -> list[str]:
    store = DataStore(data_dir)
    lines = []
    catalog = store.read_all("photos", columns=["photo_id", "error_kind"])
    if catalog is None:
        return ["nothing catalogued yet: run `photo-assets run` or start `dagster dev`"]
    errors = Counter(kind for kind in catalog["error_kind"].to_pylist() if kind)
    lines.append(f"photos catalogued: {catalog.num_rows} files, {len(pc.unique(catalog['photo_id'].drop_null()))} distinct photos")
    lines.append(
        "errors: " + (", ".join(f"{kind} {count}" for kind, count in errors.most_common()) if errors else "none")
    )
    for asset in PHOTO_ASSETS:
        count = _distinct_photos(store, asset)
        lines.append(f"{asset}: {'not materialized' if count is None else f'{count} photos'}")
    faces = store.read_all("face_embeddings", columns=["face_id"])
    if faces is not None:
        lines.append(f"faces embedded: {faces.num_rows}")
    if (data_dir / PEOPLE_PATH).exists():
        people = pq.read_table(data_dir / PEOPLE_PATH, columns=["name"])["name"].to_pylist()
        unknown = sum(name.startswith("Unknown person ") for name in people)
        lines.append(f"people: {len(people)} ({len(people) - unknown} named, {unknown} unknown)")
    return lines


def instance_summary(instance: dg.DagsterInstance, defs: dg.Definitions, batches_name: str) -> list[str]:
    """Per asset: batches materialized, and whether the code changed since (the UI's "stale")."""
    graph = defs.resolve_asset_graph()
    batches = set(instance.get_dynamic_partitions(batches_name))
    edited = _latest_observation(instance, dg.AssetKey("label_log"))
    lines = []
    for key in sorted(graph.materializable_asset_keys, key=lambda k: k.to_user_string()):
        node = graph.get(key)
        event = instance.get_latest_materialization_event(key)
        if event is None:
            lines.append(f"{key.to_user_string()}: never materialized")
            continue
        recorded = event.asset_materialization.tags.get("dagster/code_version") if event.asset_materialization else None
        stale = " — STALE: code changed since" if node.code_version and recorded != node.code_version else ""
        if key == dg.AssetKey("person_clusters") and edited and edited > event.timestamp:
            stale = " — STALE: people edited since"
        done = ""
        if node.partitions_def is not None:
            materialized = instance.get_materialized_partitions(key) & batches
            done = f"{len(materialized)}/{len(batches)} batches, "
        lines.append(f"{key.to_user_string()}: {done}last {_ago(event.timestamp)}{stale}")
    runs = instance.get_runs(limit=LAST_RUNS)
    lines.append(f"last {len(runs)} runs:")
    for run in runs:
        partition = run.tags.get("dagster/partition", "")
        lines.append(f"  {run.run_id[:8]} {run.status.value:<9} {run.job_name} {partition}")
    return lines


def _latest_observation(instance: dg.DagsterInstance, key: dg.AssetKey) -> float | None:
    records = instance.fetch_observations(key, limit=1).records
    return records[0].timestamp if records else None


def _ago(timestamp: float) -> str:
    seconds = int(time.time() - timestamp)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"
