"""The people service: every edit a user makes to people, and people as the user sees them, for the command line
(`photo-assets people`), the Dagster `relabel` job and the review pages alike.

Edits are validated here and appended to the label log, the one durable record of what the user said. What the
service shows is the latest person_clusters output with the log applied on top (photo_assets.people.view), so an
edit shows at once; person_clusters itself takes the edits into account the next time it runs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from photo_assets.analysis.faces import MIN_GIVEN_FACE_SIDE, face_id, face_in_box
from photo_assets.analysis.labels import RejectReason
from photo_assets.analysis.people import unknown_number
from photo_assets.analysis.regions import overlap
from photo_assets.people.edits import (
    FACE_ID_PATTERN,
    FACE_PREFIX_MIN,
    NAME_MAX,
    TEXT_FIELDS,
    UNKNOWN_PATTERN,
    EditOp,
    EditRequest,
    EditResult,
    NotFound,
    NothingToUndo,
    PeopleError,
)
from photo_assets.people.view import Face, PeopleReader, PeopleView, Person, Photo
from photo_assets.storage import DataLayout, LabelLog

# A face drawn over one already there (found, or drawn before) by this much (IoU) is that face again.
SAME_FACE_OVERLAP = 0.5


class PeopleService:
    """The people of one data folder: what the user sees, and the edits they can make."""

    def __init__(self, layout: DataLayout):
        self.layout = layout
        self.log = LabelLog(layout.label_log)
        self.reader = PeopleReader(layout)
        self._edit_lock = threading.Lock()  # one edit at a time in this process (the log locks across processes)
        self._handlers: dict[EditOp, Callable[[PeopleView, EditRequest], EditResult]] = {
            EditOp.RENAME: self._rename,
            EditOp.MERGE: self._merge,
            EditOp.MOVE: self._move,
            EditOp.MOVE_TO_NEW_PERSON: self._move_to_new_person,
            EditOp.REJECT: self._reject,
            EditOp.NOT_A_FACE: self._not_a_face,
            EditOp.NOT_SAME: self._not_same,
            EditOp.APPROVE: self._approve,
            EditOp.ADD_FACE: self._add_face,
        }

    # -- reading -----------------------------------------------------------------------------------------------------

    def view(self) -> PeopleView:
        """People as the user sees them now (possibly before any person_clusters run: then `has_people` is False)."""
        return self.reader.view()

    def people_view(self) -> PeopleView:
        """The view, or a PeopleError when person_clusters has not run yet."""
        view = self.view()
        if not view.has_people:
            raise PeopleError(f"no people yet ({self.layout.people_faces} is missing): materialize person_clusters "
                              "first")
        return view

    def person(self, text: str, view: PeopleView | None = None) -> Person:
        """A person by number, "Unknown person NNNNNN" or a name the user gave (any case), merges followed."""
        view = view or self.people_view()
        wanted = text.strip()
        numbered = UNKNOWN_PATTERN.match(wanted)
        candidates = {view.labels.resolve(numbered.group(1) if numbered else wanted)}
        named = view.labels.person_named(wanted)
        if named:
            candidates.add(named)
        found = [person_id for person_id in candidates if person_id in view.people]
        if not found:
            raise NotFound(f"no person {text!r}")
        if len(found) > 1:
            raise PeopleError(f"{text!r} could be any of {', '.join(sorted(found))}: give the number")
        return view.people[found[0]]

    def face(self, text: str, view: PeopleView | None = None) -> Face:
        """A face by its id or a unique prefix of it (faces said to be no face included: they can be placed again)."""
        view = view or self.people_view()
        wanted = text.strip().lower()
        if not FACE_ID_PATTERN.match(wanted):
            raise PeopleError(f"'face' must be a face id (hexadecimal, at least {FACE_PREFIX_MIN} characters)")
        found = [face for faces in (view.faces, view.not_faces) for face_id, face in faces.items()
                 if face_id.startswith(wanted)]
        if len(found) != 1:
            raise NotFound(f"no face {text!r}") if not found else PeopleError(f"{text!r} matches {len(found)} faces")
        return found[0]

    def photo(self, text: str, view: PeopleView | None = None) -> Photo:
        """A photo by its id, a unique prefix of it (at least FACE_PREFIX_MIN characters), or its library path."""
        view = view or self.view()
        wanted = text.strip()
        found = [photo for photo in view.photos.values() if photo.path == wanted.lstrip("./")]
        if not found and len(wanted) >= FACE_PREFIX_MIN:
            found = [photo for photo_id, photo in view.photos.items() if photo_id.startswith(wanted.lower())]
        if len(found) != 1:
            raise NotFound(f"no photo {text!r}") if not found else PeopleError(f"{text!r} matches {len(found)} photos")
        return found[0]

    # -- editing -----------------------------------------------------------------------------------------------------

    def apply(self, request: EditRequest) -> EditResult:
        """Validate one edit and append it to the label log; a PeopleError says why nothing was written."""
        for field_name in TEXT_FIELDS:
            if len(getattr(request, field_name)) > NAME_MAX:
                raise PeopleError(f"{field_name!r} is longer than {NAME_MAX} characters")
        with self._edit_lock:
            if request.op is EditOp.UNDO:
                return self._undo()
            return self._handlers[EditOp(request.op)](self.people_view(), request)

    def _undo(self) -> EditResult:
        edit = self.log.undo()
        if edit is None:
            raise NothingToUndo("nothing to undo")
        undone = next(e for e in self.log.read().edits if e.edit_id == edit.args["edit_id"])
        person = undone.args.get("person_id") or undone.args.get("target") or undone.args.get("source")
        return EditResult(edit, person, undone)

    def _rename(self, view: PeopleView, request: EditRequest) -> EditResult:
        name = _required(request, "name").strip()
        if not name:
            raise PeopleError("a name cannot be empty")
        if UNKNOWN_PATTERN.match(name):
            raise PeopleError(f"{name!r} is how unnamed people are shown; choose another name")
        person = self.person(_required(request, "person"), view)
        edit = self.log.rename(person.person_id, name, person.face_ids)
        return EditResult(edit, self.log.state().resolve(person.person_id))  # a name someone had: merged into them

    def _merge(self, view: PeopleView, request: EditRequest) -> EditResult:
        merged, kept = self.person(_required(request, "person"), view), self.person(_required(request, "target"), view)
        if merged.person_id == kept.person_id:
            raise PeopleError(f"{request.person!r} and {request.target!r} are the same person")
        edit = self.log.merge(merged.person_id, kept.person_id, merged.face_ids + kept.face_ids)
        return EditResult(edit, kept.person_id)

    def _move(self, view: PeopleView, request: EditRequest) -> EditResult:
        """A face to a person; a name nobody has yet starts a new person with that name."""
        face = self.face(_required(request, "face"), view)
        destination = request.target or _required(request, "person")
        try:
            target, name = self.person(destination, view).person_id, None
        except NotFound:
            if UNKNOWN_PATTERN.match(destination) or destination.strip().isdigit() or not destination.strip():
                raise
            target, name = _new_person_id(view, f"{face.face_id}:{destination}"), destination.strip()
        edit = self.log.move(face.face_id, target, name)
        return EditResult(edit, target)

    def _move_to_new_person(self, view: PeopleView, request: EditRequest) -> EditResult:
        face = self.face(_required(request, "face"), view)
        edit = self.log.move(face.face_id, _new_person_id(view, face.face_id))
        return EditResult(edit, edit.args["person_id"])

    def _reject(self, view: PeopleView, request: EditRequest) -> EditResult:
        face = self.face(_required(request, "face"), view)
        if face.person_id is None:
            raise PeopleError(f"face {face.face_id} is in no person (unsorted, or not a face): nothing to reject")
        edit = self.log.reject(face.face_id, face.person_id, RejectReason.NOT_THIS_PERSON)
        return EditResult(edit, face.person_id)

    def _not_a_face(self, view: PeopleView, request: EditRequest) -> EditResult:
        face = self.face(_required(request, "face"), view)
        return EditResult(self.log.reject(face.face_id, None, RejectReason.NOT_A_FACE), face.person_id)

    def _not_same(self, view: PeopleView, request: EditRequest) -> EditResult:
        """Two people are not the same person (a merge suggestion declined)."""
        first, second = self.person(_required(request, "person"), view), self.person(_required(request, "target"), view)
        if first.person_id == second.person_id:
            raise PeopleError(f"{request.person!r} and {request.target!r} are already the same person")
        return EditResult(self.log.not_same(first.person_id, second.person_id), first.person_id)

    def _approve(self, view: PeopleView, request: EditRequest) -> EditResult:
        """Confirm a face's current person: a move to where it is, so it becomes the user's word (a seed)."""
        face = self.face(_required(request, "face"), view)
        if face.person_id is None:
            raise PeopleError(f"face {face.face_id} has no person to confirm: move it to one")
        return EditResult(self.log.move(face.face_id, face.person_id), face.person_id)

    def _add_face(self, view: PeopleView, request: EditRequest) -> EditResult:
        """A face the detector missed, drawn on a photo: embedded and clustered at the next people update, in the
        person named at once if a name is given (someone's name, or a new person's)."""
        photo = self.photo(_required(request, "photo"), view)
        box = _box(_required(request, "box"), photo)
        new_face = face_id(photo.photo_id, face_in_box(*box))
        there = [(known.face_id, (known.x, known.y, known.width, known.height)) for known in
                 [view.boxes[face] for face in view.photo_boxes.get(photo.photo_id, [])] + view.pending_faces(photo.photo_id)]
        for known, known_box in there:
            if known == new_face or overlap(box, known_box) >= SAME_FACE_OVERLAP:
                raise PeopleError(f"face {known} is already there: correct that one instead")
        person_id, name = None, None
        if request.name.strip():
            try:
                person_id = self.person(request.name, view).person_id
            except NotFound:
                if UNKNOWN_PATTERN.match(request.name):
                    raise
                person_id, name = _new_person_id(view, f"{new_face}:{request.name}"), request.name.strip()
        return EditResult(self.log.add_face(new_face, photo.photo_id, box, person_id, name), person_id)


def _box(text: str, photo: Photo) -> tuple[int, int, int, int]:
    """The box "x,y,w,h" (commas or spaces) as whole pixels, inside the photo and large enough to be a face."""
    try:
        x, y, width, height = (round(float(part)) for part in text.replace(",", " ").split())
    except ValueError as error:
        raise PeopleError(f"'box' must be four numbers x,y,width,height, not {text!r}") from error
    if min(width, height) < MIN_GIVEN_FACE_SIDE:
        raise PeopleError(f"a face must be at least {MIN_GIVEN_FACE_SIDE} pixels wide and high")
    if x < 0 or y < 0 or x + width > photo.width or y + height > photo.height:
        raise PeopleError(f"the box {x},{y},{width},{height} does not lie inside the {photo.width}x{photo.height} "
                          "photo")
    return x, y, width, height


def _required(request: EditRequest, field_name: str) -> str:
    value = getattr(request, field_name)
    if value == "":
        raise PeopleError(f"{field_name!r} is required for {request.op}")
    return value


def _new_person_id(view: PeopleView, seed: str) -> str:
    taken = set(view.people) | set(view.labels.names) | set(view.labels.merged_into)
    return unknown_number(f"new-person:{seed}", taken)
