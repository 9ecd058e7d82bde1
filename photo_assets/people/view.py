"""People as the user sees them: the people and faces person_clusters wrote, the merge suggestions, the face boxes,
the photos' catalog rows and the label log, with the log's edits applied on top, so an edit shows at once, before
person_clusters re-materializes. The command line, the review pages and the `relabel` job all read this one view.

The `read_*` functions are the only code touching files; point them at another storage layer and the rest follows.
Tables are re-read only when a file changed (size and modification time), so a page view costs a dictionary lookup.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from photo_assets.analysis.labels import LabelState
from photo_assets.analysis.people import ASSIGNED_BY_FILE, ASSIGNED_BY_USER, UNKNOWN_NAME
from photo_assets.analysis.people.quality import REASONS
from photo_assets.analysis.regions import Conflict
from photo_assets.storage import DataLayout, DataStore, LabelLog
from photo_assets.storage.layout import FACE_DETECTIONS, OBJECT_DETECTIONS, PHOTOS, files_signature
from photo_assets.storage.people import load_added_faces, load_people_faces, load_region_conflicts

# person_clusters' ranked "are these two the same person?" pairs.
SUGGESTION_COLUMNS = ["person_id", "other_person_id", "distance", "rank", "face_id", "other_face_id"]
OBJECT_COLUMNS = ["photo_id", "label", "score", "x", "y", "width", "height"]
# A face the user took out of its person, waiting for the next clustering to place it; listed after the quality
# gate's reasons for keeping a face out of every person.
REJECTED_REASON = "rejected"
UNSORTED_REASONS = [*REASONS, REJECTED_REASON]


# -- reading: the only functions that touch storage -------------------------------------------------------------


def read_faces(layout: DataLayout) -> pa.Table | None:
    """person_clusters/faces.parquet (FACE_SCHEMA), None before the first run."""
    return load_people_faces(layout)


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
    files = [layout.people_faces, layout.people, layout.suggestions, layout.label_log, layout.region_conflicts,
             layout.added_faces]
    for asset in (FACE_DETECTIONS, PHOTOS, OBJECT_DETECTIONS):
        files += layout.batch_files(asset)
    return files_signature(files)


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
class PeopleView:
    labels: LabelState
    faces: dict[str, Face] = field(default_factory=dict)  # every face the pages show (not those said to be no face)
    not_faces: dict[str, Face] = field(default_factory=dict)  # faces the user said are no face: shown on no page
    people: dict[str, Person] = field(default_factory=dict)
    photos: dict[str, Photo] = field(default_factory=dict)
    boxes: dict[str, Box] = field(default_factory=dict)
    photo_boxes: dict[str, list[str]] = field(default_factory=dict)  # photo_id -> face_ids of every box in it
    suggestions: list[Suggestion] = field(default_factory=list)  # ranked, edits applied, declined ones left out
    conflicts: list[Conflict] = field(default_factory=list)  # other tools' regions that disagree (none imported)
    added_by: dict[str, str] = field(default_factory=dict)  # face_id -> "region" or "hand", for faces not found
    objects: dict[str, list[dict]] = field(default_factory=dict)  # photo_id -> objects found (label, score, box)
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

    def pending_faces(self, photo_id: str) -> list[Box]:
        """Faces the user drew on the photo that the next people update has yet to embed."""
        return [Box(face_id, photo_id, added["x"], added["y"], added["width"], added["height"])
                for face_id, added in self.labels.added.items()
                if added["photo_id"] == photo_id and face_id not in self.boxes]

    def photo_path(self, photo_id: str) -> str:
        """The photo's path in the library, or its id for a photo no longer catalogued."""
        photo = self.photos.get(photo_id)
        return photo.path if photo else photo_id

    # -- as JSON: the review API's and `photo-assets people --json`'s rows ------------------------------------------

    def person_json(self, person_id: str, with_faces: bool = False) -> dict[str, Any]:
        person = self.people[person_id]
        result = {
            "person_id": person.person_id,
            "name": person.name,
            "named": person.named,
            "faces": len(person.face_ids),
            "photos": person.photos,
            "representative_face_id": person.representative_face_id,
        }
        if with_faces:
            result["face_list"] = [self.face_json(face.face_id) for face in self.person_faces(person_id)]
            result["suggestions"] = [self.suggestion_json(s) for s in self.suggestions_for(person_id)]
        return result

    def face_json(self, face_id: str) -> dict[str, Any]:
        face = self.faces.get(face_id) or self.not_faces[face_id]
        photo = self.photos.get(face.photo_id)
        return {
            "face_id": face.face_id,
            "photo_id": face.photo_id,
            "path": photo.path if photo else None,
            "person_id": face.person_id,
            "name": face.name,
            "assigned_by": face.assigned_by,
            "distance": face.distance,
            "unsorted_reason": face.unsorted_reason,
            "captured_at": photo.captured_at.isoformat() if photo and photo.captured_at else None,
        }

    def suggestion_json(self, suggestion: Suggestion) -> dict[str, Any]:
        return dict(vars(suggestion), name=self.people[suggestion.person_id].name,
                    other_name=self.people[suggestion.other_person_id].name)


def build_view(tables: dict, labels: LabelState) -> PeopleView:
    view = PeopleView(labels)
    _add_photos_and_boxes(view, tables["photos"], tables["detections"])
    if tables["conflicts"] is not None:
        view.conflicts = [Conflict(**row) for row in tables["conflicts"].to_pylist()]
    for row in [] if tables["objects"] is None else tables["objects"].to_pylist():
        view.objects.setdefault(row["photo_id"], []).append(row)
    if tables["added"] is not None:
        view.added_by = dict(zip(tables["added"]["face_id"].to_pylist(), tables["added"]["added_by"].to_pylist()))
    if tables["faces"] is None:
        return view
    view.has_people = True
    _add_faces(view, effective_faces(tables["faces"], labels))
    _add_people(view, tables["people"])
    if tables["suggestions"] is not None:
        _add_suggestions(view, tables["suggestions"])
    return view


def _add_photos_and_boxes(view: PeopleView, photos: pa.Table | None, detections: pa.Table | None) -> None:
    if photos is not None:
        for row in photos.to_pylist():
            view.photos[row["photo_id"]] = Photo(
                row["photo_id"], row["path"], row["width"] or 0, row["height"] or 0, row["captured_at"]
            )
    if detections is not None:
        for row in detections.to_pylist():
            view.boxes[row["face_id"]] = Box(**row)
            view.photo_boxes.setdefault(row["photo_id"], []).append(row["face_id"])


def _add_faces(view: PeopleView, faces: pa.Table) -> None:
    columns = [faces[name].to_pylist() for name in ("face_id", "photo_id", "person_id", "person_name", "assigned_by",
                                                      "distance", "unsorted_reason")]
    for face_id, photo_id, person_id, name, by, distance, reason in zip(*columns):
        if face_id in view.labels.not_faces:  # it leaves every page but its photo's
            view.not_faces[face_id] = Face(face_id, photo_id, None, None, by, distance, None)
            continue
        reason = None if person_id is not None else reason or REJECTED_REASON
        view.faces[face_id] = Face(face_id, photo_id, person_id, name, by, distance, reason)


def _add_people(view: PeopleView, people: pa.Table | None) -> None:
    labels, representative = view.labels, {}
    if people is not None:
        for row in people.select(["person_id", "representative_face_id"]).to_pylist():
            person_id = labels.resolve(row["person_id"])
            representative[person_id] = representative.get(person_id) or row["representative_face_id"]
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


def _add_suggestions(view: PeopleView, suggestions: pa.Table) -> None:
    """Ranked pairs with the edits applied: merged pairs, pairs with a person gone and declined pairs left out."""
    labels, seen = view.labels, set()
    for row in sorted(suggestions.to_pylist(), key=lambda r: (r["rank"], r["distance"])):
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


class PeopleReader:
    """The view of one data folder, rebuilt only when one of its files changed."""

    def __init__(self, layout: DataLayout):
        self.layout = layout
        self._lock = threading.Lock()
        self._tables: dict | None = None
        self._tables_signature: tuple | None = None
        self._view: PeopleView | None = None
        self._view_signature: tuple | None = None

    def view(self) -> PeopleView:
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
                    "conflicts": load_region_conflicts(self.layout),
                    "added": load_added_faces(self.layout),
                    "objects": DataStore(self.layout).read_all(OBJECT_DETECTIONS, columns=OBJECT_COLUMNS),
                }
                self._tables_signature = tables_signature
            self._view = build_view(self._tables, read_labels(self.layout))
            self._view_signature = signature
            return self._view


def effective_faces(faces: pa.Table, labels: LabelState) -> pa.Table:
    """The faces table as it will be once person_clusters replays the log: merges followed, names applied, placed
    faces in their person (an unsorted face the user placed is unsorted no more), rejected faces out of theirs
    (shown without a person until the next run)."""
    seeds, barred = labels.seeds(), labels.forbidden()
    people, names, assigned, reasons = [], [], [], []
    for face_id, person_id, by, reason in zip(
        faces["face_id"].to_pylist(), faces["person_id"].to_pylist(), faces["assigned_by"].to_pylist(),
        faces["unsorted_reason"].to_pylist(),
    ):
        if face_id in labels.not_faces:
            person_id = None
        elif face_id in seeds:
            person_id = seeds[face_id]
            by = ASSIGNED_BY_FILE if face_id in labels.imported_faces else ASSIGNED_BY_USER
        elif person_id is not None:
            person_id = labels.resolve(person_id)
            if person_id in barred.get(face_id, ()):
                person_id = None
        people.append(person_id)
        names.append(None if person_id is None else labels.names.get(person_id, UNKNOWN_NAME.format(number=person_id)))
        assigned.append(by)
        reasons.append(None if person_id is not None or face_id in labels.not_faces else reason)
    replaced = {"person_id": people, "person_name": names, "assigned_by": assigned, "unsorted_reason": reasons}
    for column, values in replaced.items():
        faces = faces.set_column(faces.schema.get_field_index(column), column, pa.array(values, pa.string()))
    return faces
