"""`face_detections`, `face_embeddings` and `object_detections`: faces found, aligned and embedded, and objects found,
in one pass per batch (each photo is decoded once: the object detector takes the face detector's reduced decode),
written as three Parquet datasets. Runs in the `face_models` pool: one such step at a time across all runs."""

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from photo_assets import models
from photo_assets.analysis.contact_sheet import FaceTile, contact_sheet, face_crop, grid, jpeg_bytes
from photo_assets.analysis.descriptors import Descriptor
from photo_assets.analysis.faces import (
    EMBEDDING_SIZE,
    LANDMARK_NAMES,
    DetectorSettings,
    FaceAnalyzer,
    PhotoFaces,
    face_id,
    model_version,
)
from photo_assets.analysis.images import PhotoError
from photo_assets.analysis.objects import ObjectBox, ObjectDetector
from photo_assets.analysis.objects import model_version as object_model_version
from photo_assets.assets.batches import BACKFILL_POLICY, BatchOutcome, materialize_batches
from photo_assets.assets.metadata import picture, preview
from photo_assets.assets.names import (
    FACE_DETECTIONS,
    FACE_EMBEDDINGS,
    FACE_POOL,
    FACE_STEP_TAGS,
    FACES_GROUP,
    OBJECT_DETECTIONS,
    OBJECTS_GROUP,
    PHOTOS,
)
from photo_assets.assets.photo_rows import analysable_photos
from photo_assets.assets.progress import StepProgress
from photo_assets.partitions import photo_batches
from photo_assets.resources import FaceModels, PhotoLibrary
from photo_assets.resources.face_models import scan_version
from photo_assets.storage import DataLayout, conformed, write_atomically
from photo_assets.storage.layout import FACE_SCANS

CONTACT_SHEET_FACES = 32
LANDMARK_COLUMNS = [f"{name}_{axis}" for name in LANDMARK_NAMES for axis in ("x", "y")]
DETECTION_SCHEMA = pa.schema(
    [("face_id", pa.string()), ("photo_id", pa.string())]
    + [(name, pa.int32()) for name in ("x", "y", "width", "height")]
    + [("confidence", pa.float32())]
    + [(name, pa.float32()) for name in LANDMARK_COLUMNS]
    + [("eye_ratio", pa.float32()), ("sharpness", pa.float32()), ("version", pa.string())]
)
EMBEDDING_SCHEMA = pa.schema(
    [
        ("face_id", pa.string()),
        ("photo_id", pa.string()),
        ("embedding", pa.list_(pa.float32(), EMBEDDING_SIZE)),
        ("model", pa.string()),
        ("version", pa.string()),
    ]
)
SCAN_SCHEMA = pa.schema(
    [("photo_id", pa.string()), ("width", pa.int32()), ("height", pa.int32()), ("faces", pa.int32()),
     ("error", pa.string()), ("version", pa.string())]
)
OBJECT_SCHEMA = pa.schema(
    [("photo_id", pa.string()), ("label", pa.string()), ("score", pa.float32())]
    + [(name, pa.int32()) for name in ("x", "y", "width", "height")]
    + [("version", pa.string())]
)
# The objects' contact sheet: the best detections of the most common labels, a row each.
SHEET_LABELS, SHEET_OBJECTS = 8, 8
CHECK_FINITE = "embeddings_have_128_finite_values"
CHECK_PAIRED = "every_detection_has_an_embedding"
CHECK_BOXES = "boxes_inside_the_image"
# The default model version is the assets' code version: other weights or detector defaults show them stale.
DEFAULT_MODEL_VERSION = model_version(DetectorSettings(), Descriptor.DLIB, models.DLIB_RESNET.sha256)
DEFAULT_OBJECT_VERSION = object_model_version(models.OBJECT_WEIGHTS.sha256)


def face_rows(photo_id: str, result: PhotoFaces | PhotoError, version: str) -> tuple[list, list, dict]:
    if isinstance(result, PhotoError):
        return [], [], {"photo_id": photo_id, "faces": 0, "error": str(result), "version": version}
    detections, embeddings = [], []
    for face, embedding, sharpness in zip(result.faces, result.embeddings, result.sharpness):
        identifier = face_id(photo_id, face)
        # MTCNN's box may overhang the photo by a few pixels; stored boxes are the part inside it.
        x0, y0 = max(0, face.x), max(0, face.y)
        x1, y1 = min(result.width, face.x + face.width), min(result.height, face.y + face.height)
        row = {"face_id": identifier, "photo_id": photo_id, "x": x0, "y": y0, "width": x1 - x0, "height": y1 - y0,
               "confidence": face.confidence, "eye_ratio": face.eye_ratio, "sharpness": float(sharpness),
               "version": version}
        for name in LANDMARK_NAMES:
            row[f"{name}_x"], row[f"{name}_y"] = face.landmarks[name]
        detections.append(row)
        embeddings.append({"face_id": identifier, "photo_id": photo_id, "embedding": embedding.tolist(),
                           "model": version, "version": version})
    scan = {"photo_id": photo_id, "width": result.width, "height": result.height, "faces": len(result.faces),
            "version": version}
    return detections, embeddings, scan


def _store_crops(layout: DataLayout, photo_id: str, result: PhotoFaces | PhotoError) -> None:
    """Each face's small crop, for the people page and the contact sheets, which then never decode the photo."""
    if isinstance(result, PhotoFaces):
        for face, crop in zip(result.faces, result.crops):
            write_atomically(layout.face_crop(face_id(photo_id, face)), crop)


def _reused(store, photo_ids: list[str], version: str, object_version: str):
    """(scans, detections, embeddings, objects) of the photos both models already scanned."""
    scans = store.reusable(FACE_SCANS, photo_ids, scan_version(version, object_version))
    known = [] if scans is None else scans["photo_id"].to_pylist()
    return (
        conformed(scans, SCAN_SCHEMA),
        conformed(store.reusable(FACE_DETECTIONS, known, version), DETECTION_SCHEMA),
        conformed(store.reusable(FACE_EMBEDDINGS, known, version), EMBEDDING_SCHEMA),
        conformed(store.reusable(OBJECT_DETECTIONS, known, object_version), OBJECT_SCHEMA),
    )


def _object_metadata(table: pa.Table, objects: "_ObjectPass", path, scans: pa.Table, errors: int, version: str) -> dict:
    counts = table["label"].value_counts().to_pylist() if table.num_rows else []
    by_label = {entry["values"]: entry["counts"] for entry in sorted(counts, key=lambda e: -e["counts"])}
    return {
        "dagster/row_count": table.num_rows,
        "path": dg.MetadataValue.path(str(path)),
        "photos_scanned": scans.num_rows,
        "photos_with_objects": len(set(table["photo_id"].to_pylist())),
        "errors": errors,  # photos that could not be read: their error is in _face_scans
        "detector_errors": dg.MetadataValue.json(objects.errors),
        "objects_by_label": dg.MetadataValue.json(by_label),
        "model": version,
        "contact_sheet": objects.sheet(list(by_label)),
        "preview": preview(table.sort_by([("score", "descending")]), ["photo_id", "label", "score", "x", "y",
                                                                       "width", "height"]),
    }


def _checks(detections: pa.Table, embeddings: pa.Table, sizes: dict) -> list[dg.AssetCheckResult]:
    vectors = embeddings["embedding"].combine_chunks().flatten().to_numpy(zero_copy_only=False)
    finite = bool(np.isfinite(vectors).all()) and vectors.size == EMBEDDING_SIZE * embeddings.num_rows
    unpaired = set(detections["face_id"].to_pylist()) ^ set(embeddings["face_id"].to_pylist())
    outside = [
        row["face_id"] for row in detections.select(["face_id", "photo_id", "x", "y", "width", "height"]).to_pylist()
        if row["x"] < 0 or row["y"] < 0 or row["width"] <= 0 or row["height"] <= 0
        or row["x"] + row["width"] > sizes[row["photo_id"]][0] or row["y"] + row["height"] > sizes[row["photo_id"]][1]
    ]
    return [
        dg.AssetCheckResult(asset_key=FACE_EMBEDDINGS, check_name=CHECK_FINITE, passed=finite),
        dg.AssetCheckResult(asset_key=FACE_EMBEDDINGS, check_name=CHECK_PAIRED, passed=not unpaired,
                            metadata={"unpaired_faces": len(unpaired)}),
        dg.AssetCheckResult(asset_key=FACE_DETECTIONS, check_name=CHECK_BOXES, passed=not outside,
                            metadata={"boxes_outside": len(outside)}),
    ]


@dg.multi_asset(
    specs=[
        dg.AssetSpec(FACE_DETECTIONS, deps=[PHOTOS], group_name=FACES_GROUP, kinds={"tensorflow", "parquet"},
                     code_version=DEFAULT_MODEL_VERSION, automation_condition=dg.AutomationCondition.eager(),
                     description="Faces found by MTCNN: box and five landmarks in full-size oriented pixels, "
                                 "confidence, eye ratio (profile) and sharpness."),
        dg.AssetSpec(FACE_EMBEDDINGS, deps=[FACE_DETECTIONS], group_name=FACES_GROUP,
                     kinds={"tensorflow", "parquet"}, code_version=DEFAULT_MODEL_VERSION,
                     automation_condition=dg.AutomationCondition.eager(),
                     description="The people descriptor of each face (dlib's ResNet, or FaceNet-128), with the "
                                 "model version."),
        dg.AssetSpec(OBJECT_DETECTIONS, deps=[PHOTOS], group_name=OBJECTS_GROUP, kinds={"tensorflow", "parquet"},
                     code_version=DEFAULT_OBJECT_VERSION, automation_condition=dg.AutomationCondition.eager(),
                     description="Objects of COCO's 80 kinds (MB3-CenterNet): label, score and box in full-size "
                                 "oriented pixels, found on the faces step's reduced decode."),
    ],
    check_specs=[
        dg.AssetCheckSpec(CHECK_FINITE, asset=FACE_EMBEDDINGS),
        dg.AssetCheckSpec(CHECK_PAIRED, asset=FACE_EMBEDDINGS),
        dg.AssetCheckSpec(CHECK_BOXES, asset=FACE_DETECTIONS),
    ],
    partitions_def=photo_batches,
    backfill_policy=BACKFILL_POLICY,
    pool=FACE_POOL,
    op_tags=FACE_STEP_TAGS,
    can_subset=False,
)
def faces(context: dg.AssetExecutionContext, photo_library: PhotoLibrary, face_models: FaceModels):
    """Detect, align and embed the faces of each batch, and find its objects; photos analysed before with the same
    models are reused."""
    analyzer, detector = face_models.analyzer(), face_models.object_detector()
    metadata, checks = materialize_batches(
        context, lambda batch_key: _face_batch(context, photo_library, analyzer, detector, face_models.embed_batch_size,
                                               batch_key)
    )
    for asset_key, values in metadata.items():
        yield dg.MaterializeResult(asset_key=asset_key, metadata=values)
    yield from checks


def _counted(photos: list, progress: StepProgress):
    """The photos, one at a time, counting each as done when the analyser asks for the next: results come out in
    batches of embeddings, but a photo's scan is over when the next one is read."""
    for photo in photos:
        yield photo
        progress.advance()


class _ObjectPass:
    """Finds each photo's objects on the reduced decode the face detector made, keeping a small crop of the best
    detections of each label for the contact sheet."""

    def __init__(self, detector: ObjectDetector):
        self.detector = detector
        self.rows: list[dict] = []
        self.errors: dict[str, str] = {}  # photo_id -> why its objects could not be found
        self.best: dict[str, list[tuple[float, bytes, tuple]]] = {}

    def __call__(self, photo_id: str, image, full_size: tuple[int, int]) -> None:
        try:
            found = self.detector.detect(image, full_size)
        except Exception as error:  # noqa: BLE001 - one photo's failure is its own, recorded; the batch goes on
            self.errors[photo_id] = f"{type(error).__name__}: {error}"
            return
        self.rows += [{"photo_id": photo_id, "label": box.label, "score": box.score, "x": box.x, "y": box.y,
                       "width": box.width, "height": box.height, "version": self.detector.model_version}
                      for box in found]
        for box in found:
            self._offer(box, image, image.width / full_size[0])

    def _offer(self, box: ObjectBox, image, scale: float) -> None:
        kept = self.best.setdefault(box.label, [])
        if len(kept) < SHEET_OBJECTS or box.score > kept[-1][0]:
            bounds = (box.x, box.y, box.width, box.height)
            kept.append((box.score, jpeg_bytes(face_crop(image, bounds, scale)), bounds))
            kept.sort(key=lambda entry: -entry[0])
            del kept[SHEET_OBJECTS:]

    def sheet(self, labels: list[str]) -> dg.MetadataValue:
        """A row of the best detections of each of `labels` (most common first) this run found."""
        common = [label for label in labels if label in self.best]
        rows = [[FaceTile(crop, bounds) for _, crop, bounds in self.best[label]] for label in common[:SHEET_LABELS]]
        if not rows:
            return dg.MetadataValue.md("_(no objects found in this run's photos)_")
        return picture(contact_sheet(rows, common[:SHEET_LABELS]), "objects found")


def _face_batch(
    context: dg.AssetExecutionContext,
    photo_library: PhotoLibrary,
    analyzer: FaceAnalyzer,
    detector: ObjectDetector,
    embed_batch_size: int,
    batch_key: str,
) -> BatchOutcome:
    store = photo_library.store()
    version, object_version = analyzer.model_version, detector.model_version
    photos = analysable_photos(photo_library, batch_key)
    reused_scans, reused_detections, reused_embeddings, reused_objects = _reused(store, list(photos), version,
                                                                                 object_version)
    done = set(reused_scans["photo_id"].to_pylist())
    detections, embeddings, scans = [], [], []
    todo = [(photo_id, path) for photo_id, path in photos.items() if photo_id not in done]
    progress = StepProgress(context.log, "faces", batch_key, len(todo))
    objects = _ObjectPass(detector)
    for photo_id, result in analyzer.analyse(_counted(todo, progress), batch_size=embed_batch_size,
                                             on_decoded=objects):
        found, embedded, scan = face_rows(photo_id, result, version)
        scan["version"] = scan_version(version, object_version)
        _store_crops(store.layout, photo_id, result)
        detections += found
        embeddings += embedded
        scans.append(scan)
    progress.finish()
    detection_table = pa.concat_tables([pa.Table.from_pylist(detections, DETECTION_SCHEMA), reused_detections])
    embedding_table = pa.concat_tables([pa.Table.from_pylist(embeddings, EMBEDDING_SCHEMA), reused_embeddings])
    object_table = pa.concat_tables([pa.Table.from_pylist(objects.rows, OBJECT_SCHEMA), reused_objects])
    scan_table = pa.concat_tables([pa.Table.from_pylist(scans, SCAN_SCHEMA), reused_scans])
    detections_path = store.write_batch(FACE_DETECTIONS, batch_key, detection_table)
    embeddings_path = store.write_batch(FACE_EMBEDDINGS, batch_key, embedding_table)
    objects_path = store.write_batch(OBJECT_DETECTIONS, batch_key, object_table)
    # Last: a scan is what lets a re-run reuse a photo's faces, so it must never exist without them (a kill or a full
    # disk between these writes would otherwise leave photos recorded as faceless for good).
    store.write_batch(FACE_SCANS, batch_key, scan_table)

    photos_with_faces = int(pc.sum(pc.greater(scan_table["faces"], 0)).as_py() or 0)
    errors = int(pc.sum(pc.is_valid(scan_table["error"])).as_py() or 0)
    sizes = {row["photo_id"]: (row["width"], row["height"]) for row in scan_table.to_pylist()}
    tiles = [
        FaceTile(store.layout.face_crop(row["face_id"]), (row["x"], row["y"], row["width"], row["height"]))
        for row in detection_table.slice(0, CONTACT_SHEET_FACES).to_pylist()
    ]
    metadata = {
        FACE_DETECTIONS: {
            "dagster/row_count": detection_table.num_rows,
            "path": dg.MetadataValue.path(str(detections_path)),
            "photos_scanned": scan_table.num_rows,
            "photos_with_faces": photos_with_faces,
            "photos_without_faces": scan_table.num_rows - photos_with_faces - errors,
            "photos_reused": len(done),
            "errors": errors,
            "model": version,
            "contact_sheet": picture(grid(tiles), "faces found") if tiles else dg.MetadataValue.md("_(no faces)_"),
            "preview": preview(detection_table, ["face_id", "photo_id", "x", "y", "width", "height", "confidence"]),
        },
        FACE_EMBEDDINGS: {
            "dagster/row_count": embedding_table.num_rows,
            "path": dg.MetadataValue.path(str(embeddings_path)),
            "model": version,
            "faces_computed": len(embeddings),
        },
        OBJECT_DETECTIONS: _object_metadata(object_table, objects, objects_path, scan_table, errors, object_version),
    }
    return metadata, _checks(detection_table, embedding_table, sizes)
