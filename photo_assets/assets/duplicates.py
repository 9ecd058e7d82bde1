"""`near_duplicates`: groups of photos that are one shot (resized, re-encoded, slightly cropped or brightened copies),
over the whole library, from the hashes the colour step makes. Incremental: each run looks up only the photos new
since the last one in the hashes' index; the groups found before stand."""

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from photo_assets.analysis.colours import small_copy
from photo_assets.analysis.contact_sheet import FaceTile, contact_sheet, jpeg_bytes
from photo_assets.analysis.duplicates import ALGORITHM_VERSION, HASHES, group_shots, shot_distance
from photo_assets.analysis.images import PhotoError
from photo_assets.assets.metadata import picture
from photo_assets.assets.names import COLOR_HISTOGRAMS, DUPLICATES_GROUP
from photo_assets.assets.photo_rows import library_photos
from photo_assets.resources import PhotoLibrary
from photo_assets.storage import read_parquet, write_parquet
from photo_assets.storage.layout import FINGERPRINTS

GROUP_SCHEMA = pa.schema(
    [("photo_id", pa.string()), ("group_id", pa.string()), ("distance", pa.int32()), ("version", pa.string())]
)
COMPARED_SCHEMA = pa.schema([("photo_id", pa.string()), ("version", pa.string())])
# The contact sheet: the largest groups, a row each, this many photos of each.
SHEET_GROUPS, SHEET_PHOTOS = 8, 6


def _hashes(photo_library: PhotoLibrary) -> tuple[list[str], list[list[int]]]:
    table = photo_library.store().read_all(FINGERPRINTS, columns=["photo_id", "hashes", "version"])
    if table is None:
        return [], []
    table = table.filter(pc.equal(table["version"], ALGORITHM_VERSION))
    table = table.filter(pc.equal(pc.list_value_length(table["hashes"]), HASHES))  # a flat photo has none
    hashes = dict(zip(table["photo_id"].to_pylist(), table["hashes"].to_pylist()))  # one row per content
    return list(hashes), list(hashes.values())


def _read(path, schema: pa.Schema) -> pa.Table:
    table = read_parquet(path, schema)
    return table.filter(pc.equal(table["version"], ALGORITHM_VERSION))


def _sheet(groups: pa.Table, paths: dict) -> dg.MetadataValue:
    sizes = groups["group_id"].value_counts().to_pylist()
    largest = [entry["values"] for entry in sorted(sizes, key=lambda e: (-e["counts"], e["values"]))][:SHEET_GROUPS]
    rows = []
    for group in largest:
        tiles = []
        for photo_id in groups.filter(pc.equal(groups["group_id"], group))["photo_id"].to_pylist()[:SHEET_PHOTOS]:
            try:
                image = small_copy(paths[photo_id])
            except (PhotoError, KeyError):
                continue
            tiles.append(FaceTile(jpeg_bytes(image)))
        rows.append(tiles)
    if not rows:
        return dg.MetadataValue.md("_(no near-duplicates)_")
    return picture(contact_sheet(rows, [f"{len(row)} of group {group[:8]}" for row, group in zip(rows, largest)]),
                   "near-duplicate groups")


@dg.asset(
    deps=[COLOR_HISTOGRAMS],
    group_name=DUPLICATES_GROUP,
    kinds={"python", "parquet"},
    code_version=ALGORITHM_VERSION,
    automation_condition=dg.AutomationCondition.eager().without(~dg.AutomationCondition.any_deps_missing()),
)
def near_duplicates(photo_library: PhotoLibrary) -> dg.MaterializeResult:
    """Groups of near-duplicate photos (docs/analysis.md, Near-duplicates): near_duplicates/groups.parquet has each
    grouped photo's `photo_id`, `group_id` (its group's smallest photo_id) and `distance` (bits to that photo).
    Exact duplicates (one content at several paths) are one photo_id, as in the catalog."""
    layout = photo_library.layout
    photo_ids, hashes = _hashes(photo_library)
    compared = set(_read(layout.near_duplicates_compared, COMPARED_SCHEMA)["photo_id"].to_pylist())
    previous = _read(layout.near_duplicates, GROUP_SCHEMA)
    new = [photo_id for photo_id in photo_ids if photo_id not in compared]
    groups = group_shots(photo_ids, hashes, new, dict(zip(previous["photo_id"].to_pylist(),
                                                          previous["group_id"].to_pylist())))
    hashes_of = dict(zip(photo_ids, hashes))
    table = pa.Table.from_pylist(
        [{"photo_id": photo_id, "group_id": group, "distance": shot_distance(hashes_of[photo_id], hashes_of[group]),
          "version": ALGORITHM_VERSION} for photo_id, group in sorted(groups.items(), key=lambda item: item[::-1])],
        GROUP_SCHEMA,
    )
    write_parquet(layout.near_duplicates, table)
    write_parquet(layout.near_duplicates_compared,
                  pa.Table.from_pylist([{"photo_id": photo_id, "version": ALGORITHM_VERSION} for photo_id in photo_ids],
                                       COMPARED_SCHEMA))
    paths, _ = library_photos(photo_library)
    return dg.MaterializeResult(metadata={
        "dagster/row_count": table.num_rows,
        "groups": len(set(groups.values())),
        "photos_in_groups": table.num_rows,
        "photos_hashed": len(photo_ids),
        "photos_looked_up_now": len(new),
        "path": dg.MetadataValue.path(str(layout.near_duplicates)),
        "contact_sheet": _sheet(table, paths),
    })
