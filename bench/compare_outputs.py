"""Do two data folders hold the same results? For checking that a change of code left the outputs as they were.

    .venv/bin/python bench/compare_outputs.py DATA_BEFORE DATA_AFTER

Compares every per-batch dataset row for row (whatever the batch keys: rows are matched by photo and face ids),
embeddings within a float tolerance, and person_clusters up to person numbering (the same faces grouped together).
Prints one line per dataset and exits 1 when anything differs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from photo_assets.storage import DataLayout, DataStore  # noqa: E402
from photo_assets.storage.layout import (  # noqa: E402
    COLOR_HISTOGRAMS,
    FACE_DETECTIONS,
    FACE_EMBEDDINGS,
    LOCATIONS,
    PHOTOS,
)

# Rows are put in this order before comparing; columns that differ between two runs by nature are left out.
DATASETS = {
    PHOTOS: (["path"], ["mtime"]),
    COLOR_HISTOGRAMS: (["photo_id", "rank", "color"], []),
    LOCATIONS: (["photo_id"], []),
    FACE_DETECTIONS: (["face_id"], []),
    FACE_EMBEDDINGS: (["face_id"], ["embedding"]),
}
# The same photo through the same network on the same machine: differences only from summation order.
EMBEDDING_TOLERANCE = 1e-4


def _sorted(table: pa.Table, keys: list[str], skip: list[str]) -> pa.Table:
    table = table.sort_by([(key, "ascending") for key in keys])
    return table.select([name for name in table.column_names if name not in skip])


def compare_dataset(before: DataStore, after: DataStore, name: str) -> str | None:
    """None when equal, else what differs."""
    keys, skip = DATASETS[name]
    old, new = before.read_all(name), after.read_all(name)
    if old is None or new is None:
        return None if old is None and new is None else "present in one folder only"
    if old.num_rows != new.num_rows:
        return f"{old.num_rows} rows before, {new.num_rows} after"
    old, new = _sorted(old, keys, skip), _sorted(new, keys, skip)
    if not old.equals(new):
        differing = [column for column in old.column_names if not old[column].equals(new[column])]
        return f"columns differ: {differing}"
    if name == FACE_EMBEDDINGS:
        order_old = before.read_all(name).sort_by("face_id")["embedding"]
        order_new = after.read_all(name).sort_by("face_id")["embedding"]
        gap = np.abs(_vectors(order_old) - _vectors(order_new)).max(initial=0.0)
        if gap > EMBEDDING_TOLERANCE:
            return f"embeddings differ by up to {gap:.2e}"
    return None


def _vectors(column: pa.ChunkedArray) -> np.ndarray:
    return column.combine_chunks().flatten().to_numpy(zero_copy_only=False).reshape(len(column), -1)


def groups(layout: DataLayout) -> set[frozenset[str]] | None:
    """person_clusters as sets of face ids, whatever the person numbers."""
    if not layout.people_faces.exists():
        return None
    faces = pq.read_table(layout.people_faces).to_pylist()
    members: dict[str, set[str]] = {}
    for row in faces:
        members.setdefault(row["person_id"] or f"none:{row['face_id']}", set()).add(row["face_id"])
    return {frozenset(group) for group in members.values()}


def main(before_dir: str, after_dir: str) -> int:
    before, after = DataLayout(Path(before_dir)), DataLayout(Path(after_dir))
    failures = 0
    for name in DATASETS:
        problem = compare_dataset(DataStore(before), DataStore(after), name)
        rows = DataStore(after).read_all(name)
        print(f"{name}: {'same' if problem is None else 'DIFFERENT: ' + problem} ({0 if rows is None else rows.num_rows} rows)")
        failures += problem is not None
    old_groups, new_groups = groups(before), groups(after)
    same = old_groups == new_groups
    print(f"person_clusters: {'same' if same else 'DIFFERENT'} grouping "
          f"({len(new_groups or ())} persons after, {len(old_groups or ())} before)")
    failures += not same
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
