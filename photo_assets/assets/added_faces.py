"""`added_faces`: the faces the detector did not find, added from other tools' face regions and from the boxes the
user drew, and the names those regions give, recorded in the label log as imports (weaker than any edit).

Regions are read from every catalogued photo's sidecars (`IMG_1.jpg.xmp`, `IMG_1.xmp`) and embedded XMP, never from
the data folder, and never written: a photo is read again only when it or its sidecars change. The added faces are
embedded like found ones and stored beside the batches of face_detections and face_embeddings, so everything that
reads faces sees them. Runs in the `face_models` pool (it embeds).
"""

from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from photo_assets.analysis.contact_sheet import FaceTile, grid
from photo_assets.analysis.faces import MIN_GIVEN_FACE_SIDE, FaceAnalyzer, face_id, face_in_box
from photo_assets.analysis.images import PhotoError
from photo_assets.analysis.regions import (
    Conflict,
    PlacedRegion,
    import_changes,
    match_regions,
    plan_imports,
    read_photo_regions,
    sidecar_signature,
)
from photo_assets.assets.faces import DETECTION_SCHEMA, EMBEDDING_SCHEMA, face_rows
from photo_assets.assets.metadata import picture, preview
from photo_assets.assets.names import (
    FACE_DETECTIONS,
    FACE_EMBEDDINGS,
    FACE_POOL,
    FACE_STEP_TAGS,
    LABEL_LOG,
    PEOPLE_GROUP,
)
from photo_assets.assets.observations import label_log_observation
from photo_assets.assets.photo_rows import library_photos
from photo_assets.resources import FaceModels, PhotoLibrary
from photo_assets.storage import DataLayout, LabelLog, read_parquet, write_atomically, write_parquet
from photo_assets.storage.layout import ADDED_FACES_STEM
from photo_assets.storage.people import BY_HAND, FROM_REGION

# Bump when what is read from a region changes (schemas, orientation, matching): every photo's regions are read again.
REGIONS_VERSION = "regions-v1"
# Added faces' rows carry the model version with this mark, so the faces step never takes them for its own reusable
# rows (a photo whose detector found nothing would otherwise inherit them into its batch).
ADDED_MARK = "+added"
ADDED_SCHEMA = pa.schema(
    [("face_id", pa.string()), ("photo_id", pa.string()), ("added_by", pa.string()), ("origin", pa.string())]
)
SCAN_SCHEMA = pa.schema(
    [("photo_id", pa.string()), ("signature", pa.string()), ("problems", pa.list_(pa.string())),
     ("version", pa.string())]
)
REGION_SCHEMA = pa.schema(
    [("photo_id", pa.string()), ("source", pa.string()), ("tool", pa.string()), ("schema", pa.string()),
     ("kind", pa.string()), ("name", pa.string())]
    + [(name, pa.int32()) for name in ("x", "y", "width", "height")]
    # The face the region names: one the detector found, one added for it, or none (not a person, or too small).
    + [("face_id", pa.string()), ("face_added", pa.bool_())]
)
CONFLICT_SCHEMA = pa.schema(
    [("kind", pa.string()), ("photo_id", pa.string()), ("names", pa.list_(pa.string())),
     ("face_ids", pa.list_(pa.string())), ("sources", pa.list_(pa.string()))]
)
SHEET_FACES = 32


def regions_behind(photo_library: PhotoLibrary) -> bool:
    """A catalogued photo's sidecars changed (or its regions were never read) since added_faces last ran: names in
    other tools' files may have changed, so people are brought up to date even with no new photo."""
    photos, _ = library_photos(photo_library)
    scans = read_parquet(photo_library.layout.region_scans, SCAN_SCHEMA)
    read = {row["photo_id"]: row["signature"] for row in scans.to_pylist() if row["version"] == REGIONS_VERSION}
    return any(read.get(photo_id) != sidecar_signature(path) for photo_id, path in photos.items())


def _regions(photo_library: PhotoLibrary, photos: dict, sizes: dict) -> tuple[pa.Table, pa.Table, int]:
    """(scans, regions, photos read now): regions of photos whose sidecars and content are as last read are kept."""
    layout = photo_library.layout
    scans, regions = read_parquet(layout.region_scans, SCAN_SCHEMA), read_parquet(layout.face_regions, REGION_SCHEMA)
    signatures = {photo_id: sidecar_signature(path) for photo_id, path in photos.items()}
    kept = {row["photo_id"] for row in scans.to_pylist()
            if row["version"] == REGIONS_VERSION and signatures.get(row["photo_id"]) == row["signature"]}
    scan_rows = [row for row in scans.to_pylist() if row["photo_id"] in kept]
    region_rows = [row for row in regions.to_pylist() if row["photo_id"] in kept]
    for photo_id in sorted(set(photos) - kept):
        read = read_photo_regions(photos[photo_id], Path(photo_library.library_dir),
                                  photo_library.follow_external_links)
        scan_rows.append({"photo_id": photo_id, "signature": signatures[photo_id], "problems": read.problems,
                          "version": REGIONS_VERSION})
        for found in read.regions:
            region = found.region
            region_rows.append({"photo_id": photo_id, "source": found.source, "tool": found.tool,
                                "schema": region.schema, "kind": region.kind, "name": region.name,
                                **dict(zip(("x", "y", "width", "height"), region.pixels(*sizes[photo_id])))})
    return (pa.Table.from_pylist(scan_rows, SCAN_SCHEMA), pa.Table.from_pylist(region_rows, REGION_SCHEMA),
            len(set(photos) - kept))


def _found_faces(layout: DataLayout) -> dict[str, list[tuple[str, tuple]]]:
    """photo_id -> [(face_id, box)] of the faces the detector found (the batches, not the added faces)."""
    files = [str(path) for path in layout.batch_files(FACE_DETECTIONS) if path.stem != ADDED_FACES_STEM]
    if not files:
        return {}
    table = ds.dataset(files, format="parquet").to_table(columns=["face_id", "photo_id", "x", "y", "width", "height"])
    found: dict[str, list] = {}
    for row in table.to_pylist():
        found.setdefault(row["photo_id"], []).append((row["face_id"], (row["x"], row["y"], row["width"], row["height"])))
    return found


def _place(regions: pa.Table, found: dict, drawn: dict) -> tuple[pa.Table, list[PlacedRegion], dict]:
    """Each person region's face (found, drawn by the user, or added for it), photo by photo and source by source,
    so two sources' regions of one face meet on the same face. Returns the regions with their faces, the placed
    regions, and face_id -> (photo_id, box, origin) of the faces to add for regions."""
    rows = regions.to_pylist()
    to_add: dict[str, tuple] = {}
    placed: list[PlacedRegion] = []
    by_photo: dict[str, list[dict]] = {}
    for row in rows:
        row["face_id"], row["face_added"] = None, None
        if row["kind"] == "Face" and row["name"] and min(row["width"], row["height"]) >= MIN_GIVEN_FACE_SIDE:
            by_photo.setdefault(row["photo_id"], []).append(row)
    for photo_id, photo_rows in sorted(by_photo.items()):
        faces = list(found.get(photo_id, [])) + [(face, box) for face, (photo, box) in drawn.items() if photo == photo_id]
        for source in sorted({row["source"] for row in photo_rows}):
            of_source = [row for row in photo_rows if row["source"] == source]
            boxes = [(row["x"], row["y"], row["width"], row["height"]) for row in of_source]
            for row, box, match in zip(of_source, boxes, match_regions(boxes, [box for _, box in faces])):
                if match is None:
                    new_face = face_id(photo_id, face_in_box(*box))
                    faces.append((new_face, box))
                    to_add[new_face] = (photo_id, box, source)
                    row["face_id"], row["face_added"] = new_face, True
                else:
                    row["face_id"] = faces[match][0]
                    row["face_added"] = row["face_id"] in to_add
                placed.append(PlacedRegion(photo_id, row["face_id"], source, row["name"]))
    return pa.Table.from_pylist(rows, REGION_SCHEMA), placed, to_add


def _embedded(analyzer: FaceAnalyzer, photos: dict, wanted: dict, previous: dict, version: str, layout: DataLayout):
    """Detection and embedding rows of every wanted face (face_id -> (photo_id, box, origin)): kept from the last
    run when embedded by this model, else embedded now (photo by photo), with its crop. Returns the rows and the
    count embedded now, and per photo the error of a photo that could not be read."""
    detections, embeddings, errors, computed = [], [], {}, 0
    todo: dict[str, list[str]] = {}
    for face, (photo_id, _, _) in sorted(wanted.items()):
        if face in previous:
            detections.append(previous[face][0])
            embeddings.append(previous[face][1])
        elif photo_id in photos:
            todo.setdefault(photo_id, []).append(face)
    for photo_id, faces in sorted(todo.items()):
        result = analyzer.faces_in_boxes(photos[photo_id], [face_in_box(*wanted[face][1]) for face in faces])
        if isinstance(result, PhotoError):
            errors[photo_id] = str(result)
            continue
        found, embedded, _ = face_rows(photo_id, result, version)
        for detection, embedding, crop in zip(found, embedded, result.crops):
            detection["version"] = embedding["version"] = version + ADDED_MARK
            write_atomically(layout.face_crop(detection["face_id"]), crop)
        detections += found
        embeddings += embedded
        computed += len(found)
    return detections, embeddings, computed, errors


def _previous_rows(layout: DataLayout, version: str) -> dict:
    """face_id -> (detection row, embedding row) of the added faces last written, if embedded by this model."""
    detections = read_parquet(layout.added_faces_file(FACE_DETECTIONS), DETECTION_SCHEMA)
    embeddings = read_parquet(layout.added_faces_file(FACE_EMBEDDINGS), EMBEDDING_SCHEMA)
    embedding_of = {row["face_id"]: row for row in embeddings.to_pylist() if row["model"] == version}
    return {row["face_id"]: (row, embedding_of[row["face_id"]]) for row in detections.to_pylist()
            if row["face_id"] in embedding_of}


def _record_imports(log: LabelLog, said: dict, placed: list[PlacedRegion], known_faces: set[str]
                    ) -> tuple[list, list[Conflict]]:
    """Append what the files say now and the log (`said`: its imports) does not yet; returns those and the
    conflicts."""
    desired, conflicts = plan_imports(placed)
    photo_of = {region.face_id: region.photo_id for region in placed}
    changes = import_changes(desired, said, known_faces)
    for face, source, name in changes:
        log.imported(face, source, name, photo_of.get(face, ""))
    return changes, conflicts


@dg.asset(
    # The photos it reads regions of are those the faces step scanned: it follows that step (and every edit, for the
    # faces drawn by hand), never the catalog alone, so people never run on a catalog whose faces are still to come.
    deps=[FACE_DETECTIONS, LABEL_LOG],
    group_name=PEOPLE_GROUP,
    kinds={"xmp", "tensorflow", "parquet"},
    code_version=REGIONS_VERSION,
    pool=FACE_POOL,
    op_tags=FACE_STEP_TAGS,
    automation_condition=dg.AutomationCondition.eager().without(~dg.AutomationCondition.any_deps_missing()),
)
def added_faces(context: dg.AssetExecutionContext, photo_library: PhotoLibrary,
                face_models: FaceModels) -> dg.MaterializeResult:
    """Faces from other tools' face regions (MWG, Microsoft People Tags; sidecars and embedded XMP) that the
    detector missed, and faces the user drew; each region's name recorded in the label log as an import (source
    file, idempotent, weaker than any edit made here); conflicting regions recorded, not picked from."""
    layout = photo_library.layout
    analyzer = face_models.analyzer()
    version = analyzer.model_version
    log = photo_library.label_log()
    labels = log.state()  # replayed once: the faces drawn, and what the files said before
    photos, sizes = library_photos(photo_library)
    scans, regions, read_now = _regions(photo_library, photos, sizes)
    drawn = {face: (added["photo_id"], (added["x"], added["y"], added["width"], added["height"]))
             for face, added in labels.added.items() if added["photo_id"] in photos}
    found = _found_faces(layout)
    regions, placed, from_regions = _place(regions, found, drawn)
    wanted = {face: (photo_id, box, BY_HAND) for face, (photo_id, box) in drawn.items()} | from_regions
    detections, embeddings, computed, errors = _embedded(analyzer, photos, wanted, _previous_rows(layout, version),
                                                         version, layout)
    known_faces = {face for faces in found.values() for face, _ in faces} | {row["face_id"] for row in detections}
    changes, conflicts = _record_imports(log, labels.imports, placed, known_faces)
    catalogue = [{"face_id": row["face_id"], "photo_id": row["photo_id"],
                  "added_by": BY_HAND if wanted[row["face_id"]][2] == BY_HAND else FROM_REGION,
                  "origin": wanted[row["face_id"]][2]} for row in detections]
    boxes = {row["face_id"]: row for row in detections}
    write_parquet(layout.added_faces_file(FACE_DETECTIONS), pa.Table.from_pylist(detections, DETECTION_SCHEMA))
    write_parquet(layout.added_faces_file(FACE_EMBEDDINGS), pa.Table.from_pylist(embeddings, EMBEDDING_SCHEMA))
    write_parquet(layout.added_faces, pa.Table.from_pylist(catalogue, ADDED_SCHEMA))
    write_parquet(layout.face_regions, regions)
    write_parquet(layout.region_scans, scans)
    conflict_table = pa.Table.from_pylist([vars(conflict) for conflict in conflicts], CONFLICT_SCHEMA)
    write_parquet(layout.region_conflicts, conflict_table)
    if changes:
        context.log_event(label_log_observation(layout))
    return dg.MaterializeResult(metadata=_metadata(layout, regions, scans, catalogue, boxes, conflict_table, changes,
                                                   read_now, computed, errors))


def _metadata(layout, regions, scans, catalogue, boxes, conflicts, changes, read_now, computed, errors) -> dict:
    people_regions = regions.filter(pc.is_valid(regions["face_id"]))
    problems = [problem for row in scans.to_pylist() for problem in row["problems"]]
    tiles = [FaceTile(layout.face_crop(row["face_id"]),
                      tuple(boxes[row["face_id"]][key] for key in ("x", "y", "width", "height")))
             for row in catalogue[:SHEET_FACES]]
    metadata = {
        "dagster/row_count": len(catalogue),
        "photos_read_now": read_now,
        "regions": regions.num_rows,
        "person_regions": people_regions.num_rows,
        "regions_on_found_faces": int(pc.sum(pc.invert(people_regions["face_added"])).as_py() or 0),
        "faces_added_from_regions": sum(1 for row in catalogue if row["added_by"] == FROM_REGION),
        "faces_added_by_hand": sum(1 for row in catalogue if row["added_by"] == BY_HAND),
        "faces_embedded_now": computed,
        "imports_recorded_now": len(changes),
        "conflicts": conflicts.num_rows,
        "conflict_list": preview(conflicts, ["kind", "photo_id", "names", "sources"]),
        "unreadable_sources": dg.MetadataValue.json(problems[:50]),
        "photos_not_readable": dg.MetadataValue.json(errors),
        "regions_by_tool": dg.MetadataValue.json(
            {entry["values"] or "unknown": entry["counts"] for entry in regions["tool"].value_counts().to_pylist()}),
    }
    if tiles:
        metadata["added_faces"] = picture(grid(tiles), "faces added")
    return metadata
