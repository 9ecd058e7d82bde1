"""`photo-assets people ...`: see and correct the people found in the photos. Every verb is a thin caller of
photo_assets.people.PeopleService: the same edits and the same view as the review pages and the `relabel` job.

A person is given by its number ("482913"), its full name ("Unknown person 482913") or a name the user gave
("Alice", any case). A face is given by its face_id or a unique prefix of at least 6 characters.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from photo_assets.cli.options import (
    current_layout,
    current_settings,
    dagster_instance,
    data_option,
    emit_json,
    json_option,
)
from photo_assets.people import EditOp, EditRequest, EditResult, NothingToUndo, PeopleError, PeopleService, PeopleView
from photo_assets.storage import LabelLog

# `show` lists this many faces unless told otherwise: a person can have thousands.
SHOW_LIMIT = 50


class RequestError(click.ClickException):
    """A person or face that does not exist, a name that cannot be given: one line, exit status 2."""

    exit_code = 2


@click.group()
@data_option
def people() -> None:
    """List, show, rename, merge, move, reject, approve, add-face, undo; suggestions, not-same, unsorted."""


@people.result_callback()
def _warn_about_the_log(status: int) -> int:
    """After every people command: a torn or damaged line of the label log is said, not left for the user to guess."""
    for problem in LabelLog(current_layout().label_log).read().problems:
        click.echo(f"warning: label log {problem}", err=True)
    return status


def _service() -> PeopleService:
    return PeopleService(current_layout())


def _view() -> PeopleView:
    try:
        return _service().people_view()
    except PeopleError as error:
        raise RequestError(str(error)) from error


def _edit(request: EditRequest, said: Callable[[EditResult], str]) -> int:
    """Make an edit, tell the user what it did, and tell the Dagster instance the label log changed (so the UI shows
    person_clusters stale and its automation re-runs it)."""
    try:
        result = _service().apply(request)
    except NothingToUndo as nothing:
        click.echo(str(nothing))
        return 0
    except PeopleError as error:
        raise RequestError(str(error)) from error
    click.echo(said(result))
    click.echo(f"edit {result.edit.edit_id} recorded; people update when person_clusters next runs")
    from photo_assets.assets.observations import label_log_observation

    dagster_instance(current_settings()).report_runless_asset_event(label_log_observation(current_layout()))
    return 0


@people.command("list")
@data_option
@json_option
@click.option("--min-faces", type=int, default=1, show_default=True, help="hide people with fewer faces")
def list_people(as_json: bool, min_faces: int) -> int:
    """Everyone found, as the People page shows them: named people first, then unknown people by size."""
    view = _view()
    everyone = view.ordered_people()
    shown = [person for person in everyone if len(person.face_ids) >= min_faces]
    if as_json:
        emit_json([view.person_json(person.person_id) for person in shown])
        return 0
    click.echo(f"{'person':>8}  {'faces':>6}  {'photos':>6}  name")
    for person in shown:
        click.echo(f"{person.person_id:>8}  {len(person.face_ids):>6}  {person.photos:>6}  {person.name}")
    named = sum(1 for person in everyone if person.named)
    click.echo(f"{len(everyone)} people ({named} named); {len(everyone) - len(shown)} with fewer than {min_faces} "
               "faces not shown")
    return 0


@people.command()
@data_option
@json_option
@click.argument("person")
@click.option("--limit", type=int, default=SHOW_LIMIT, show_default=True)
def show(as_json: bool, person: str, limit: int) -> int:
    """One person's faces, most doubtful first: face ids, who placed them, distance to the person, photo."""
    view = _view()
    try:
        found = _service().person(person, view)
    except PeopleError as error:
        raise RequestError(str(error)) from error
    faces = view.person_faces(found.person_id)
    if as_json:
        emit_json([{"person_id": found.person_id, "name": found.name, **view.face_json(face.face_id)}
                   for face in faces[:limit]])
        return 0
    click.echo(f"{found.name} ({found.person_id}): {len(faces)} faces in {found.photos} photos")
    click.echo(f"{'face':<20}  {'by':<4}  {'distance':>8}  photo")
    for face in faces[:limit]:
        distance = "" if face.distance is None else f"{face.distance:.3f}"
        click.echo(f"{face.face_id:<20}  {face.assigned_by or '':<4}  {distance:>8}  {view.photo_path(face.photo_id)}")
    if len(faces) > limit:
        click.echo(f"... {len(faces) - limit} more (--limit)")
    return 0


@people.command()
@data_option
@click.argument("person")
@click.argument("name")
def rename(person: str, name: str) -> int:
    """Name a person (a name someone has already merges the two)."""
    return _edit(EditRequest(EditOp.RENAME, person=person, name=name),
                 lambda result: f"person {result.edit.args['person_id']} is now {name.strip()!r}")


@people.command()
@data_option
@click.argument("source")
@click.argument("target")
def merge(source: str, target: str) -> int:
    """Fold the first person into the second (accepts a suggestion)."""
    return _edit(EditRequest(EditOp.MERGE, person=source, target=target),
                 lambda result: f"person {result.edit.args['source']} merged into {result.edit.args['target']}")


@people.command()
@data_option
@click.argument("face")
@click.argument("person", required=False)
@click.option("--new", "to_new_person", is_flag=True, help="move the face to a new unnamed person")
def move(face: str, person: str | None, to_new_person: bool) -> int:
    """Move a face to a person (a new name starts a new person)."""
    if to_new_person == bool(person):
        raise click.UsageError("give either a person or --new")
    request = (EditRequest(EditOp.MOVE_TO_NEW_PERSON, face=face) if to_new_person
               else EditRequest(EditOp.MOVE, face=face, target=person))
    return _edit(request, lambda result: f"face {result.edit.args['face_id']} moved to {result.person_id}")


@people.command()
@data_option
@click.argument("face")
@click.option("--not-a-face", is_flag=True, help="no face at all, rather than not this person")
def reject(face: str, not_a_face: bool) -> int:
    """This face is not its person (or, with --not-a-face, no face)."""
    op = EditOp.NOT_A_FACE if not_a_face else EditOp.REJECT
    return _edit(EditRequest(op, face=face),
                 lambda result: f"face {result.edit.args['face_id']} "
                 + ("is not a face" if not_a_face else f"is not person {result.edit.args['person_id']}"))


@people.command()
@data_option
@click.argument("face")
def approve(face: str) -> int:
    """Confirm a face's person: it becomes your word, and clustering never moves it."""
    return _edit(EditRequest(EditOp.APPROVE, face=face),
                 lambda result: f"face {result.edit.args['face_id']} confirmed as {result.person_id}")


@people.command("add-face")
@data_option
@click.argument("photo")
@click.argument("x", type=int)
@click.argument("y", type=int)
@click.argument("width", type=int)
@click.argument("height", type=int)
@click.argument("name", required=False, default="")
def add_face(photo: str, x: int, y: int, width: int, height: int, name: str) -> int:
    """Add a face the detector missed: PHOTO (its path, or id) and the box in pixels of the photo as shown
    (orientation applied), optionally with the person's name; embedded at the next `photo-assets run`."""
    library = current_settings().library_dir.resolve()
    given = Path(photo)
    if given.is_absolute() and given.resolve().is_relative_to(library):
        photo = str(given.resolve().relative_to(library))
    return _edit(EditRequest(EditOp.ADD_FACE, photo=photo, box=f"{x},{y},{width},{height}", name=name),
                 lambda result: f"face {result.edit.args['face_id']} added to photo {result.edit.args['photo_id']}"
                 + (f" as {name.strip()!r}" if name.strip() else ""))


@people.command("not-same")
@data_option
@click.argument("person")
@click.argument("other")
def not_same(person: str, other: str) -> int:
    """These two are different people: never suggested as one again."""
    return _edit(EditRequest(EditOp.NOT_SAME, person=person, target=other),
                 lambda result: f"{result.edit.args['person_id']} and {result.edit.args['other_person_id']} are two "
                 "people")


@people.command()
@data_option
@json_option
@click.option("--limit", type=int, default=20, show_default=True)
def suggestions(as_json: bool, limit: int) -> int:
    """"Same person?" pairs, most likely first: accept with `merge A B`, decline with `not-same A B`."""
    view = _view()
    rows = [view.suggestion_json(suggestion) for suggestion in view.suggestions[:limit]]
    if as_json:
        emit_json(rows)
        return 0
    click.echo(f"{'rank':>5}  {'person':>8}  {'other':>8}  {'distance':>8}  names")
    for row in rows:
        click.echo(f"{row['rank']:>5}  {row['person_id']:>8}  {row['other_person_id']:>8}  {row['distance']:>8.3f}  "
                   f"{row['name']} / {row['other_name']}")
    click.echo(f"{len(view.suggestions)} suggestions; merge A B to accept, not-same A B to decline")
    return 0


@people.command()
@data_option
@json_option
def unsorted(as_json: bool) -> int:
    """Faces kept out of people (too small, blurred, in profile, unsure), by reason: place one with `move`."""
    view = _view()
    groups = view.unsorted()
    if as_json:
        emit_json([{"reason": reason, **view.face_json(face.face_id)}
                   for reason, faces in groups.items() for face in faces])
        return 0
    for reason, faces in groups.items():
        click.echo(f"{reason}: {len(faces)} faces")
        for face in faces:
            click.echo(f"  {face.face_id}  {view.photo_path(face.photo_id)}")
    return 0


@people.command()
@data_option
def undo() -> int:
    """Cancel the latest edit still in effect."""
    return _edit(EditRequest(EditOp.UNDO), lambda result: f"undid the latest {result.edit.args['op']}")
