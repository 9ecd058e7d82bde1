"""`photo-assets people|status|--help`: every form a user types, in this process and as a command in a pipe.

People come from the real clustering of lfw_dev's embedded faces (the session's face sets), saved where
person_clusters writes them; edits go to a real label log and are reported to a throwaway Dagster instance.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from devtools.services import CLI_COMMAND
from devtools.services import photo_assets_cli as photo_assets_process
from photo_assets.analysis.labels import LabelState
from photo_assets.cli import main as photo_assets_cli
from photo_assets.storage import DataLayout, LabelLog
from photo_assets.storage.people import load_people_faces, save_people
from tests.analysis import test_people as people_tests

FIRST_IMPORT = people_tests.FIRST_IMPORT
members, person_of, run = people_tests.members, people_tests.person_of, people_tests.run
# Every command and group a user can ask for --help.
COMMANDS = [[], ["run"], ["status"], ["review"], ["people"], *(["people", verb] for verb in
            ("list", "show", "rename", "merge", "move", "reject", "undo", "suggestions",
                                                  "unsorted", "not-same"))]


@pytest.fixture
def people_data(lfw, tmp_path: Path) -> tuple[Path, list[str]]:
    """A data folder holding person_clusters' output for 300 lfw_dev faces; returns it and the people, largest first."""
    result = run(lfw, np.arange(FIRST_IMPORT), LabelState())
    save_people(result, DataLayout(tmp_path / "data"))
    return tmp_path / "data", result.people["person_id"].to_pylist()


def people_command(data: Path, capsys, *argv: str) -> tuple[int, str]:
    """`photo-assets people ...` in this process (`--data` after the verb, as a user may type it)."""
    status = photo_assets_cli(["people", *argv, "--data", str(data)])
    captured = capsys.readouterr()
    return status, captured.out + captured.err


def test_people_command_lists_renames_merges_moves_rejects_and_undoes(lfw, tmp_path: Path, capsys, dagster_home_dir):
    result = run(lfw, np.arange(FIRST_IMPORT), LabelState())
    save_people(result, DataLayout(tmp_path))
    biggest, second = result.people["person_id"].to_pylist()[:2]

    def command(*argv: str) -> tuple[int, str]:
        return people_command(tmp_path, capsys, *argv)

    status, listing = command("list", "--min-faces", "2")
    assert status == 0 and f"Unknown person {biggest}" in listing
    assert command("rename", f"Unknown person {biggest}", "Alice")[0] == 0
    status, listing = command("list")
    assert "Alice" in listing.splitlines()[1]  # named people first, and at once, before person_clusters re-runs
    status, shown = command("show", "alice")
    assert status == 0 and f"Alice ({biggest})" in shown
    assert command("merge", second, "Alice")[0] == 0
    assert LabelLog(DataLayout(tmp_path).label_log).state().resolve(second) == biggest
    face = members(result, second)[0]
    assert command("move", face[:8], "Bob")[0] == 0  # a new name: a new person
    assert command("reject", members(result, biggest)[0])[0] == 0
    assert command("move", face, "--new")[0] == 0
    assert command("undo")[0] == 0
    assert command("show", "nobody")[0] == 2
    assert command("rename", "Alice", "Unknown person 123456")[0] == 2
    state = LabelLog(DataLayout(tmp_path).label_log).state()
    assert state.names == {biggest: "Alice", state.seeds()[face]: "Bob"}
    assert state.forbidden()[members(result, biggest)[0]] == {biggest}
    edits = LabelLog(DataLayout(tmp_path).label_log).read().edits
    assert [edit.op for edit in edits] == ["rename", "merge", "move", "reject", "move", "undo"]
    rerun = run(lfw, np.arange(FIRST_IMPORT), state, load_people_faces(DataLayout(tmp_path)))
    assert person_of(rerun)[face] == state.seeds()[face]
    assert "Bob" in rerun.people["name"].to_pylist()


def test_people_command_without_clusters_says_what_to_do(tmp_path: Path, capsys):
    status, output = people_command(tmp_path, capsys, "list")
    assert status == 2
    assert "person_clusters" in output
    assert people_command(tmp_path, capsys, "undo")[0] == 0  # the log alone is enough to undo (nothing here)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda words: " ".join(words) or "photo-assets")
def test_every_command_has_help(command: list[str], capsys):
    assert photo_assets_cli([*command, "--help"]) == 0
    assert "Usage: photo-assets" in capsys.readouterr().out


@pytest.mark.parametrize(
    "where", ["before the command", "after the group", "after the verb"],
)
def test_data_is_accepted_before_or_after_the_subcommand_and_its_verb(people_data, capsys, where: str):
    data, people = people_data
    flag = ["--data", str(data)]
    argv = {
        "before the command": [*flag, "people", "list", "--json"],
        "after the group": ["people", *flag, "list", "--json"],
        "after the verb": ["people", "list", "--json", *flag],
    }[where]
    assert photo_assets_cli(argv) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["person_id"] for row in listed] == people  # all unnamed: by size, as person_clusters sorts them


def test_show_json_lists_the_persons_faces(people_data, capsys):
    data, people = people_data
    assert photo_assets_cli(["people", "show", people[0], "--json", "--data", str(data)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    faces = load_people_faces(DataLayout(data))
    expected = {row["face_id"] for row in faces.to_pylist() if row["person_id"] == people[0]}
    assert {row["face_id"] for row in rows} == expected and all(row["person_id"] == people[0] for row in rows)


@pytest.mark.parametrize("argv", [["show", "nobody"], ["move", "ffffffffff", "Alice"], ["rename", "424242", "Bob"]])
def test_an_unknown_person_or_face_is_one_line_and_a_failure(people_data, argv: list[str]):
    data, _ = people_data
    done = photo_assets_process(dict(os.environ), "people", *argv, "--data", str(data))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not DataLayout(data).label_log.exists()  # nothing was recorded


def test_output_into_a_closed_pipe_ends_quietly(people_data):
    data, _ = people_data
    listing = subprocess.Popen([*CLI_COMMAND, "people", "list", "--data", str(data)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    listing.stdout.close()  # `| head -0`: the reader is gone before the first line is written
    _, errors = listing.communicate(timeout=120)
    assert errors == b"", errors  # no traceback, no "Exception ignored" at exit
    assert listing.returncode == 1  # click's convention for a reader that went away


def test_status_json_reports_the_data_folder(people_data, capsys, dagster_home_dir):
    data, people = people_data
    assert photo_assets_cli(["status", "--json", "--data", str(data)]) == 0
    (report,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert report["data_dir"] == str(data.resolve())
    assert report["people"] == {"total": len(people), "named": 0, "unknown": len(people)}
    assert report["assets"]["person_clusters"]["materialized"] is False  # this instance never ran it
