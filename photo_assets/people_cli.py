"""`photo-assets people list|show|rename|merge|move|reject|undo`: see and correct the people found in the photos.

Edits are appended to the label log (photo_assets.labels), the one durable record of what the user said. Listings
read the latest person_clusters output with the log applied on top, so a rename, merge or move shows at once;
person_clusters itself takes the edits into account the next time it runs. `PeopleEditor` is the same set of
operations for other callers (the Dagster relabel job).

A person is given by its number ("482913"), its full name ("Unknown person 482913") or a name the user gave
("Alice", any case). A face is given by its face_id or a unique prefix of at least FACE_PREFIX_MIN characters.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from photo_assets.analysis.people import (
    ASSIGNED_BY_USER,
    FACES_PATH,
    UNKNOWN_NAME,
    unknown_number,
)
from photo_assets.labels import LabelEdit, LabelLog, LabelState, RejectReason
from photo_assets.storage import DataStore

# Short enough to type, long enough to be unique among a library's faces.
FACE_PREFIX_MIN = 6
UNKNOWN_PATTERN = re.compile(r"^\s*unknown person\s+(\d+)\s*$", re.IGNORECASE)
# `show` lists this many faces unless told otherwise: a person can have thousands.
SHOW_LIMIT = 50


class PeopleError(ValueError):
    """A request that cannot be carried out, with a message meant for the user."""


@dataclass(frozen=True)
class PersonFaces:
    person_id: str
    name: str
    face_ids: list[str]


class PeopleEditor:
    """The latest people of a data folder with the label log applied, and the edits a user can make."""

    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir)
        self.log = LabelLog(self.data_dir)
        path = self.data_dir / FACES_PATH
        if not path.exists():
            raise PeopleError(f"no people yet ({path} is missing): materialize person_clusters first")
        self.labels: LabelState = self.log.state()
        self.faces = effective_faces(pq.read_table(path), self.labels)

    # -- finding ---------------------------------------------------------------------------------------------------

    def person(self, text: str) -> PersonFaces:
        wanted = text.strip()
        numbered = UNKNOWN_PATTERN.match(wanted)
        candidates = {self.labels.resolve(numbered.group(1) if numbered else wanted)}
        named = self.labels.person_named(wanted)
        if named:
            candidates.add(named)
        people = set(self.faces["person_id"].drop_null().to_pylist())
        found = [person_id for person_id in candidates if person_id in people]
        if not found:
            raise PeopleError(f"no person {text!r}")
        if len(found) > 1:
            raise PeopleError(f"{text!r} could be any of {', '.join(sorted(found))}: give the number")
        rows = self.faces.filter(pc.equal(self.faces["person_id"], found[0]))
        return PersonFaces(found[0], rows["person_name"][0].as_py(), rows["face_id"].to_pylist())

    def face(self, text: str) -> dict:
        wanted = text.strip().lower()
        if len(wanted) < FACE_PREFIX_MIN:
            raise PeopleError(f"give at least {FACE_PREFIX_MIN} characters of the face id")
        rows = self.faces.filter(pc.starts_with(self.faces["face_id"], wanted))
        if rows.num_rows != 1:
            raise PeopleError(f"no face {text!r}" if not rows.num_rows else f"{text!r} matches {rows.num_rows} faces")
        return rows.to_pylist()[0]

    def _new_person_id(self, seed: str) -> str:
        taken = set(self.faces["person_id"].drop_null().to_pylist()) | set(self.labels.names)
        return unknown_number(f"new-person:{seed}", taken | set(self.labels.merged_into))

    # -- editing ---------------------------------------------------------------------------------------------------

    def rename(self, person: str, name: str) -> LabelEdit:
        if not name.strip():
            raise PeopleError("a name cannot be empty")
        if UNKNOWN_PATTERN.match(name):
            raise PeopleError(f"{name!r} is how unnamed people are shown; choose another name")
        found = self.person(person)
        return self.log.rename(found.person_id, name.strip(), found.face_ids)

    def merge(self, source: str, target: str) -> LabelEdit:
        merged, kept = self.person(source), self.person(target)
        if merged.person_id == kept.person_id:
            raise PeopleError(f"{source!r} and {target!r} are the same person")
        return self.log.merge(merged.person_id, kept.person_id, merged.face_ids + kept.face_ids)

    def move(self, face: str, person: str) -> LabelEdit:
        """Move a face to a person; a name nobody has yet starts a new person with that name."""
        row = self.face(face)
        try:
            target, name = self.person(person).person_id, None
        except PeopleError:
            if UNKNOWN_PATTERN.match(person) or person.strip().isdigit():
                raise
            target, name = self._new_person_id(f"{row['face_id']}:{person}"), person.strip()
        return self.log.move(row["face_id"], target, name)

    def move_to_new_person(self, face: str) -> LabelEdit:
        row = self.face(face)
        return self.log.move(row["face_id"], self._new_person_id(row["face_id"]))

    def reject(self, face: str, not_a_face: bool = False) -> LabelEdit:
        row = self.face(face)
        if not_a_face:
            return self.log.reject(row["face_id"], None, RejectReason.NOT_A_FACE)
        if row["person_id"] is None:
            raise PeopleError(f"face {row['face_id']} is already marked as not a face")
        return self.log.reject(row["face_id"], row["person_id"], RejectReason.NOT_THIS_PERSON)

    def not_same(self, person: str, other: str) -> LabelEdit:
        """Two people are not the same person (a merge suggestion declined)."""
        first, second = self.person(person), self.person(other)
        if first.person_id == second.person_id:
            raise PeopleError(f"{person!r} and {other!r} are already the same person")
        return self.log.not_same(first.person_id, second.person_id)

    def approve(self, face: str) -> LabelEdit:
        """Confirm a face's current person: a move to where it is, so it becomes the user's word (a seed)."""
        row = self.face(face)
        if row["person_id"] is None:
            raise PeopleError(f"face {row['face_id']} has no person to confirm: move it to one")
        return self.log.move(row["face_id"], row["person_id"])


def effective_faces(faces: pa.Table, labels: LabelState) -> pa.Table:
    """The faces table as it will be once person_clusters replays the log: merges followed, names applied, placed
    faces in their person, rejected faces out of theirs (shown without a person until the next run)."""
    seeds, barred = labels.seeds(), labels.forbidden()
    people, names, assigned = [], [], []
    for face_id, person_id, by in zip(
        faces["face_id"].to_pylist(), faces["person_id"].to_pylist(), faces["assigned_by"].to_pylist()
    ):
        if face_id in labels.not_faces:
            person_id = None
        elif face_id in seeds:
            person_id, by = seeds[face_id], ASSIGNED_BY_USER
        elif person_id is not None:
            person_id = labels.resolve(person_id)
            if person_id in barred.get(face_id, ()):
                person_id = None
        people.append(person_id)
        names.append(None if person_id is None else labels.names.get(person_id, UNKNOWN_NAME.format(number=person_id)))
        assigned.append(by)
    replaced = {"person_id": people, "person_name": names, "assigned_by": assigned}
    for column, values in replaced.items():
        faces = faces.set_column(faces.schema.get_field_index(column), column, pa.array(values, pa.string()))
    return faces


# -- the command line --------------------------------------------------------------------------------------------


def _list(editor: PeopleEditor, args: argparse.Namespace) -> None:
    faces = editor.faces.filter(pc.is_valid(editor.faces["person_id"]))
    counts = faces.group_by(["person_id", "person_name"]).aggregate(
        [("face_id", "count"), ("photo_id", "count_distinct")]
    )
    rows = sorted(
        counts.to_pylist(),
        key=lambda row: (not editor.labels.names.get(row["person_id"]), -row["face_id_count"], row["person_id"]),
    )
    shown = [row for row in rows if row["face_id_count"] >= args.min_faces]
    print(f"{'person':>8}  {'faces':>6}  {'photos':>6}  name")
    for row in shown:
        print(f"{row['person_id']:>8}  {row['face_id_count']:>6}  {row['photo_id_count_distinct']:>6}  "
              f"{row['person_name']}")
    named = sum(1 for row in rows if editor.labels.names.get(row["person_id"]))
    print(f"{len(rows)} people ({named} named); {len(rows) - len(shown)} with fewer than {args.min_faces} faces "
          "not shown")


def _show(editor: PeopleEditor, args: argparse.Namespace) -> None:
    found = editor.person(args.person)
    rows = editor.faces.filter(pc.equal(editor.faces["person_id"], found.person_id))
    rows = rows.sort_by([("assigned_by", "descending"), ("distance", "ascending")])
    print(f"{found.name} ({found.person_id}): {rows.num_rows} faces in "
          f"{pc.count_distinct(rows['photo_id']).as_py()} photos")
    catalog = DataStore(editor.data_dir).read_all("photos", columns=["photo_id", "path"])
    path_of = dict(zip(catalog["photo_id"].to_pylist(), catalog["path"].to_pylist())) if catalog else {}
    print(f"{'face':<20}  {'by':<4}  {'distance':>8}  photo")
    for row in rows.slice(0, args.limit).to_pylist():
        distance = "" if row["distance"] is None else f"{row['distance']:.3f}"
        photo = path_of.get(row["photo_id"], row["photo_id"])
        print(f"{row['face_id']:<20}  {row['assigned_by']:<4}  {distance:>8}  {photo}")
    if rows.num_rows > args.limit:
        print(f"... {rows.num_rows - args.limit} more (--limit)")


def _report(edit: LabelEdit | None, what: str) -> None:
    print(what if edit else "nothing to undo")
    if edit:
        print(f"edit {edit.edit_id} recorded; people update when person_clusters next runs")


def people_cli(argv: list[str], data_dir: Path) -> int:
    """Run `photo-assets people ...` (argv after "people") on a data folder; returns the exit status."""
    parser = argparse.ArgumentParser(prog="photo-assets people", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="everyone found, named people first")
    listing.add_argument("--min-faces", type=int, default=1, help="hide people with fewer faces")
    show = commands.add_parser("show", help="one person's faces")
    show.add_argument("person")
    show.add_argument("--limit", type=int, default=SHOW_LIMIT)
    rename = commands.add_parser("rename", help="name a person (a name someone has already merges the two)")
    rename.add_argument("person")
    rename.add_argument("name")
    merge = commands.add_parser("merge", help="fold the first person into the second")
    merge.add_argument("source")
    merge.add_argument("target")
    move = commands.add_parser("move", help="move a face to a person (a new name starts a new person)")
    move.add_argument("face")
    move.add_argument("person", nargs="?")
    move.add_argument("--new", action="store_true", help="move the face to a new unnamed person")
    reject = commands.add_parser("reject", help="this face is not its person (or, with --not-a-face, no face)")
    reject.add_argument("face")
    reject.add_argument("--not-a-face", action="store_true")
    commands.add_parser("undo", help="cancel the latest edit")
    args = parser.parse_args(argv)
    try:
        if args.command == "undo":  # needs no clustering output, only the log
            edit = LabelLog(data_dir).undo()
            _report(edit, f"undid the latest {edit.args['op']}" if edit else "")
            return 0
        editor = PeopleEditor(data_dir)
        if args.command == "list":
            _list(editor, args)
        elif args.command == "show":
            _show(editor, args)
        elif args.command == "rename":
            edit = editor.rename(args.person, args.name)
            _report(edit, f"person {edit.args['person_id']} is now {args.name.strip()!r}")
        elif args.command == "merge":
            edit = editor.merge(args.source, args.target)
            _report(edit, f"person {edit.args['source']} merged into {edit.args['target']}")
        elif args.command == "move":
            if args.new == bool(args.person):
                raise PeopleError("give either a person or --new")
            edit = editor.move_to_new_person(args.face) if args.new else editor.move(args.face, args.person)
            _report(edit, f"face {edit.args['face_id']} moved to {edit.args['person_id']}")
        elif args.command == "reject":
            edit = editor.reject(args.face, args.not_a_face)
            what = "is not a face" if args.not_a_face else f"is not person {edit.args['person_id']}"
            _report(edit, f"face {edit.args['face_id']} {what}")
    except PeopleError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for problem in LabelLog(data_dir).read().problems:
        print(f"warning: label log {problem}", file=sys.stderr)
    return 0
