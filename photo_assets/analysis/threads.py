"""Per-photo work on every core, in threads: what a photo costs outside the face models is decoding (Pillow),
hashing (hashlib) and array arithmetic (numpy), which all release the GIL, so threads scale where processes would
cost each worker its own imports."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

# One thread per core: more only wait for the GIL or the disk.
PHOTO_THREADS = os.cpu_count() or 1


def map_in_threads(function: Callable[[Item], Result], items: Iterable[Item]) -> Iterator[Result]:
    """`function` of each item, in the items' order, computed PHOTO_THREADS at a time. `function` must not raise:
    per-photo failures are results (recorded errors), so one photo never stops the others."""
    with ThreadPoolExecutor(PHOTO_THREADS, thread_name_prefix="photo") as pool:
        yield from pool.map(function, items)
