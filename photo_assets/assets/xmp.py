"""`xmp_sidecars`: an XMP sidecar per analysed photo, per batch, for digiKam, Lightroom, Immich and PhotoPrism.

By default the sidecars go to a mirror tree in the data folder, `<data>/xmp_sidecars/<path in the library>.xmp`, so
an original's folder is never touched. With `PhotoLibrary.xmp_beside_photos` they go beside each photo as
`<file>.xmp` (where those tools look), only into folders that are writable. Only named people's faces are
written; `PhotoLibrary.xmp_unnamed_regions` adds unknown people's faces as regions without a name. Each photo's
outcome (written, unchanged, or its error: a malformed sidecar of another tool, left alone; a read-only folder) is a
row of `<data>/xmp_sidecar_log/<batch>.parquet`; one photo's error never stops the batch.
"""

import os
import stat
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from photo_assets.analysis.catalog import display_path
from photo_assets.analysis.xmp import FaceRegion, MalformedSidecar, PhotoTags, merge_sidecar
from photo_assets.assets.batches import BACKFILL_POLICY, BatchOutcome, materialize_batches
from photo_assets.assets.metadata import preview
from photo_assets.assets.names import (
    COLOR_HISTOGRAMS,
    FACE_DETECTIONS,
    LOCATIONS,
    OBJECT_DETECTIONS,
    PERSON_CLUSTERS,
    PHOTOS,
    SIDECARS_GROUP,
    XMP_SIDECARS,
)
from photo_assets.partitions import photo_batches
from photo_assets.resources import PhotoLibrary
from photo_assets.storage import DataLayout, DataStore, write_atomically
from photo_assets.storage.layout import XMP_SIDECAR_LOG, XMP_SUFFIX
from photo_assets.storage.people import load_people, load_people_faces

# v2: regions in the stored photo's frame (readers apply the orientation), not the oriented one. v3: Objects| tags.
XMP_VERSION = "xmp-v3-objects"
# Colours worth a keyword: the photo's largest ones, each at least this share of it.
COLOUR_KEYWORD_MIN_SHARE = 0.15
COLOUR_KEYWORDS = 3
WRITTEN, UNCHANGED, FAILED = "written", "unchanged", "error"
LOG_SCHEMA = pa.schema(
    [("photo_id", pa.string()), ("path", pa.string()), ("sidecar", pa.string()), ("status", pa.string()),
     ("error", pa.string()), ("version", pa.string())]
)
CHECK_NO_ERRORS = "every_sidecar_written"


def sidecar_path(photo_library: PhotoLibrary, relative: str) -> Path:
    """Where the sidecar of the library file `relative` goes: the mirror tree, or beside the photo when opted in."""
    if photo_library.xmp_beside_photos:
        return Path(photo_library.library_dir) / f"{relative}{XMP_SUFFIX}"
    return photo_library.layout.sidecar(relative)


@dg.asset(
    partitions_def=photo_batches,
    backfill_policy=BACKFILL_POLICY,
    group_name=SIDECARS_GROUP,
    kinds={"python", "xmp"},
    code_version=XMP_VERSION,
    deps=[PHOTOS, LOCATIONS, COLOR_HISTOGRAMS, OBJECT_DETECTIONS, PERSON_CLUSTERS],
    # A rename re-clusters people, and every batch's sidecars follow; so does a batch's own new analysis.
    automation_condition=dg.AutomationCondition.eager(),
    check_specs=[dg.AssetCheckSpec(CHECK_NO_ERRORS, asset=XMP_SIDECARS)],
)
def xmp_sidecars(context: dg.AssetExecutionContext, photo_library: PhotoLibrary) -> dg.MaterializeResult:
    """An XMP sidecar per catalogued photo: named faces as MWG regions and Microsoft People Tags, names in
    Iptc4xmpExt:PersonInImage, keywords (People|, Places|, Colours|, Objects|) in dc:subject and lr:hierarchicalSubject,
    country, city, country code and GPS. Merged into an existing sidecar: other tools' properties are kept."""
    metadata, checks = materialize_batches(context, lambda batch_key: _sidecar_batch(photo_library, batch_key))
    return dg.MaterializeResult(metadata=metadata[None], check_results=checks)


def _read_batch_or_none(store: DataStore, asset: str, batch_key: str) -> pa.Table | None:
    path = store.batch_path(asset, batch_key)
    return pq.read_table(path) if path.exists() else None


def _places(store: DataStore, batch_key: str) -> dict[str, dict]:
    table = _read_batch_or_none(store, LOCATIONS, batch_key)
    if table is None:
        return {}
    return {row["photo_id"]: row for row in table.select(["photo_id", "country", "country_code", "city"]).to_pylist()}


def _colours(store: DataStore, batch_key: str) -> dict[str, list[str]]:
    table = _read_batch_or_none(store, COLOR_HISTOGRAMS, batch_key)
    if table is None:
        return {}
    kept = table.filter(pc.and_(pc.is_null(table["error"]), pc.greater_equal(table["score"], COLOUR_KEYWORD_MIN_SHARE)))
    colours: dict[str, list[str]] = {}
    for row in kept.sort_by([("photo_id", "ascending"), ("rank", "ascending")]).to_pylist():
        chosen = colours.setdefault(row["photo_id"], [])
        if len(chosen) < COLOUR_KEYWORDS:
            chosen.append(row["color"])
    return colours


def _objects(store: DataStore, batch_key: str) -> dict[str, list[str]]:
    """Per photo, the labels of the objects found in it (each once)."""
    table = _read_batch_or_none(store, OBJECT_DETECTIONS, batch_key)
    labels: dict[str, set[str]] = {}
    for row in [] if table is None else table.select(["photo_id", "label"]).to_pylist():
        labels.setdefault(row["photo_id"], set()).add(row["label"])
    return {photo_id: sorted(found) for photo_id, found in labels.items()}


def _named_faces(
    store: DataStore, layout: DataLayout, photo_ids: list[str], unnamed: bool = False
) -> dict[str, list[FaceRegion]]:
    """Per photo, its faces whose person the user named, with their boxes (oriented pixels); with `unnamed`, the
    faces of unknown people too, with no name."""
    faces, people = load_people_faces(layout), load_people(layout)
    if faces is None or people is None:
        return {}
    named = people.filter(pc.equal(people["named"], True))
    names = dict(zip(named["person_id"].to_pylist(), named["name"].to_pylist()))
    faces = faces.select(["face_id", "photo_id", "person_id"]).filter(pc.is_in(faces["photo_id"], pa.array(photo_ids, pa.string())))
    if not unnamed:
        faces = faces.filter(pc.is_in(faces["person_id"], pa.array(list(names), pa.string())))
    faces = faces.filter(pc.is_valid(faces["person_id"]))  # a face the user said is no face is not a region
    detections = store.dataset(FACE_DETECTIONS)
    if not faces.num_rows or detections is None:
        return {}
    boxes = detections.to_table(
        columns=["face_id", "x", "y", "width", "height"], filter=pc.field("face_id").isin(faces["face_id"].to_pylist())
    )
    box_of = {row["face_id"]: row for row in boxes.to_pylist()}
    regions: dict[str, list[FaceRegion]] = {}
    for face in faces.to_pylist():
        box = box_of.get(face["face_id"])
        if box:
            regions.setdefault(face["photo_id"], []).append(
                FaceRegion(names.get(face["person_id"], ""), box["x"], box["y"], box["width"], box["height"])
            )
    return regions


def _read_only_folder(folder: Path) -> bool:
    """A folder nobody may write to by its permission bits: read-only, even for root (who could write anyway)."""
    try:
        mode = folder.stat().st_mode
    except OSError:
        return False
    return not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) or not os.access(folder, os.W_OK)


def write_sidecar(target: Path, tags: PhotoTags, beside_photo: bool) -> str:
    """Merge `tags` into the sidecar at `target` and write it atomically if it changed: WRITTEN or UNCHANGED.
    Raises MalformedSidecar (the existing file is left as it was) or OSError."""
    existing = target.read_bytes() if target.exists() else None
    payload = merge_sidecar(tags, existing)
    if payload == existing:
        return UNCHANGED
    if beside_photo and _read_only_folder(target.parent):
        raise PermissionError(f"the library folder {target.parent} is read-only")
    write_atomically(target, payload)
    return WRITTEN


def _remove_departed(photo_library: PhotoLibrary, previous: pa.Table | None, written: set[str]) -> int:
    """Sidecars of the mirror tree this batch wrote before for files that have left that path (deleted, or moved:
    the new path gets a sidecar of its own from its batch): removed, with folders left empty, so the mirror follows
    the library. Sidecars beside the photos (in the library) are never removed."""
    if previous is None or photo_library.xmp_beside_photos:
        return 0
    mirror, library = photo_library.layout.xmp_sidecars, Path(photo_library.library_dir)
    removed = 0
    for sidecar in sorted(set(previous["sidecar"].to_pylist()) - written):
        path = Path(sidecar)
        if not path.is_relative_to(mirror) or not path.name.endswith(XMP_SUFFIX):
            continue
        photo = library / str(path.relative_to(mirror))[: -len(XMP_SUFFIX)]
        if photo.exists() or not path.exists():
            continue
        path.unlink()
        removed += 1
        for folder in path.parents:
            if folder == mirror or not folder.is_relative_to(mirror) or any(folder.iterdir()):
                break
            folder.rmdir()
    return removed


def _sidecar_batch(photo_library: PhotoLibrary, batch_key: str) -> BatchOutcome:
    store = photo_library.store()
    previous = _read_batch_or_none(store, XMP_SIDECAR_LOG, batch_key)
    catalog = store.read_batch(PHOTOS, batch_key)
    catalog = catalog.filter(pc.is_null(catalog["error"]))
    _, entries = photo_library.manifest(batch_key)
    real_paths = {display_path(entry.path): entry.path for entry in entries}
    photo_ids = sorted(set(catalog["photo_id"].to_pylist()))
    places, colours, objects = _places(store, batch_key), _colours(store, batch_key), _objects(store, batch_key)
    faces = _named_faces(store, photo_library.layout, photo_ids, photo_library.xmp_unnamed_regions)
    rows = []
    for photo in catalog.sort_by("path").to_pylist():
        relative = real_paths.get(photo["path"], photo["path"])
        target = sidecar_path(photo_library, relative)
        place = places.get(photo["photo_id"], {})
        tags = PhotoTags(
            width=photo["width"] or 0,
            height=photo["height"] or 0,
            faces=faces.get(photo["photo_id"], []),
            colours=colours.get(photo["photo_id"], []),
            objects=objects.get(photo["photo_id"], []),
            country=place.get("country"),
            country_code=place.get("country_code"),
            city=place.get("city"),
            latitude=photo["latitude"],
            longitude=photo["longitude"] if photo["latitude"] is not None else None,
            orientation=photo["orientation"] or 1,
        )
        row = {"photo_id": photo["photo_id"], "path": photo["path"], "sidecar": display_path(str(target)),
               "version": XMP_VERSION}
        try:
            row["status"] = write_sidecar(target, tags, photo_library.xmp_beside_photos)
        except MalformedSidecar as error:
            row |= {"status": FAILED, "error": f"existing sidecar left alone: {error}"}
        except OSError as error:
            row |= {"status": FAILED, "error": f"cannot write {display_path(str(target))}: {error.strerror or error}"}
        rows.append(row)
    table = pa.Table.from_pylist(rows, schema=LOG_SCHEMA)
    removed = _remove_departed(photo_library, previous, set(table["sidecar"].to_pylist()))
    path = store.write_batch(XMP_SIDECAR_LOG, batch_key, table)
    statuses = table["status"].to_pylist()
    failed = statuses.count(FAILED)
    metadata = {
        "dagster/row_count": table.num_rows,
        "path": dg.MetadataValue.path(str(path)),
        "sidecars_written": statuses.count(WRITTEN),
        "sidecars_unchanged": statuses.count(UNCHANGED),
        "errors": failed,
        "sidecars_removed": removed,  # of photos deleted or moved away since the batch's last sidecars
        "photos_with_face_regions": len(faces),
        "beside_photos": photo_library.xmp_beside_photos,
        "preview": preview(table.filter(pc.equal(table["status"], FAILED)) if failed else table,
                           ["path", "status", "error"]),
    }
    check = dg.AssetCheckResult(
        check_name=CHECK_NO_ERRORS,
        passed=failed == 0,
        severity=dg.AssetCheckSeverity.WARN,
        description="Every photo's sidecar was written (or already up to date); errors are listed per photo.",
        metadata={"errors": failed},
    )
    return {None: metadata}, [check]
