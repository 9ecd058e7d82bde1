"""Per-batch datasets: one Parquet file per asset and batch, written atomically, read back as one dataset.

`<data>/<asset>/<batch_key>.parquet` holds a batch's rows; the whole asset is `pyarrow.dataset.dataset(<data>/<asset>)`.
When a batch is rewritten, rows of photos that left it (deleted, moved, changed) are kept under
`<data>/_retired/<asset>/`, so that a moved photo's analysis is found again by content hash instead of recomputed,
whatever order the batches re-run in.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from photo_assets.storage.atomic import write_atomically
from photo_assets.storage.layout import DataLayout


def write_parquet(target: Path, table: pa.Table) -> None:
    """One Parquet file, replaced atomically."""
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    write_atomically(target, buffer.getvalue())


def conformed(table: pa.Table | None, schema: pa.Schema) -> pa.Table:
    """The table's columns of `schema`, in its order and types; an empty table of it for no table."""
    return schema.empty_table() if table is None else table.select(schema.names).cast(schema)


def read_parquet(path: Path, schema: pa.Schema) -> pa.Table:
    """A Parquet file written with `schema`, or an empty table of it before the file exists."""
    return conformed(pq.read_table(path) if path.exists() else None, schema)


class DataStore:
    """The per-batch datasets of one data folder."""

    def __init__(self, layout: DataLayout):
        self.layout = layout

    def batch_path(self, asset: str, batch_key: str) -> Path:
        return self.layout.batch_file(asset, batch_key)

    def write_batch(self, asset: str, batch_key: str, table: pa.Table) -> Path:
        """Replace a batch's rows atomically; rows whose photo left the batch are retired for reuse."""
        target = self.batch_path(asset, batch_key)
        if target.exists() and "photo_id" in table.column_names:
            previous = pq.read_table(target)
            left = previous.filter(pc.invert(pc.is_in(previous["photo_id"], value_set=table["photo_id"])))
            if left.num_rows:
                write_parquet(self.layout.retired_dir(asset) / f"{batch_key}-{time.time_ns()}.parquet", left)
        write_parquet(target, table)
        return target

    def read_batch(self, asset: str, batch_key: str) -> pa.Table:
        return pq.read_table(self.batch_path(asset, batch_key))

    def dataset(self, asset: str) -> ds.Dataset | None:
        """The whole asset as one dataset (None before its first batch)."""
        files = self.layout.batch_files(asset)
        return ds.dataset([str(path) for path in files], format="parquet") if files else None

    def read_all(self, asset: str, columns: list[str] | None = None) -> pa.Table | None:
        dataset = self.dataset(asset)
        return dataset.to_table(columns=columns) if dataset else None

    def batch_versions(self, asset: str, batch_key: str) -> set[str] | None:
        """The algorithm versions of a batch's rows (None when the batch has no file for the asset)."""
        path = self.batch_path(asset, batch_key)
        if not path.exists():
            return None
        return set(pq.read_table(path, columns=["version"])["version"].unique().to_pylist())

    def reusable(self, asset: str, photo_ids: list[str], version: str) -> pa.Table | None:
        """Rows already computed with this algorithm `version` for these photos (by content hash), in any batch,
        current or retired; each photo's rows come from one file only, so duplicates never double up."""
        files = [*self.layout.batch_files(asset), *self.layout.retired_files(asset)]
        missing, found = set(photo_ids), []
        for path in files:
            if not missing:
                break
            rows = ds.dataset(str(path), format="parquet").to_table(
                filter=pc.field("photo_id").isin(list(missing)) & (pc.field("version") == version)
            )
            if rows.num_rows:
                found.append(rows)
                missing -= set(rows["photo_id"].to_pylist())
        return pa.concat_tables(found, promote_options="default") if found else None
