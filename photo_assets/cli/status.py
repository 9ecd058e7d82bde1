"""`photo-assets status`: what a user asks first — how much is catalogued and analysed, what failed, what is stale."""

from __future__ import annotations

import time
from collections import Counter

import click
import dagster as dg
import pyarrow.compute as pc

from photo_assets.assets.names import LABEL_LOG_KEY, PERSON_CLUSTERS_KEY
from photo_assets.cli.options import current_settings, dagster_instance, data_option, emit_json, json_option
from photo_assets.storage import DataLayout, DataStore
from photo_assets.storage.layout import (
    COLOR_HISTOGRAMS,
    FACE_DETECTIONS,
    FACE_EMBEDDINGS,
    FACE_SCANS,
    LOCATIONS,
    OBJECT_DETECTIONS,
    PHOTOS,
)
from photo_assets.storage.people import load_people, load_people_faces, other_tools_counts

# Per-batch assets whose outputs are counted per distinct photo. face_scans (every photo scanned for faces and
# objects, with some or not) is how much of the library the face step has covered; face_detections counts photos
# with faces, object_detections photos with objects.
PHOTO_ASSETS = [COLOR_HISTOGRAMS, LOCATIONS, FACE_SCANS, FACE_DETECTIONS, FACE_EMBEDDINGS, OBJECT_DETECTIONS]
LABELS = {FACE_SCANS: "scanned for faces and objects", OBJECT_DETECTIONS: "photos with objects"}
LAST_RUNS = 5


def _distinct_photos(store: DataStore, asset: str) -> int | None:
    table = store.read_all(asset, columns=["photo_id"])
    return None if table is None else len(pc.unique(table["photo_id"].drop_null()))


def library_summary(layout: DataLayout) -> dict:
    """What the data folder holds: files and photos catalogued, errors by kind, photos per analysis, faces, people."""
    store = DataStore(layout)
    catalog = store.read_all(PHOTOS, columns=["photo_id", "error_kind"])
    summary: dict = {"files": 0}
    if catalog is not None:
        summary = {
            "files": catalog.num_rows,
            "photos": len(pc.unique(catalog["photo_id"].drop_null())),
            "errors": dict(Counter(kind for kind in catalog["error_kind"].to_pylist() if kind).most_common()),
            "analysed_photos": {asset: _distinct_photos(store, asset) for asset in PHOTO_ASSETS},
        }
    faces = store.read_all(FACE_EMBEDDINGS, columns=["face_id"])
    summary["faces"] = 0 if faces is None else faces.num_rows
    people = load_people(layout)
    if people is not None:
        named = int(pc.sum(people["named"]).as_py() or 0)
        summary["people"] = {"total": people.num_rows, "named": named, "unknown": people.num_rows - named}
    summary["from_other_tools"] = other_tools_counts(layout, load_people_faces(layout))
    return summary


def instance_summary(instance: dg.DagsterInstance, defs: dg.Definitions, batches_name: str) -> dict:
    """Per asset: batches materialized, when, and whether code or edits changed since (the UI's "stale")."""
    graph = defs.resolve_asset_graph()
    batches = set(instance.get_dynamic_partitions(batches_name))
    edited = _latest_observation(instance, LABEL_LOG_KEY)
    assets = {}
    for key in sorted(graph.materializable_asset_keys, key=lambda k: k.to_user_string()):
        node = graph.get(key)
        event = instance.get_latest_materialization_event(key)
        entry: dict = {"materialized": event is not None}
        if event is not None:
            recorded = event.asset_materialization.tags.get("dagster/code_version") if event.asset_materialization else None
            entry["last_materialized"] = event.timestamp
            entry["stale"] = None
            if node.code_version and recorded != node.code_version:
                entry["stale"] = "code changed since"
            if key == PERSON_CLUSTERS_KEY and edited and edited > event.timestamp:
                entry["stale"] = "people edited since"
            if node.partitions_def is not None:
                entry["batches"] = len(instance.get_materialized_partitions(key) & batches)
                entry["batches_total"] = len(batches)
        assets[key.to_user_string()] = entry
    runs = [
        {"run_id": run.run_id, "status": run.status.value, "job": run.job_name,
         "partition": run.tags.get("dagster/partition", "")}
        for run in instance.get_runs(limit=LAST_RUNS)
    ]
    return {"assets": assets, "last_runs": runs}


def _latest_observation(instance: dg.DagsterInstance, key: dg.AssetKey) -> float | None:
    records = instance.fetch_observations(key, limit=1).records
    return records[0].timestamp if records else None


def _ago(timestamp: float) -> str:
    seconds = int(time.time() - timestamp)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


def _library_lines(summary: dict) -> list[str]:
    if not summary["files"]:
        lines = ["nothing catalogued yet: run `photo-assets run` or start `dagster dev`"]
    else:
        errors = summary["errors"]
        lines = [
            f"photos catalogued: {summary['files']} files, {summary['photos']} distinct photos",
            "errors: " + (", ".join(f"{kind} {count}" for kind, count in errors.items()) if errors else "none"),
        ]
        for asset, count in summary["analysed_photos"].items():
            if count is None:
                lines.append(f"{LABELS.get(asset, asset)}: not materialized")
                continue
            share = f" ({count / summary['photos']:.0%} of the library)" if summary["photos"] else ""
            lines.append(f"{LABELS.get(asset, asset)}: {count}/{summary['photos']} photos{share}")
    lines.append(f"faces embedded: {summary['faces']}")
    if "people" in summary:
        people = summary["people"]
        lines.append(f"people: {people['total']} ({people['named']} named, {people['unknown']} unknown)")
    imports = summary["from_other_tools"]
    if imports["person_regions"] or imports["faces_added_by_hand"]:
        lines.append(f"names from other tools' files: {imports['faces_by_file']} faces named, from "
                     f"{imports['person_regions']} face regions; {imports['region_conflicts']} conflicts (see the "
                     "Unsorted page)")
        lines.append(f"faces added: {imports['faces_added_from_regions']} from regions, "
                     f"{imports['faces_added_by_hand']} by hand")
    return lines


def _instance_lines(summary: dict) -> list[str]:
    lines = []
    for asset, entry in summary["assets"].items():
        if not entry["materialized"]:
            lines.append(f"{asset}: never materialized")
            continue
        done = f"{entry['batches']}/{entry['batches_total']} batches, " if "batches" in entry else ""
        stale = f" — STALE: {entry['stale']}" if entry["stale"] else ""
        lines.append(f"{asset}: {done}last {_ago(entry['last_materialized'])}{stale}")
    lines.append(f"last {len(summary['last_runs'])} runs:")
    for run in summary["last_runs"]:
        lines.append(f"  {run['run_id'][:8]} {run['status']:<9} {run['job']} {run['partition']}")
    return lines


@click.command()
@data_option
@json_option
def status(as_json: bool) -> int:
    """Photos catalogued, analysed per asset, errors by kind, faces, people, stale assets, last runs."""
    from photo_assets.definitions import build_definitions
    from photo_assets.partitions import photo_batches

    config = current_settings()
    library = library_summary(DataLayout(config.data_dir))
    instance = instance_summary(dagster_instance(config), build_definitions(config), photo_batches.name)
    if as_json:
        emit_json([{"data_dir": str(config.data_dir), **library, **instance}])
        return 0
    click.echo(f"data folder: {config.data_dir}")
    for line in _library_lines(library) + _instance_lines(instance):
        click.echo(line)
    return 0
