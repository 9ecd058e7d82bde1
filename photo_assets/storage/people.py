"""Whole-library outputs: the face index build in use and the person_clusters tables, each switched atomically.

The index: a build's files are written under fresh names beside the old ones, then `current.json` is replaced in one
rename to point at them; a reader holding the previous build keeps working. The people: faces.parquet and
people.parquet at fixed paths, each replaced atomically.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from annoy import AnnoyIndex

from photo_assets.analysis.people import ASSIGNED_BY_FILE, FACE_SCHEMA, FaceIndex, PeopleResult
from photo_assets.storage.atomic import write_atomically
from photo_assets.storage.datasets import write_parquet
from photo_assets.storage.layout import DataLayout


def save_index(index: FaceIndex, layout: DataLayout) -> Path:
    """Write a build's files under fresh names, then switch `current.json` to them in one atomic rename; builds
    older than the previous one are removed (a reader still holding the previous one keeps working)."""
    directory = layout.index_dir
    directory.mkdir(parents=True, exist_ok=True)
    stamp = f"{time.time_ns()}"
    annoy_name, faces_name = layout.index_build_names(stamp)
    temporary = layout.index_file(f".{annoy_name}.tmp")
    index.annoy.save(str(temporary))
    temporary.rename(layout.index_file(annoy_name))
    k = index.neighbours.shape[1]
    table = pa.table(
        {
            "face_id": pa.array(index.face_ids.tolist(), pa.string()),
            "fingerprint": pa.array(index.fingerprints, pa.uint64()),
            "neighbours": pa.FixedSizeListArray.from_arrays(pa.array(index.neighbours.ravel()), k),
            "distances": pa.FixedSizeListArray.from_arrays(pa.array(index.distances.ravel()), k),
        }
    )
    write_parquet(layout.index_file(faces_name), table)
    pointer = layout.index_pointer
    previous = json.loads(pointer.read_text()) if pointer.exists() else None
    document = {"index_file": annoy_name, "faces_file": faces_name, "dims": int(index.annoy.f), **index.info}
    write_atomically(pointer, json.dumps(document, indent=1).encode())
    keep = {annoy_name, faces_name} | ({previous["index_file"], previous["faces_file"]} if previous else set())
    for old in layout.index_build_files():
        if old.name not in keep:
            old.unlink(missing_ok=True)
    return pointer


def load_index(layout: DataLayout) -> FaceIndex | None:
    """The current build, memory-mapped; None before the first build."""
    pointer = layout.index_pointer
    if not pointer.exists():
        return None
    document = json.loads(pointer.read_text())
    annoy = AnnoyIndex(document["dims"], "euclidean")
    annoy.load(str(layout.index_file(document["index_file"])))
    table = pq.read_table(layout.index_file(document["faces_file"]))
    k = table.schema.field("neighbours").type.list_size
    rows = table.num_rows
    info = {key: value for key, value in document.items() if key not in {"index_file", "faces_file", "dims"}}
    return FaceIndex(
        annoy,
        np.asarray(table["face_id"].to_pylist(), dtype=object),
        table["fingerprint"].to_numpy(),
        pc.list_flatten(table["neighbours"]).to_numpy().reshape(rows, k).astype(np.int32),
        pc.list_flatten(table["distances"]).to_numpy().reshape(rows, k).astype(np.float32),
        info,
    )


def save_people(result: PeopleResult, layout: DataLayout) -> tuple[Path, Path, Path]:
    """Write the three tables to their fixed paths, each atomically (faces first: it is what the next run reads)."""
    write_parquet(layout.people_faces, result.faces)
    write_parquet(layout.people, result.people)
    write_parquet(layout.suggestions, result.suggestions)
    return layout.people_faces, layout.people, layout.suggestions


def load_people_faces(layout: DataLayout) -> pa.Table | None:
    """The last run's faces table (every face's person), or None before the first run. A file an older release
    wrote gets the columns added since, empty, so readers need not care until person_clusters runs again."""
    if not layout.people_faces.exists():
        return None
    faces = pq.read_table(layout.people_faces)
    for column in FACE_SCHEMA.names:
        if column not in faces.column_names:
            faces = faces.append_column(column, pa.nulls(faces.num_rows, FACE_SCHEMA.field(column).type))
    return faces


def load_people(layout: DataLayout) -> pa.Table | None:
    """The last run's people table, or None before the first run."""
    return pq.read_table(layout.people) if layout.people.exists() else None


def load_suggestions(layout: DataLayout) -> pa.Table | None:
    """The last run's merge suggestions, best first, or None before the first run."""
    return pq.read_table(layout.suggestions).sort_by("rank") if layout.suggestions.exists() else None


def _optional(path: Path) -> pa.Table | None:
    return pq.read_table(path) if path.exists() else None


# How an added face came: drawn by the user, or for a region of another tool (added_faces' `added_by`).
BY_HAND, FROM_REGION = "hand", "region"


def other_tools_counts(layout: DataLayout, faces: pa.Table | None) -> dict[str, int]:
    """What other tools' files and the user's drawing brought to people: faces named by files (in `faces`,
    person_clusters' faces table), person regions read, conflicts, and faces added from regions and by hand."""
    regions, added, conflicts = load_face_regions(layout), load_added_faces(layout), load_region_conflicts(layout)
    added_by = [] if added is None else added["added_by"].to_pylist()
    return {
        "faces_by_file": 0 if faces is None
        else int(pc.sum(pc.equal(faces["assigned_by"], ASSIGNED_BY_FILE)).as_py() or 0),
        "person_regions": 0 if regions is None else int(pc.sum(pc.is_valid(regions["face_id"])).as_py() or 0),
        "region_conflicts": 0 if conflicts is None else conflicts.num_rows,
        "faces_added_from_regions": added_by.count(FROM_REGION),
        "faces_added_by_hand": added_by.count(BY_HAND),
    }


def load_added_faces(layout: DataLayout) -> pa.Table | None:
    """added_faces' list of the faces it added: face_id, photo_id, added_by (region or hand), origin."""
    return _optional(layout.added_faces)


def load_region_conflicts(layout: DataLayout) -> pa.Table | None:
    """Regions of other tools that disagree: kind, photo_id, names, face_ids, sources."""
    return _optional(layout.region_conflicts)


def load_face_regions(layout: DataLayout) -> pa.Table | None:
    return _optional(layout.face_regions)
