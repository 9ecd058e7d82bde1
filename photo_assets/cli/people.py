"""`photo-assets people ...`: see and correct the people found in the photos (photo_assets.people_editor does it).

A person is given by its number ("482913"), its full name ("Unknown person 482913") or a name the user gave
("Alice", any case). A face is given by its face_id or a unique prefix of at least 6 characters.
"""

from __future__ import annotations

import click
import pyarrow.compute as pc

from photo_assets.analysis.labels import LabelEdit
from photo_assets.cli.options import current_layout, current_settings, dagster_instance, data_option, emit_json, json_option
from photo_assets.people_editor import PeopleEditor, PeopleError
from photo_assets.storage import DataStore, LabelLog
from photo_assets.storage.layout import PHOTOS

# `show` lists this many faces unless told otherwise: a person can have thousands.
SHOW_LIMIT = 50


class RequestError(click.ClickException):
    """A person or face that does not exist, a name that cannot be given: one line, exit status 2."""

    exit_code = 2


@click.group()
@data_option
def people() -> None:
    """List, show, rename, merge, move, reject, undo."""


@people.result_callback()
def _warn_about_the_log(status: int) -> int:
    """After every people command: a torn or damaged line of the label log is said, not left for the user to guess."""
    for problem in LabelLog(current_layout().label_log).read().problems:
        click.echo(f"warning: label log {problem}", err=True)
    return status


def _editor() -> PeopleEditor:
    try:
        return PeopleEditor(current_layout())
    except PeopleError as error:
        raise RequestError(str(error)) from error


def _record(make_edit, what) -> int:
    """Make an edit, tell the user what it did, and tell the Dagster instance the label log changed (so the UI shows
    person_clusters stale and its automation re-runs it)."""
    try:
        edit: LabelEdit | None = make_edit()
    except PeopleError as error:
        raise RequestError(str(error)) from error
    if edit is None:
        click.echo("nothing to undo")
        return 0
    click.echo(what(edit))
    click.echo(f"edit {edit.edit_id} recorded; people update when person_clusters next runs")
    from photo_assets.jobs import label_log_observation

    dagster_instance(current_settings()).report_runless_asset_event(label_log_observation(current_layout()))
    return 0


@people.command("list")
@data_option
@json_option
@click.option("--min-faces", type=int, default=1, show_default=True, help="hide people with fewer faces")
def list_people(as_json: bool, min_faces: int) -> int:
    """Everyone found, named people first, then unknown people by size."""
    editor = _editor()
    faces = editor.faces.filter(pc.is_valid(editor.faces["person_id"]))
    counts = faces.group_by(["person_id", "person_name"]).aggregate(
        [("face_id", "count"), ("photo_id", "count_distinct")]
    )
    rows = sorted(
        counts.to_pylist(),
        key=lambda row: (not editor.labels.names.get(row["person_id"]), -row["face_id_count"], row["person_id"]),
    )
    shown = [row for row in rows if row["face_id_count"] >= min_faces]
    if as_json:
        emit_json([
            {"person_id": row["person_id"], "name": row["person_name"], "named": row["person_id"] in editor.labels.names,
             "faces": row["face_id_count"], "photos": row["photo_id_count_distinct"]}
            for row in shown
        ])
        return 0
    click.echo(f"{'person':>8}  {'faces':>6}  {'photos':>6}  name")
    for row in shown:
        click.echo(f"{row['person_id']:>8}  {row['face_id_count']:>6}  {row['photo_id_count_distinct']:>6}  "
                   f"{row['person_name']}")
    named = sum(1 for row in rows if editor.labels.names.get(row["person_id"]))
    click.echo(f"{len(rows)} people ({named} named); {len(rows) - len(shown)} with fewer than {min_faces} faces "
               "not shown")
    return 0


@people.command()
@data_option
@json_option
@click.argument("person")
@click.option("--limit", type=int, default=SHOW_LIMIT, show_default=True)
def show(as_json: bool, person: str, limit: int) -> int:
    """One person's faces: face ids, who placed them, distance to the person, photo."""
    editor = _editor()
    try:
        found = editor.person(person)
    except PeopleError as error:
        raise RequestError(str(error)) from error
    rows = editor.faces.filter(pc.equal(editor.faces["person_id"], found.person_id))
    rows = rows.sort_by([("assigned_by", "descending"), ("distance", "ascending")])
    catalog = DataStore(editor.layout).read_all(PHOTOS, columns=["photo_id", "path"])
    path_of = dict(zip(catalog["photo_id"].to_pylist(), catalog["path"].to_pylist())) if catalog else {}
    if as_json:
        emit_json([
            {"person_id": found.person_id, "name": found.name, "face_id": row["face_id"], "photo_id": row["photo_id"],
             "path": path_of.get(row["photo_id"]), "assigned_by": row["assigned_by"], "distance": row["distance"]}
            for row in rows.slice(0, limit).to_pylist()
        ])
        return 0
    click.echo(f"{found.name} ({found.person_id}): {rows.num_rows} faces in "
               f"{pc.count_distinct(rows['photo_id']).as_py()} photos")
    click.echo(f"{'face':<20}  {'by':<4}  {'distance':>8}  photo")
    for row in rows.slice(0, limit).to_pylist():
        distance = "" if row["distance"] is None else f"{row['distance']:.3f}"
        click.echo(f"{row['face_id']:<20}  {row['assigned_by']:<4}  {distance:>8}  "
                   f"{path_of.get(row['photo_id'], row['photo_id'])}")
    if rows.num_rows > limit:
        click.echo(f"... {rows.num_rows - limit} more (--limit)")
    return 0


@people.command()
@data_option
@click.argument("person")
@click.argument("name")
def rename(person: str, name: str) -> int:
    """Name a person (a name someone has already merges the two)."""
    return _record(lambda: _editor().rename(person, name),
                   lambda edit: f"person {edit.args['person_id']} is now {name.strip()!r}")


@people.command()
@data_option
@click.argument("source")
@click.argument("target")
def merge(source: str, target: str) -> int:
    """Fold the first person into the second."""
    return _record(lambda: _editor().merge(source, target),
                   lambda edit: f"person {edit.args['source']} merged into {edit.args['target']}")


@people.command()
@data_option
@click.argument("face")
@click.argument("person", required=False)
@click.option("--new", "to_new_person", is_flag=True, help="move the face to a new unnamed person")
def move(face: str, person: str | None, to_new_person: bool) -> int:
    """Move a face to a person (a new name starts a new person)."""
    if to_new_person == bool(person):
        raise click.UsageError("give either a person or --new")
    return _record(
        lambda: _editor().move_to_new_person(face) if to_new_person else _editor().move(face, person),
        lambda edit: f"face {edit.args['face_id']} moved to {edit.args['person_id']}",
    )


@people.command()
@data_option
@click.argument("face")
@click.option("--not-a-face", is_flag=True, help="no face at all, rather than not this person")
def reject(face: str, not_a_face: bool) -> int:
    """This face is not its person (or, with --not-a-face, no face)."""
    return _record(
        lambda: _editor().reject(face, not_a_face),
        lambda edit: f"face {edit.args['face_id']} "
        + ("is not a face" if not_a_face else f"is not person {edit.args['person_id']}"),
    )


@people.command()
@data_option
def undo() -> int:
    """Cancel the latest edit still in effect."""
    return _record(lambda: LabelLog(current_layout().label_log).undo(),
                   lambda edit: f"undid the latest {edit.args['op']}")
