"""People: the face index, the user's label log, and person clusters that follow both.

`face_index` is rebuilt by `face_index_schedule`; `person_clusters` follows new embeddings, new index builds and
every edit of `label_log` by declarative automation (or one click in the UI).
"""

import time

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from photo_assets.analysis.contact_sheet import FaceTile, contact_sheet
from photo_assets.analysis.descriptors import descriptor_of
from photo_assets.analysis.labels import replay
from photo_assets.analysis.people import ASSIGNED_BY_NAME, ASSIGNED_BY_USER, build_index, cluster_people
from photo_assets.analysis.people.quality import implausible_persons, quality_gate
from photo_assets.analysis.people.thresholds import Thresholds, thresholds_for
from photo_assets.analysis.people.version import people_version
from photo_assets.assets.metadata import picture, preview
from photo_assets.assets.names import (
    ADDED_FACES,
    FACE_DETECTIONS,
    FACE_EMBEDDINGS,
    LABEL_LOG,
    PEOPLE_GROUP,
    PEOPLE_POOL,
)
from photo_assets.resources import PhotoLibrary
from photo_assets.storage import DataStore
from photo_assets.storage.people import load_index, load_people_faces, other_tools_counts, save_index, save_people

# Follows the method's constants: a changed threshold shows both people assets stale.
PEOPLE_VERSION = people_version()
# The contact sheet shows this many people, a row of up to this many faces each: enough to spot a wrong merge.
SHEET_PEOPLE, SHEET_FACES = 12, 8
# A broken index, not an approximate one: each face's recorded neighbours are exact up to ~14k faces and come from
# the inverted file beyond (recall@10 0.88-0.95 on generated faces, bench/people_scale.py); below this, something is
# wrong.
MIN_INDEX_RECALL = 0.4


def current_embeddings(store: DataStore) -> pa.Table | None:
    """Every face's embedding, each face once, from the model most faces were embedded with (during a model
    upgrade the batches not yet re-run keep the old model's vectors, which must not be compared with the new)."""
    table = store.read_all(FACE_EMBEDDINGS, columns=["face_id", "photo_id", "embedding", "model"])
    if table is None or table.num_rows == 0:
        return None
    counts = table["model"].value_counts().to_pylist()
    model = max(counts, key=lambda entry: entry["counts"])["values"]
    table = table.filter(pc.equal(table["model"], model))
    _, first = np.unique(table["face_id"].to_numpy(zero_copy_only=False), return_index=True)
    return table.take(np.sort(first))


def _vectors(table: pa.Table) -> np.ndarray:
    return table["embedding"].combine_chunks().flatten().to_numpy(zero_copy_only=False).reshape(table.num_rows, -1)


def _unsorted_reasons(store: DataStore, embeddings: pa.Table) -> np.ndarray:
    """The quality gate's verdict on every embedded face, from its detection (size, sharpness, eye ratio) and its
    raw embedding."""
    detections = store.dataset(FACE_DETECTIONS).to_table(columns=["face_id", "width", "height", "eye_ratio", "sharpness"])
    _, first = np.unique(detections["face_id"].to_numpy(zero_copy_only=False), return_index=True)
    detections = detections.take(np.sort(first))
    position = pc.index_in(embeddings["face_id"], detections["face_id"])
    rows = detections.take(position.fill_null(0))
    columns = {name: rows[name].to_numpy(zero_copy_only=False).astype(np.float64)
               for name in ("width", "height", "eye_ratio", "sharpness")}
    return quality_gate(columns["width"], columns["height"], columns["eye_ratio"], columns["sharpness"],
                        _vectors(embeddings), _thresholds(embeddings).min_raw_norm)


def _thresholds(embeddings: pa.Table) -> Thresholds:
    """The thresholds of the descriptor the embeddings were made with (one model: current_embeddings)."""
    return thresholds_for(embeddings["model"][0].as_py())


@dg.asset(
    deps=[FACE_EMBEDDINGS],
    group_name=PEOPLE_GROUP,
    kinds={"annoy", "numpy"},
    code_version=PEOPLE_VERSION,
    pool=PEOPLE_POOL,
)
def face_index(photo_library: PhotoLibrary) -> dg.MaterializeResult:
    """An Annoy index (euclidean on L2-normalised FaceNet embeddings) over every face, with the face_id mapping and
    each face's nearest neighbours, switched in atomically. Read from the face_embeddings Parquet dataset directly."""
    store = photo_library.store()
    embeddings = current_embeddings(store)
    if embeddings is None:
        return dg.MaterializeResult(metadata={"faces_indexed": 0, "dagster/row_count": 0})
    index = build_index(embeddings["face_id"].to_pylist(), _vectors(embeddings))
    pointer = save_index(index, photo_library.layout)
    info = index.info
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": info["faces"],
            "faces_indexed": info["faces"],
            "trees": info["trees"],
            "build_seconds": info["build_seconds"],
            "recall_at_10": info["recall_at_10"],
            "path": dg.MetadataValue.path(str(pointer)),
        }
    )


@dg.asset_check(asset=face_index, description=f"recall@10 against brute force on a sample is >= {MIN_INDEX_RECALL}")
def face_index_recall(photo_library: PhotoLibrary) -> dg.AssetCheckResult:
    index = load_index(photo_library.layout)
    recall = 1.0 if index is None else float(index.info.get("recall_at_10", 0.0))
    return dg.AssetCheckResult(passed=recall >= MIN_INDEX_RECALL, metadata={"recall_at_10": recall})


@dg.observable_source_asset(
    name=LABEL_LOG,
    group_name=PEOPLE_GROUP,
    description="The user's edits (rename, merge, move, reject, undo): an append-only log in the data folder. "
    "Each edit is observed with a new data version, which makes person_clusters stale.",
)
def label_log(photo_library: PhotoLibrary) -> dg.DataVersion:
    return dg.DataVersion(photo_library.label_log().version())


def _people_sheet(people: pa.Table, faces: pa.Table, store: DataStore) -> dg.MetadataValue | None:
    """A row of face thumbnails per largest person, named at the left, from the stored face crops. Reads the boxes of
    the faces shown only: a library's whole set would cost more than the clustering."""
    top = people.slice(0, SHEET_PEOPLE).to_pylist()
    if not top:
        return None
    members = {}
    for person in top:
        face_ids = faces.filter(pc.equal(faces["person_id"], person["person_id"]))["face_id"].to_pylist()
        members[person["person_id"]] = face_ids[:SHEET_FACES]
    shown = [face_id for face_ids in members.values() for face_id in face_ids]
    boxes = store.dataset(FACE_DETECTIONS).to_table(
        columns=["face_id", "x", "y", "width", "height"], filter=pc.field("face_id").isin(shown)
    )
    box_of = {row["face_id"]: row for row in boxes.to_pylist()}
    rows, labels = [], []
    for person in top:
        boxed = [box_of[member] for member in members[person["person_id"]] if member in box_of]
        rows.append([
            FaceTile(store.layout.face_crop(box["face_id"]), (box["x"], box["y"], box["width"], box["height"]))
            for box in boxed
        ])
        labels.append(f"{person['name']} ({person['faces']})")
    return picture(contact_sheet(rows, labels), "people")


@dg.asset(
    # Declares every input it reads, so the lineage the UI draws is the data flow: the embeddings and the index to
    # cluster, the edits to obey, and the boxes and face crops of the contact sheet.
    deps=[FACE_EMBEDDINGS, ADDED_FACES, face_index, label_log, FACE_DETECTIONS],
    group_name=PEOPLE_GROUP,
    kinds={"numpy", "parquet"},
    code_version=PEOPLE_VERSION,
    pool=PEOPLE_POOL,
    # Follows new faces, new index builds and every edit; a label log never edited is not "missing". The boxes are
    # read for the contact sheet only: they arrive with the embeddings and must not count twice.
    automation_condition=dg.AutomationCondition.eager()
    .without(~dg.AutomationCondition.any_deps_missing())
    .ignore(dg.AssetSelection.assets(FACE_DETECTIONS)),
)
def person_clusters(photo_library: PhotoLibrary) -> dg.MaterializeResult:
    """Every face a person can be recognised by gets a person: named by the user's edits, or an "Unknown person
    NNNNNN" group found by average linkage on refined neighbourhoods (the index for indexed faces, brute force for
    faces newer than it). Faces too small, blurred, in profile or unsure stay unsorted, with the reason. Writes
    person_clusters/faces.parquet (face_id, photo_id, person_id, person_name, assigned_by, distance,
    unsorted_reason), people.parquet (person_id, name, faces, photos, representative face) and suggestions.parquet
    (ranked "same person?" pairs: person_id, other_person_id, distance, rank, the closest pair of faces)."""
    layout = photo_library.layout
    store = photo_library.store()
    embeddings = current_embeddings(store)
    if embeddings is None:
        return dg.MaterializeResult(metadata={"people": 0, "dagster/row_count": 0})
    started = time.monotonic()
    previous = load_people_faces(layout)
    # A torn last line (a crash mid-append) or a damaged one is skipped and shown: every other edit still counts.
    label_reading = photo_library.label_log().read()
    labels = replay(label_reading.edits)
    index = load_index(layout)
    reasons = _unsorted_reasons(store, embeddings)
    result = cluster_people(
        embeddings["face_id"].to_pylist(), embeddings["photo_id"].to_pylist(), _vectors(embeddings), labels,
        previous=previous, index=index, reasons=reasons, thresholds=_thresholds(embeddings),
    )
    faces_path, _, _ = save_people(result, layout)
    people = result.people.sort_by([("faces", "descending")])
    unknown_people = people.filter(pc.invert(people["named"]))
    unsorted = result.faces["unsorted_reason"].drop_null().value_counts().to_pylist()
    metadata = {
        "dagster/row_count": result.faces.num_rows,
        "people": people.num_rows,
        "named_people": people.num_rows - unknown_people.num_rows,
        "unknown_people": unknown_people.num_rows,
        "unsorted_faces": sum(entry["counts"] for entry in unsorted),
        "unsorted_by_reason": dg.MetadataValue.json({entry["values"]: entry["counts"] for entry in unsorted}),
        "suggestions": result.suggestions.num_rows,
        "top_suggestions": preview(result.suggestions, ["rank", "person_id", "other_person_id", "distance"]),
        "largest_unknown_people": preview(unknown_people, ["person_id", "faces", "photos"]),
        "faces_from_index": result.indexed_faces,
        "faces_by_brute_force": result.fresh_faces,
        "faces_by_user": int(pc.sum(pc.equal(result.faces["assigned_by"], ASSIGNED_BY_USER)).as_py() or 0),
        # Faces a name the user gave found (close to that person's confirmed faces), beyond what clustering did.
        "faces_by_name": int(pc.sum(pc.equal(result.faces["assigned_by"], ASSIGNED_BY_NAME)).as_py() or 0),
        # Names other tools' face regions gave (added_faces imports them), and the faces added by hand or for them.
        **other_tools_counts(layout, result.faces),
        "descriptor": str(descriptor_of(embeddings["model"][0].as_py())),
        "label_edits": len(label_reading.edits),
        "label_log_problems": dg.MetadataValue.json(label_reading.problems),
        "seconds": round(time.monotonic() - started, 2),
        "largest_groups": preview(people, ["person_id", "name", "faces", "photos"]),
        "path": dg.MetadataValue.path(str(faces_path)),
        "review": dg.MetadataValue.url(photo_library.review_url),  # the people pages: name, merge, move, reject
    }
    sheet = _people_sheet(people, result.faces, store)
    if sheet is not None:
        metadata["contact_sheet"] = sheet
    return dg.MaterializeResult(metadata=metadata)


@dg.asset_check(
    asset=person_clusters,
    description="Every embedded face has a person, is unsorted (with a reason) or is marked not a face",
)
def every_face_has_a_person(photo_library: PhotoLibrary) -> dg.AssetCheckResult:
    embeddings = current_embeddings(photo_library.store())
    faces = load_people_faces(photo_library.layout)
    if embeddings is None or faces is None:
        return dg.AssetCheckResult(passed=True, metadata={"faces": 0})
    not_faces = photo_library.label_log().state().not_faces
    accounted = faces.filter(pc.or_(pc.is_valid(faces["person_id"]), pc.is_valid(faces["unsorted_reason"])))
    missing = set(embeddings["face_id"].to_pylist()) - set(accounted["face_id"].to_pylist()) - set(not_faces)
    return dg.AssetCheckResult(passed=not missing, metadata={"faces_without_person": len(missing)})


@dg.asset_check(
    asset=person_clusters,
    description="No person looks like a pile of strangers: faces mostly too unsure to recognise, or spread wider "
    "than real people's",
)
def every_person_is_plausible(photo_library: PhotoLibrary) -> dg.AssetCheckResult:
    embeddings = current_embeddings(photo_library.store())
    faces = load_people_faces(photo_library.layout)
    if embeddings is None or faces is None:
        return dg.AssetCheckResult(passed=True, metadata={"people_checked": 0})
    faces = faces.filter(pc.is_valid(faces["person_id"]))
    norm_of = dict(zip(embeddings["face_id"].to_pylist(), np.linalg.norm(_vectors(embeddings), axis=1).tolist()))
    norms = np.array([norm_of.get(face_id, np.nan) for face_id in faces["face_id"].to_pylist()])
    distances = faces["distance"].to_numpy(zero_copy_only=False).astype(np.float64)
    implausible = implausible_persons(np.asarray(faces["person_id"].to_pylist(), dtype=object), distances, norms,
                                      _thresholds(embeddings))
    return dg.AssetCheckResult(
        passed=not implausible,
        metadata={"people_checked": len(set(faces["person_id"].to_pylist())),
                  "implausible_people": dg.MetadataValue.json(implausible)},
    )
