"""The people service on its own: every edit of the one vocabulary, validated and appended to the label log, and the
one view (people as the user sees them) with the log applied, without a browser, a subprocess or a Dagster run."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from photo_assets.analysis.people import FACE_SCHEMA
from photo_assets.people import EditOp, EditRequest, NotFound, NothingToUndo, PeopleError, PeopleService
from photo_assets.storage import DataLayout, LabelLog

ALICE_FACES, BOB_FACE, UNSORTED_FACE = ["a" * 20, "b" * 20], "c" * 20, "d" * 20


def write_people(layout: DataLayout) -> None:
    """person_clusters' output for four faces: two in person 111111, one in 222222, one unsorted (blurred), and a
    suggestion that the two people are one."""
    rows = [(ALICE_FACES[0], "111111", 0.5, None), (ALICE_FACES[1], "111111", 0.7, None),
            (BOB_FACE, "222222", 0.4, None), (UNSORTED_FACE, None, None, "blurred")]  # fmt: skip
    faces = pa.Table.from_pylist(
        [{"face_id": f, "photo_id": "0" + f, "person_id": p, "person_name": None, "assigned_by": p and "auto",
          "distance": d, "unsorted_reason": r} for f, p, d, r in rows], FACE_SCHEMA,
    )  # fmt: skip
    layout.clusters_dir.mkdir(parents=True)
    pq.write_table(faces, layout.people_faces)
    pq.write_table(pa.table({"person_id": ["111111"], "other_person_id": ["222222"], "distance": [0.8], "rank": [1],
                             "face_id": [ALICE_FACES[0]], "other_face_id": [BOB_FACE]}), layout.suggestions)


@pytest.fixture
def service(tmp_path: Path) -> PeopleService:
    layout = DataLayout(tmp_path)
    write_people(layout)
    return PeopleService(layout)


def edit(service: PeopleService, op: EditOp, **fields: str):
    return service.apply(EditRequest(op, **fields))


def test_the_view_orders_people_faces_suggestions_and_unsorted(service: PeopleService):
    view = service.people_view()
    assert [p.person_id for p in view.ordered_people()] == ["111111", "222222"]  # unnamed: largest first
    assert [f.face_id for f in view.person_faces("111111")] == [ALICE_FACES[1], ALICE_FACES[0]]  # most doubtful first
    assert [(s.person_id, s.other_person_id) for s in view.suggestions] == [("111111", "222222")]
    assert [f.face_id for f in view.unsorted()["blurred"]] == [UNSORTED_FACE]


def test_rename_shows_at_once_and_a_name_someone_has_merges(service: PeopleService):
    result = edit(service, EditOp.RENAME, person="Unknown person 111111", name=" Alice ")
    assert (result.edit.op, result.edit.args["name"], result.person_id) == ("rename", "Alice", "111111")
    view = service.people_view()
    assert view.people["111111"].name == "Alice" and view.ordered_people()[0].named
    assert service.person("alice").person_id == "111111"  # names are found in any case
    merged = edit(service, EditOp.RENAME, person="222222", name="ALICE")
    assert merged.person_id == "111111"  # folded into the person who had the name
    assert set(service.people_view().people) == {"111111"}


def test_merge_move_reject_and_not_a_face(service: PeopleService):
    edit(service, EditOp.MERGE, person="222222", target="111111")
    assert service.people_view().labels.resolve("222222") == "111111"
    moved = edit(service, EditOp.MOVE, face=BOB_FACE[:8], target="Carol")  # a name nobody has: a new person
    view = service.people_view()
    assert view.people[moved.person_id].name == "Carol" and view.faces[BOB_FACE].assigned_by == "user"
    rejected = edit(service, EditOp.REJECT, face=ALICE_FACES[0])
    assert rejected.edit.args == {"face_id": ALICE_FACES[0], "person_id": "111111", "reason": "not_this_person"}
    assert service.people_view().faces[ALICE_FACES[0]].unsorted_reason == "rejected"
    edit(service, EditOp.NOT_A_FACE, face=ALICE_FACES[1])
    view = service.people_view()
    assert ALICE_FACES[1] not in view.faces and ALICE_FACES[1] in view.not_faces
    back = edit(service, EditOp.MOVE, face=ALICE_FACES[1], target="Carol")  # a face said to be none can be placed
    assert back.person_id == moved.person_id and ALICE_FACES[1] in service.people_view().faces


def test_not_same_hides_a_suggestion_until_undone_and_approve_makes_a_face_the_users_word(service: PeopleService):
    edit(service, EditOp.NOT_SAME, person="111111", target="222222")
    assert LabelLog(service.layout.label_log).state().are_not_same("222222", "111111")
    assert service.people_view().suggestions == []
    undone = edit(service, EditOp.UNDO)
    assert (undone.undone.op, undone.person_id) == ("not_same", "111111")
    assert len(service.people_view().suggestions) == 1
    approved = edit(service, EditOp.APPROVE, face=ALICE_FACES[0])
    assert (approved.edit.op, approved.edit.args) == ("move", {"face_id": ALICE_FACES[0], "person_id": "111111"})
    assert service.people_view().faces[ALICE_FACES[0]].assigned_by == "user"
    edit(service, EditOp.MOVE, face=UNSORTED_FACE, person="111111")
    view = service.people_view()
    assert "blurred" not in view.unsorted() and UNSORTED_FACE in view.people["111111"].face_ids


def test_move_to_a_new_person(service: PeopleService):
    result = edit(service, EditOp.MOVE_TO_NEW_PERSON, face=ALICE_FACES[0])
    assert result.person_id not in {"111111", "222222"}
    assert service.people_view().people[result.person_id].face_ids == [ALICE_FACES[0]]


@pytest.mark.parametrize(
    "request_, error, words",
    [
        (EditRequest(EditOp.RENAME, person="999999", name="X"), NotFound, "no person"),
        (EditRequest(EditOp.RENAME, person="111111", name="   "), PeopleError, "empty"),
        (EditRequest(EditOp.RENAME, person="111111", name="x" * 500), PeopleError, "longer"),
        (EditRequest(EditOp.RENAME, person="111111", name="Unknown person 222222"), PeopleError, "unnamed"),
        (EditRequest(EditOp.RENAME, name="Alice"), PeopleError, "'person' is required"),
        (EditRequest(EditOp.MOVE, face="abcdef0123", target="111111"), NotFound, "no face"),
        (EditRequest(EditOp.MOVE, face=ALICE_FACES[0], target="Unknown person 999999"), NotFound, "no person"),
        (EditRequest(EditOp.REJECT, face="../../etc"), PeopleError, "face id"),
        (EditRequest(EditOp.REJECT, face="abc"), PeopleError, "face id"),
        (EditRequest(EditOp.REJECT, face=UNSORTED_FACE), PeopleError, "nothing to reject"),
        (EditRequest(EditOp.APPROVE, face=UNSORTED_FACE), PeopleError, "no person to confirm"),
        (EditRequest(EditOp.MERGE, person="111111", target="111111"), PeopleError, "the same person"),
        (EditRequest(EditOp.NOT_SAME, person="111111", target="111111"), PeopleError, "already the same"),
    ],
)
def test_a_bad_request_says_why_and_writes_nothing(service: PeopleService, request_, error, words):
    with pytest.raises(error, match=words):
        service.apply(request_)
    assert LabelLog(service.layout.label_log).read().edits == []


def test_without_people_edits_say_what_to_do_and_undo_says_nothing_to_undo(tmp_path: Path):
    service = PeopleService(DataLayout(tmp_path))
    with pytest.raises(PeopleError, match="materialize person_clusters"):
        service.apply(EditRequest(EditOp.RENAME, person="111111", name="Alice"))
    with pytest.raises(NothingToUndo):
        service.apply(EditRequest(EditOp.UNDO))
    assert not service.view().has_people


def test_every_op_has_a_handler(service: PeopleService):
    """The vocabulary and the dispatcher cannot drift apart: each op reaches a handler or is undo."""
    assert set(EditOp) == {*service._handlers, EditOp.UNDO}


def test_add_face_checks_the_photo_and_the_box_and_can_name_at_once(service: PeopleService):
    layout = service.layout
    photo_id = "0" + BOB_FACE
    layout.asset_dir("photos").mkdir(parents=True)
    pq.write_table(pa.table({"photo_id": [photo_id], "path": ["2019/IMG_1.jpg"], "width": [400], "height": [300],
                             "captured_at": pa.array([None], pa.timestamp("us"))}), layout.batch_file("photos", "b1"))
    layout.asset_dir("face_detections").mkdir(parents=True)
    pq.write_table(pa.table({"face_id": [BOB_FACE], "photo_id": [photo_id], "x": [10], "y": [10], "width": [100],
                             "height": [100]}), layout.batch_file("face_detections", "b1"))
    for fields, words in [
        ({"photo": "2019/nope.jpg", "box": "1,1,50,50"}, "no photo"),
        ({"photo": "2019/IMG_1.jpg", "box": "1,1,5,50"}, "at least 16"),
        ({"photo": "2019/IMG_1.jpg", "box": "380,1,50,50"}, "inside"),
        ({"photo": "2019/IMG_1.jpg", "box": "a,b,c,d"}, "four numbers"),
        ({"photo": "2019/IMG_1.jpg", "box": "15,15,100,95"}, "already there"),  # Bob's face, drawn again
    ]:
        with pytest.raises(PeopleError, match=words):
            edit(service, EditOp.ADD_FACE, **fields)
    assert not LabelLog(layout.label_log).read().edits
    added = edit(service, EditOp.ADD_FACE, photo=photo_id[:8], box="200 100 80 90", name="Alice")
    assert added.edit.args | {"face_id": None} == {"face_id": None, "photo_id": photo_id, "x": 200, "y": 100,
                                                  "width": 80, "height": 90, "person_id": added.person_id,
                                                  "name": "Alice"}
    view = service.view()
    assert [box.face_id for box in view.pending_faces(photo_id)] == [added.edit.args["face_id"]]
    assert view.labels.name_of(added.person_id) == "Alice"
    with pytest.raises(PeopleError, match="already there"):
        edit(service, EditOp.ADD_FACE, photo="2019/IMG_1.jpg", box="205,100,80,90")
