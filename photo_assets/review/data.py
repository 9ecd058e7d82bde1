"""Everything the review pages read, in one place: the people and faces person_clusters wrote, the merge suggestions,
the face boxes, the photos' catalog rows and the label log, with the log's edits applied on top (as `people list`
does), so an edit shows at once, before person_clusters re-materializes.

The `read_*` functions are the only code touching files; point them at another storage layer and the rest follows.
Tables are re-read only when a file changed (size and modification time), so a page view costs a dictionary lookup.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime

import pyarrow as pa
import pyarrow.parquet as pq

from photo_assets.analysis.labels import LabelState
from photo_assets.analysis.people import FACE_SCHEMA, UNKNOWN_NAME
from photo_assets.people_editor import effective_faces
from photo_assets.storage import DataLayout, DataStore, LabelLog
from photo_assets.storage.layout import FACE_DETECTIONS, PHOTOS

# person_clusters' ranked "are these two the same person?" pairs.
SUGGESTION_COLUMNS = ["person_id", "other_person_id", "distance", "rank", "face_id", "other_face_id"]
# Why a face was kept out of every person (issue 10's `unsorted_reason`); "rejected" is ours: a face the user took
# out of its person, waiting for the next clustering to place it.
UNSORTED_REASONS = ["too_small", "blurred", "profile", "unsure", "rejected"]
REJECTED_REASON = "rejected"


# -- reading: the only functions that touch storage -------------------------------------------------------------


def read_faces(layout: DataLayout) -> pa.Table | None:
    """person_clusters/faces.parquet (FACE_SCHEMA, plus `unsorted_reason` when present), None before the first run."""
    return pq.read_table(layout.people_faces) if layout.people_faces.exists() else None


def read_people(layout: DataLayout) -> pa.Table | None:
    return pq.read_table(layout.people) if layout.people.exists() else None


def read_suggestions(layout: DataLayout) -> pa.Table | None:
    return pq.read_table(layout.suggestions, columns=SUGGESTION_COLUMNS) if layout.suggestions.exists() else None


def read_detections(layout: DataLayout) -> pa.Table | None:
    return DataStore(layout).read_all(FACE_DETECTIONS, columns=["face_id", "photo_id", "x", "y", "width", "height"])


def read_photos(layout: DataLayout) -> pa.Table | None:
    return DataStore(layout).read_all(PHOTOS, columns=["photo_id", "path", "width", "height", "captured_at"])


def read_labels(layout: DataLayout) -> LabelState:
    return LabelLog(layout.label_log).state()


def _signature(layout: DataLayout) -> tuple:
    """Changes whenever any file read above changes."""
    files = [layout.people_faces, layout.people, layout.suggestions, layout.label_log]
    for asset in (FACE_DETECTIONS, PHOTOS):
        files += sorted(layout.asset_dir(asset).glob("*.parquet"))
    signature = []
    for path in files:
        try:
            stat = path.stat()
            signature.append((str(path), stat.st_size, stat.st_mtime_ns))
        except FileNotFoundError:
            signature.append((str(path), None))
    return tuple(signature)


# -- the view the pages show ------------------------------------------------------------------------------------


@dataclass
class Face:
    face_id: str
    photo_id: str
    person_id: str | None
    name: str | None
    assigned_by: str | None
    distance: float | None
    unsorted_reason: str | None  # set when person_id is None and the face is a face


@dataclass
class Person:
    person_id: str
    name: str
    named: bool
    face_ids: list[str]
    photos: int
    representative_face_id: str | None


@dataclass
class Photo:
    photo_id: str
    path: str
    width: int
    height: int
    captured_at: datetime | None


@dataclass
class Suggestion:
    person_id: str
    other_person_id: str
    distance: float
    rank: int
    face_id: str | None
    other_face_id: str | None


@dataclass
class Box:
    face_id: str
    photo_id: str
    x: int
    y: int
    width: int
    height: int


@dataclass
class View:
    labels: LabelState
    faces: dict[str, Face] = field(default_factory=dict)
    people: dict[str, Person] = field(default_factory=dict)
    photos: dict[str, Photo] = field(default_factory=dict)
    boxes: dict[str, Box] = field(default_factory=dict)
    photo_boxes: dict[str, list[str]] = field(default_factory=dict)  # photo_id -> face_ids of every box in it
    suggestions: list[Suggestion] = field(default_factory=list)  # ranked, edits applied, declined ones left out
    has_people: bool = False

    def ordered_people(self) -> list[Person]:
        """Named first (by name), then unknown people by size."""
        return sorted(
            self.people.values(),
            key=lambda p: (not p.named, p.name.casefold() if p.named else "", -len(p.face_ids), p.person_id),
        )

    def person_faces(self, person_id: str) -> list[Face]:
        """Most doubtful first: largest distance to the person (faces without one last)."""
        faces = [self.faces[face_id] for face_id in self.people[person_id].face_ids]
        return sorted(faces, key=lambda f: (f.distance is None, -(f.distance or 0.0), f.face_id))

    def unsorted(self) -> dict[str, list[Face]]:
        groups: dict[str, list[Face]] = {}
        for face in self.faces.values():
            if face.person_id is None and face.unsorted_reason:
                groups.setdefault(face.unsorted_reason, []).append(face)
        order = {reason: index for index, reason in enumerate(UNSORTED_REASONS)}
        return {
            reason: sorted(groups[reason], key=lambda f: f.face_id)
            for reason in sorted(groups, key=lambda r: (order.get(r, len(order)), r))
        }

    def suggestions_for(self, person_id: str) -> list[Suggestion]:
        return [s for s in self.suggestions if person_id in (s.person_id, s.other_person_id)]

    def names(self) -> list[str]:
        return sorted({p.name for p in self.people.values() if p.named}, key=str.casefold)


def _faces_table(raw: pa.Table) -> pa.Table:
    """The columns effective_faces needs, present even in an old file."""
    for column in FACE_SCHEMA.names:
        if column not in raw.column_names:
            raw = raw.append_column(column, pa.nulls(raw.num_rows, FACE_SCHEMA.field(column).type))
    return raw


def build_view(tables: dict, labels: LabelState) -> View:
    view = View(labels)
    raw_faces, raw_people = tables["faces"], tables["people"]
    if tables["photos"] is not None:
        for row in tables["photos"].to_pylist():
            view.photos[row["photo_id"]] = Photo(
                row["photo_id"], row["path"], row["width"] or 0, row["height"] or 0, row["captured_at"]
            )
    if tables["detections"] is not None:
        for row in tables["detections"].to_pylist():
            view.boxes[row["face_id"]] = Box(**row)
            view.photo_boxes.setdefault(row["photo_id"], []).append(row["face_id"])
    if raw_faces is None:
        return view
    view.has_people = True
    faces = effective_faces(_faces_table(raw_faces), labels)
    reasons = (
        faces["unsorted_reason"].to_pylist() if "unsorted_reason" in faces.column_names else [None] * faces.num_rows
    )
    columns = [faces[name].to_pylist() for name in ("face_id", "photo_id", "person_id", "person_name", "assigned_by",
                                                      "distance")]
    for (face_id, photo_id, person_id, name, by, distance), reason in zip(zip(*columns), reasons):
        if face_id in labels.not_faces:
            continue  # the user said it is no face: it leaves every page but its photo's
        if person_id is None:
            reason = reason or REJECTED_REASON
        else:
            reason = None
        view.faces[face_id] = Face(face_id, photo_id, person_id, name, by, distance, reason)
    representative = {}
    if raw_people is not None:
        for row in raw_people.select(["person_id", "representative_face_id"]).to_pylist():
            representative[labels.resolve(row["person_id"])] = representative.get(
                labels.resolve(row["person_id"])
            ) or row["representative_face_id"]
    members: dict[str, list[str]] = {}
    for face in view.faces.values():
        if face.person_id is not None:
            members.setdefault(face.person_id, []).append(face.face_id)
    for person_id, face_ids in members.items():
        name = labels.names.get(person_id)
        chosen = representative.get(person_id)
        if chosen not in face_ids:  # moved away or rejected since: the most typical face left
            chosen = min(face_ids, key=lambda f: (view.faces[f].distance or 0.0, f))
        view.people[person_id] = Person(
            person_id,
            name or UNKNOWN_NAME.format(number=person_id),
            bool(name),
            face_ids,
            len({view.faces[f].photo_id for f in face_ids}),
            chosen,
        )
    if tables["suggestions"] is not None:
        seen = set()
        rows = sorted(tables["suggestions"].to_pylist(), key=lambda r: (r["rank"], r["distance"]))
        for row in rows:
            first, second = labels.resolve(row["person_id"]), labels.resolve(row["other_person_id"])
            pair = frozenset((first, second))
            if first == second or first not in view.people or second not in view.people or pair in seen:
                continue
            if labels.are_not_same(first, second):
                continue
            seen.add(pair)
            view.suggestions.append(
                Suggestion(first, second, row["distance"], row["rank"], row["face_id"], row["other_face_id"])
            )
    return view


class ReviewData:
    """The view of one data folder, rebuilt only when one of its files changed."""

    def __init__(self, layout: DataLayout):
        self.layout = layout
        self._lock = threading.Lock()
        self._tables: dict | None = None
        self._tables_signature: tuple | None = None
        self._view: View | None = None
        self._view_signature: tuple | None = None

    def view(self) -> View:
        with self._lock:
            signature = _signature(self.layout)
            if signature == self._view_signature and self._view is not None:
                return self._view
            tables_signature = tuple(entry for entry in signature if entry[0] != str(self.layout.label_log))
            if tables_signature != self._tables_signature:
                self._tables = {
                    "faces": read_faces(self.layout),
                    "people": read_people(self.layout),
                    "suggestions": read_suggestions(self.layout),
                    "detections": read_detections(self.layout),
                    "photos": read_photos(self.layout),
                }
                self._tables_signature = tables_signature
            self._view = build_view(self._tables, read_labels(self.layout))
            self._view_signature = signature
            return self._view
