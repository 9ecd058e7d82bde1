"""The storage layer: the only code that knows where anything lives in the data folder (see `layout`)."""

from photo_assets.storage.atomic import write_atomically
from photo_assets.storage.datasets import DataStore, conformed, read_parquet, write_parquet
from photo_assets.storage.labels import LabelLog
from photo_assets.storage.layout import DataLayout

__all__ = ["DataLayout", "DataStore", "LabelLog", "conformed", "read_parquet", "write_atomically", "write_parquet"]
