"""The one vocabulary of people edits: what a user can ask (from the command line, the `relabel` job or the review
pages), and the errors a request can meet.

A request names people and faces as the user sees them. A person is its number ("482913"), its full name ("Unknown
person 482913") or a name the user gave ("Alice", any case); a face is its face_id or a unique prefix of at least
FACE_PREFIX_MIN hexadecimal characters. The service (photo_assets.people.service) turns a request into one record of
the label log (photo_assets.analysis.labels: the log's record kinds are its storage format, kept stable for logs
written long ago; several requests map to one kind, e.g. `approve` is a `move` to where the face already is).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from enum import StrEnum

from photo_assets.analysis.labels import LabelEdit

# Short enough to type, long enough to be unique among a library's faces.
FACE_PREFIX_MIN = 6
FACE_ID_CHARACTERS = rf"[0-9a-f]{{{FACE_PREFIX_MIN},64}}"
FACE_ID_PATTERN = re.compile(rf"^{FACE_ID_CHARACTERS}$")
# A longer "name" is a paste gone wrong.
NAME_MAX = 200
UNKNOWN_PATTERN = re.compile(r"^\s*unknown person\s+(\d+)\s*$", re.IGNORECASE)


class EditOp(StrEnum):
    """Every edit a user can make. The fields of EditRequest each one reads are listed beside it."""

    RENAME = "rename"  # person, name: a name someone already has merges the two
    MERGE = "merge"  # person into target
    MOVE = "move"  # face to target (or person): a name nobody has yet starts a new person with it
    MOVE_TO_NEW_PERSON = "move_to_new_person"  # face to a new unnamed person
    REJECT = "reject"  # face is not its person: it never goes back to that person
    NOT_A_FACE = "not_a_face"  # face is no face at all
    NOT_SAME = "not_same"  # person and target are two people: never suggested as one again
    APPROVE = "approve"  # face is rightly in its person: it becomes the user's word
    ADD_FACE = "add_face"  # a face the detector missed: photo, box "x,y,w,h" (oriented pixels), optional name
    UNDO = "undo"  # cancel the latest edit still in effect


@dataclass(frozen=True)
class EditRequest:
    op: EditOp
    person: str = ""
    name: str = ""
    target: str = ""
    face: str = ""
    photo: str = ""  # a photo id (or a unique prefix), or its path in the library
    box: str = ""  # "x,y,width,height" in pixels of the photo as shown (orientation applied)


# The text fields of a request, each a person, a name or a face as the user typed it.
TEXT_FIELDS = tuple(field.name for field in fields(EditRequest) if field.name != "op")


@dataclass(frozen=True)
class EditResult:
    """What an edit did: the record appended, the person to show next, and for an undo the edit it cancelled."""

    edit: LabelEdit
    person_id: str | None
    undone: LabelEdit | None = None


class PeopleError(ValueError):
    """A request that cannot be carried out, with a message meant for the user."""


class NotFound(PeopleError):
    """The person or face a request names does not exist."""


class NothingToUndo(PeopleError):
    """An undo with no edit left in effect."""
