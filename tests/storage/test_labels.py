"""The label log: durable, atomic, concurrent appends; a torn line after a crash; what replaying each edit means."""

import json
import subprocess
import sys
from pathlib import Path

from photo_assets.analysis.labels import Op, RejectReason, replay
from photo_assets.storage import DataLayout, LabelLog

EDITS_PER_WRITER = 300
# Appends `count` edits to the log of the data folder given on the command line, as fast as it can.
WRITER = """
import sys
from pathlib import Path
from photo_assets.storage import DataLayout, LabelLog
log = LabelLog(DataLayout(Path(sys.argv[1])).label_log)
for number in range(int(sys.argv[3])):
    log.move(f"{sys.argv[2]}-face-{number:04d}", f"person-{sys.argv[2]}", name="x" * (number % 50))
"""


def test_edits_round_trip_in_order(tmp_path: Path):
    log = LabelLog(DataLayout(tmp_path).label_log)
    first = log.rename("111111", "Alice", ["f1", "f2"])
    second = log.move("f3", "111111")
    reading = log.read()
    assert [edit.edit_id for edit in reading.edits] == [first.edit_id, second.edit_id]
    assert reading.problems == []
    assert reading.edits[0].op is Op.RENAME and reading.edits[0].args["face_ids"] == ["f1", "f2"]
    assert DataLayout(tmp_path).label_log.read_bytes().count(b"\n") == 2


def test_two_processes_appending_at_once_lose_nothing(tmp_path: Path):
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), name, str(EDITS_PER_WRITER)])
        for name in ("a", "b")
    ]
    assert all(writer.wait(timeout=120) == 0 for writer in writers)
    reading = LabelLog(DataLayout(tmp_path).label_log).read()
    assert reading.problems == []
    assert len(reading.edits) == 2 * EDITS_PER_WRITER
    assert len({edit.edit_id for edit in reading.edits}) == 2 * EDITS_PER_WRITER
    for name in ("a", "b"):  # each writer's edits are all there, in the order it wrote them
        faces = [edit.args["face_id"] for edit in reading.edits if edit.args["face_id"].startswith(name)]
        assert faces == [f"{name}-face-{number:04d}" for number in range(EDITS_PER_WRITER)]


def test_a_torn_last_line_is_reported_and_the_next_edit_still_lands(tmp_path: Path):
    log = LabelLog(DataLayout(tmp_path).label_log)
    log.rename("111111", "Alice", ["f1"])
    whole = log.move("f2", "111111").to_line()
    with open(log.path, "ab") as handle:  # a crash part-way through writing an edit
        handle.write(whole[: len(whole) // 2])
    reading = log.read()
    assert len(reading.edits) == 2
    assert len(reading.problems) == 1 and "torn" in reading.problems[0]
    log.rename("222222", "Bob", ["f9"])
    reading = log.read()
    assert [edit.args.get("name") for edit in reading.edits] == ["Alice", None, "Bob"]
    assert len(reading.problems) == 1  # the torn fragment stays visible, and is skipped
    assert log.state().names == {"111111": "Alice", "222222": "Bob"}


def test_a_missing_log_is_an_empty_one(tmp_path: Path):
    log = LabelLog(DataLayout(tmp_path).label_log)
    assert log.read().edits == [] and log.state().names == {}
    assert log.undo() is None
    assert log.version() == "empty"


def test_rename_names_the_person_and_pins_the_faces_it_showed(tmp_path: Path):
    log = LabelLog(DataLayout(tmp_path).label_log)
    log.rename("111111", "Alice", ["f1", "f2"])
    state = log.state()
    assert state.names == {"111111": "Alice"}
    assert state.seeds() == {"f1": "111111", "f2": "111111"}


def test_renaming_to_a_name_in_use_merges_into_its_holder(tmp_path: Path):
    log = LabelLog(DataLayout(tmp_path).label_log)
    log.rename("111111", "Alice", ["f1"])
    log.rename("222222", " alice ", ["f2", "f3"])
    state = log.state()
    assert state.resolve("222222") == "111111"
    assert state.names == {"111111": "Alice"}
    assert state.seeds() == {"f1": "111111", "f2": "111111", "f3": "111111"}


def test_merge_keeps_the_target_and_carries_a_name_over_to_an_unnamed_target(tmp_path: Path):
    log = LabelLog(DataLayout(tmp_path).label_log)
    log.rename("111111", "Alice", ["f1"])
    log.merge("111111", "333333", ["f1", "f7"])
    state = log.state()
    assert state.resolve("111111") == "333333"
    assert state.names == {"333333": "Alice"}
    assert state.name_of("111111") == "Alice"
    assert set(state.seeds().values()) == {"333333"}


def test_reject_bars_the_person_even_through_later_merges_and_snapshots(tmp_path: Path):
    log = LabelLog(DataLayout(tmp_path).label_log)
    log.rename("111111", "Alice", ["f1", "f2"])
    log.reject("f2", "111111", RejectReason.NOT_THIS_PERSON)
    log.merge("444444", "111111", ["f2", "f5"])  # a stale snapshot that still lists f2
    state = log.state()
    assert "f2" not in state.seeds()
    assert state.forbidden() == {"f2": {"111111"}}
    log.move("f2", "111111")  # the user changes their mind explicitly: that wins
    assert log.state().seeds()["f2"] == "111111" and log.state().forbidden()["f2"] == set()


def test_not_a_face_removes_the_face_until_moved_back(tmp_path: Path):
    log = LabelLog(DataLayout(tmp_path).label_log)
    log.move("f1", "111111")
    log.reject("f1", None, RejectReason.NOT_A_FACE)
    assert log.state().not_faces == {"f1"} and "f1" not in log.state().seeds()
    log.move("f1", "111111")
    assert log.state().not_faces == set()


def test_undo_appends_a_record_and_steps_back_one_edit_at_a_time(tmp_path: Path):
    log = LabelLog(DataLayout(tmp_path).label_log)
    log.rename("111111", "Alice", ["f1"])
    rename_bob = log.rename("111111", "Bob", ["f1"])
    first_undo = log.undo()
    assert first_undo.op is Op.UNDO and first_undo.args["edit_id"] == rename_bob.edit_id
    assert log.state().names == {"111111": "Alice"}
    log.undo()
    assert log.state().names == {}
    assert log.undo() is None
    lines = [json.loads(line) for line in log.path.read_text().splitlines()]
    assert [line["op"] for line in lines] == ["rename", "rename", "undo", "undo"]  # nothing was deleted


def test_replay_of_the_same_edits_is_the_same_state(tmp_path: Path):
    log = LabelLog(DataLayout(tmp_path).label_log)
    log.rename("111111", "Alice", ["f1"])
    log.move("f4", "222222", name="Bob")
    log.reject("f1", "222222", RejectReason.NOT_THIS_PERSON)
    edits = log.read().edits
    assert replay(edits) == replay(list(edits))
    assert replay(edits).names == {"111111": "Alice", "222222": "Bob"}
    assert log.version().startswith("3:")


def test_imports_are_weaker_than_every_edit_and_never_undone(tmp_path: Path):
    log = LabelLog(DataLayout(tmp_path).label_log)
    log.imported("f1", "a.jpg.xmp", "Bob", "p1")
    log.imported("f2", "b.jpg.xmp", "bob ", "p2")
    state = log.state()
    bob = state.person_named("Bob")
    assert state.seeds() == {"f1": bob, "f2": bob} and state.imported_faces == {"f1", "f2"}
    # The user renames Bob's person, rejects f2 from it and places f3; a later import changes nothing of that.
    log.rename(bob, "Robert", ["f1"])
    log.reject("f2", bob, RejectReason.NOT_THIS_PERSON)
    log.move("f3", "222222", name="Carol")
    log.imported("f3", "c.jpg.xmp", "Bob", "p3")
    log.imported("f4", "d.jpg.xmp", "Bob", "p4")
    state = log.state()
    assert state.name_of(bob) == "Robert" and state.seeds()["f4"] == bob  # Bob's faces still meet in Robert
    assert "f2" not in state.seeds() and state.seeds()["f3"] == "222222"
    assert state.imported_faces == {"f4"}
    undone = log.undo()
    assert undone.args["op"] == "move"  # the last edit the user made, not the imports after it
    # Two names for one face from two sources: neither.
    log.imported("f5", "e.jpg.xmp", "Dan", "p5")
    log.imported("f5", "e.jpg", "Dave", "p5")
    log.imported("f4", "d.jpg.xmp", None, "p4")  # the region is gone from the file
    state = log.state()
    assert "f5" not in state.seeds() and "f4" not in state.seeds()


def test_a_face_added_by_hand_is_recorded_with_its_person(tmp_path: Path):
    log = LabelLog(DataLayout(tmp_path).label_log)
    log.add_face("f9", "p9", (10, 20, 30, 40), "333333", "Eve")
    state = log.state()
    assert state.added == {"f9": {"photo_id": "p9", "x": 10, "y": 20, "width": 30, "height": 40}}
    assert state.seeds() == {"f9": "333333"} and state.name_of("333333") == "Eve"
    log.undo()
    assert log.state().added == {} and log.state().seeds() == {}
