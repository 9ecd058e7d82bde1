"""The people review pages as a user sees them: a real `photo-assets run` on portraits from ../shared, the review
server (uvicorn) on a free loopback port, and Debian's Chromium driven by Playwright. Every action is checked in the
label log (the one durable record), in the page after a reload, and — last — in person_clusters after its next
materialization.

The library: deepface's portraits of 13 people, and lfw_train photos whose background faces the quality gate keeps
unsorted; the merge suggestions and unsorted faces the pages show are person_clusters' own.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from devtools.library import copy_portraits
from devtools.regions import sideways_copy
from devtools.services import (
    PROJECT_DIR,
    SQLITE_HOME_TEMPLATE,
    dagster_home,
    photo_assets_cli,
)
from photo_assets.people import PeopleService
from photo_assets.storage import DataLayout, LabelLog
from tests.review.browser import screenshot, served

pytestmark = pytest.mark.slow  # a `photo-assets run` subprocess and a browser

RUN_TIMEOUT_S = 1200
TOKEN = "test-token-0123456789"
NEW_NAME = "Ada Lovelace"
# lfw_train photos in the library: enough for background faces the quality gate keeps unsorted.
LFW_PHOTOS = 60


# -- the library, built once ----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def review_library(shared_dir, tmp_path_factory):
    """Portraits of 13 people from deepface's test set and LFW_PHOTOS lfw_train photos after a real
    `photo-assets run`."""
    root = tmp_path_factory.mktemp("review")
    source = shared_dir / "faces" / "deepface"
    people = sorted(json.loads((source / "identities.json").read_text()))
    copy_portraits(source, root / "library", people, slice(None))
    for photo in sorted((shared_dir / "faces" / "lfw_train").glob("*/*.jpg"))[:LFW_PHOTOS]:
        target = root / "library" / "lfw_train" / photo.parent.name / photo.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(photo, target)
    home = dagster_home(root / "home", SQLITE_HOME_TEMPLATE)
    env = os.environ | {"DAGSTER_HOME": str(home), "PYTHONPATH": str(PROJECT_DIR)}
    result = photo_assets_cli(env, "run", "--library", str(root / "library"), "--data", str(root / "data"),
                              timeout=RUN_TIMEOUT_S)
    assert result.returncode == 0, result.stdout + result.stderr
    layout = DataLayout(root / "data")
    assert pq.read_table(layout.suggestions).num_rows, "person_clusters wrote no suggestions to review"
    assert pq.read_table(layout.people_faces)["unsorted_reason"].null_count < pq.read_table(layout.people_faces).num_rows
    return root / "library", root / "data", home


@pytest.fixture
def review_copy(review_library, tmp_path):
    """A private copy of the baseline (library, data, instance) for one test to edit: every test stands alone."""
    library, data, home = review_library
    shutil.copytree(library.parent, tmp_path / "copy", symlinks=True)
    root = tmp_path / "copy"
    return root / library.name, root / data.name, root / home.name


@pytest.fixture
def review_server(review_copy):
    library, data, home = review_copy
    with served(data, library, TOKEN, dagster_home=home) as url:  # edits reported to the run's instance
        yield url, data


def edits(data: Path) -> list:
    return LabelLog(DataLayout(data).label_log).read().edits


def api(url: str, path: str):
    with urllib.request.urlopen(url + path) as response:
        return json.loads(response.read())


def request(url: str, path: str, method: str = "GET", body: bytes | None = None, headers: dict | None = None):
    """(status, parsed JSON or raw bytes) of one HTTP request, errors included."""
    prepared = urllib.request.Request(url + path, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(prepared) as response:
            status, payload = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, payload = error.code, error.read()
    try:
        return status, json.loads(payload)
    except ValueError:
        return status, payload


def post_edit(url: str, fields: dict, origin: str | None = "self", token: str | None = TOKEN, host: str | None = None):
    headers = {"Content-Type": "application/json"}
    if origin:
        headers["Origin"] = url if origin == "self" else origin
    if token:
        headers["X-Review-Token"] = token
    if host:
        headers["Host"] = host
    return request(url, "/api/edits", "POST", json.dumps(fields).encode(), headers)


def named_person(url: str) -> dict:
    """The largest person, named NEW_NAME through the API (as the People page's rename does)."""
    person = api(url, "/api/people")["people"][0]
    status, body = post_edit(url, {"op": "rename", "person": person["person_id"], "name": NEW_NAME})
    assert status == 200, body
    return next(p for p in api(url, "/api/people")["people"] if p["name"] == NEW_NAME)


def wait_for_edit_count(data: Path, count: int, timeout_s: float = 15) -> list:
    deadline = time.monotonic() + timeout_s
    while len(edits(data)) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    return edits(data)


# -- security and bad input: nothing changes ------------------------------------------------------------------------


def test_review_refuses_foreign_origin_missing_token_foreign_host_and_paths(review_server):
    url, data = review_server
    people = api(url, "/api/people")["people"]
    person = people[0]["person_id"]
    rename = {"op": "rename", "person": person, "name": "Mallory"}
    before = edits(data)
    status, body = post_edit(url, rename, origin="http://evil.example")
    assert status == 403 and "origin" in body["error"]
    status, body = post_edit(url, rename, token=None)
    assert status == 403 and "token" in body["error"]
    status, _ = post_edit(url, rename, token="wrong")
    assert status == 403
    status, _ = post_edit(url, rename, origin=None)  # neither Origin nor Referer
    assert status == 403
    status, body = post_edit(url, rename, host="rebind.example:80")
    assert status == 400 and "Host" in body["error"]
    status, _ = request(url, "/api/people", headers={"Host": f"attacker.example:{url.rsplit(':', 1)[1]}"})
    assert status == 400
    assert edits(data) == before
    face = people[0]["representative_face_id"]
    assert request(url, f"/faces/{face}.jpg")[0] == 200
    for path in ["/photos/..%2F..%2F..%2Fetc%2Fpasswd.jpg", "/faces/%2Fetc%2Fpasswd.jpg", "/photos/etc/passwd.jpg",
                 "/faces/../../etc/passwd", "/static/../app.py", "/static/..%2Fapp.py", "/photo/%2Fetc%2Fpasswd",
                 f"/faces/{face}.jpg/..%2F..%2Fdata.py", "/faces/zz-not-hex.jpg"]:  # fmt: skip
        status, _ = request(url, path)
        assert status == 404, path


# -- the pages, in a real browser -----------------------------------------------------------------------------------


def test_review_rename_a_person_by_typing(review_server, page):
    url, data = review_server
    target = api(url, "/api/people")["people"][0]
    count = len(edits(data))
    page.goto(url + "/")
    screenshot(page, "people-before")
    card = page.locator(f".card[data-person='{target['person_id']}']")
    card.locator("input.rename").fill(NEW_NAME)
    with page.expect_navigation():  # the page reloads with the edit applied
        card.locator("input.rename").press("Enter")
    log = wait_for_edit_count(data, count + 1)
    assert (log[-1].op, log[-1].args["person_id"], log[-1].args["name"]) == ("rename", target["person_id"], NEW_NAME)
    page.wait_for_load_state("load")
    page.reload()
    first = page.locator(".card").first
    assert first.get_attribute("data-person") == target["person_id"]  # named people first
    assert first.locator("input.rename").input_value() == NEW_NAME
    page.locator("#filter").fill("ada")
    assert page.locator(".card:visible").count() == 1
    page.locator("#filter").fill("")
    screenshot(page, "people")


def test_review_merge_two_people_through_a_suggestion_with_y(review_server, page):
    url, data = review_server
    suggestion = api(url, "/api/suggestions")["suggestions"][0]
    a, b = suggestion["person_id"], suggestion["other_person_id"]
    count = len(edits(data))
    page.goto(url + "/suggestions")
    page.locator(".pair.current").wait_for()
    screenshot(page, "suggestions")
    with page.expect_navigation():
        page.keyboard.press("y")
    log = wait_for_edit_count(data, count + 1)
    assert log[-1].op == "merge" and {log[-1].args["source"], log[-1].args["target"]} == {a, b}
    page.wait_for_load_state("load")
    page.reload()
    assert page.locator(f".pair[data-person='{a}'][data-other='{b}']").count() == 0
    merged = api(url, f"/api/people/{log[-1].args['target']}")
    assert merged["person_id"] == log[-1].args["target"]
    survivor_ids = {p["person_id"] for p in api(url, "/api/people")["people"]}
    assert log[-1].args["source"] not in survivor_ids
    screenshot(page, "suggestions-after")


def test_review_reject_a_face_and_move_another_from_the_person_page(review_server, page):
    url, data = review_server
    named = named_person(url)
    other = next(p for p in api(url, "/api/people")["people"] if not p["named"] and p["faces"] >= 3)
    faces = [f["face_id"] for f in api(url, f"/api/people/{other['person_id']}")["face_list"]]
    count = len(edits(data))
    page.goto(f"{url}/people/{other['person_id']}")
    page.locator("#faces .face").first.wait_for()
    screenshot(page, "person")
    # The first face (most doubtful): "not this person".
    page.locator(f".face[data-face='{faces[0]}'] img").click()
    with page.expect_navigation():
        page.locator("#reject").click()
    log = wait_for_edit_count(data, count + 1)
    assert (log[-1].op, log[-1].args["face_id"], log[-1].args["person_id"]) == ("reject", faces[0], other["person_id"])
    page.wait_for_load_state("load")
    page.locator("#faces .face").first.wait_for()
    assert page.locator(f".face[data-face='{faces[0]}']").count() == 0
    # The next face, with the keyboard: focus, Space selects, then "move to…" a name from the autocomplete.
    page.locator(f".face[data-face='{faces[1]}']").focus()
    page.keyboard.press(" ")
    page.locator("#move-target").fill(NEW_NAME)
    with page.expect_navigation():
        page.locator("#move").click()
    log = wait_for_edit_count(data, count + 2)
    assert (log[-1].op, log[-1].args["face_id"], log[-1].args["person_id"]) == ("move", faces[1], named["person_id"])
    page.wait_for_load_state("load")
    page.reload()
    shown = page.locator("#faces .face").evaluate_all("all => all.map(f => f.dataset.face)")
    assert faces[0] not in shown and faces[1] not in shown and set(faces[2:]) <= set(shown)
    assert faces[1] in [f["face_id"] for f in api(url, f"/api/people/{named['person_id']}")["face_list"]]
    # Shift-click selects a range.
    page.locator("#faces .face").nth(0).click()
    page.locator("#faces .face").nth(1).click(modifiers=["Shift"])
    assert page.locator("#faces .face.selected").count() == 2
    screenshot(page, "person-selected")


def test_review_assign_an_unsorted_face(review_server, page):
    url, data = review_server
    named_person(url)
    count = len(edits(data))
    page.goto(url + "/unsorted")
    face = page.locator(".reason[data-reason='blurred'] .face").first
    face.wait_for()
    screenshot(page, "unsorted")
    face_id = face.get_attribute("data-face")
    face.locator("input").fill(NEW_NAME)
    with page.expect_navigation():
        face.locator("input").press("Enter")
    log = wait_for_edit_count(data, count + 1)
    assert (log[-1].op, log[-1].args["face_id"]) == ("move", face_id)
    page.wait_for_load_state("load")
    page.reload()
    assert page.locator(f".face[data-face='{face_id}']").count() == 0
    named = next(p for p in api(url, "/api/people")["people"] if p["name"] == NEW_NAME)
    assert face_id in [f["face_id"] for f in api(url, f"/api/people/{named['person_id']}")["face_list"]]
    screenshot(page, "unsorted-after")


def approvable_face(url: str) -> dict:
    for person in api(url, "/api/people")["people"]:
        for face in api(url, f"/api/people/{person['person_id']}")["face_list"]:
            if face["assigned_by"] != "user":
                return face
    raise AssertionError("no automatically placed face left")


def test_review_approve_a_box_on_a_photo_page_then_undo(review_server, page):
    url, data = review_server
    face = approvable_face(url)
    count = len(edits(data))
    page.goto(f"{url}/photo/{face['photo_id']}")
    item = page.locator(f".boxes li[data-face='{face['face_id']}']")
    item.wait_for()
    page.locator(f".box[data-face='{face['face_id']}']").wait_for()
    page.wait_for_function("document.querySelector('figure.photo img').complete")
    screenshot(page, "photo")
    with page.expect_navigation():
        item.locator("button.approve").click()
    log = wait_for_edit_count(data, count + 1)
    assert (log[-1].op, log[-1].args) == ("move", {"face_id": face["face_id"], "person_id": face["person_id"]})
    page.wait_for_load_state("load")
    page.reload()
    assert page.locator(f".box[data-face='{face['face_id']}']").get_attribute("class").split() == ["box", "confirmed"]
    assert item.locator("button.approve").count() == 0
    screenshot(page, "photo-approved")
    with page.expect_navigation():
        page.locator("#undo").click()
    log = wait_for_edit_count(data, count + 2)
    assert log[-1].op == "undo" and log[-1].args["edit_id"] == log[-2].edit_id
    assert "Undid the latest move" in page.locator("#status").inner_text()  # said once, after the undo's reload
    screenshot(page, "photo-undone-message")
    page.reload()
    assert item.locator("button.approve").count() == 1
    screenshot(page, "photo-undone")


def test_review_typing_a_name_someone_has_merges_after_a_confirm(review_server, page):
    url, data = review_server
    named = named_person(url)
    other = next(p for p in api(url, "/api/people")["people"] if not p["named"])
    dialogs = []
    page.on("dialog", lambda dialog: dialogs.append(dialog.message))
    count = len(edits(data))
    page.goto(url + "/")
    field = page.locator(f".card[data-person='{other['person_id']}'] input.rename")
    field.fill(NEW_NAME.upper())  # names are compared without regard to case
    with page.expect_navigation():
        field.press("Enter")
    assert dialogs and NEW_NAME in dialogs[0] and "Merge" in dialogs[0]
    log = wait_for_edit_count(data, count + 1)
    assert (log[-1].op, log[-1].args["person_id"]) == ("rename", other["person_id"])
    page.reload()
    assert page.locator(f".card[data-person='{other['person_id']}']").count() == 0
    card = page.locator(f".card[data-person='{named['person_id']}']")
    assert card.locator(".meta").inner_text().startswith(f"{named['faces'] + other['faces']} faces")
    screenshot(page, "people-after-merge-by-name")


def test_review_draw_a_missed_face_on_a_photo_page(review_server, review_copy, page, shared_dir):
    """A photo stored sideways (a scan), where the detector finds no face: the user drags a box around the face on
    its page and names it; the next `photo-assets run` embeds it and it is in that person."""
    url, data = review_server
    library, _, home = review_copy
    box = sideways_copy(shared_dir / "faces" / "deepface" / "img59.jpg", library / "scan.jpg")
    env = os.environ | {"DAGSTER_HOME": str(home), "PYTHONPATH": str(PROJECT_DIR)}
    result = photo_assets_cli(env, "run", "--library", str(library), "--data", str(data), timeout=RUN_TIMEOUT_S)
    assert result.returncode == 0, result.stdout + result.stderr
    photo = next(p for p in PeopleService(DataLayout(data)).view().photos.values() if p.path == "scan.jpg")
    assert not PeopleService(DataLayout(data)).view().photo_boxes.get(photo.photo_id)
    count = len(edits(data))
    page.goto(f"{url}/photo/{photo.photo_id}")
    page.wait_for_function("document.querySelector('figure.photo img').complete")
    page.locator("#draw-face").click()
    figure = page.locator("figure.photo").bounding_box()
    scale = figure["width"] / photo.width
    x, y, width, height = box
    page.mouse.move(figure["x"] + x * scale, figure["y"] + y * scale)
    page.mouse.down()
    page.mouse.move(figure["x"] + (x + width / 2) * scale, figure["y"] + (y + height / 2) * scale, steps=5)
    page.mouse.move(figure["x"] + (x + width) * scale, figure["y"] + (y + height) * scale, steps=5)
    page.mouse.up()
    page.locator("#new-face input").fill(NEW_NAME)
    screenshot(page, "photo-drawn")
    with page.expect_navigation():
        page.locator("#new-face button[type=submit]").click()
    log = wait_for_edit_count(data, count + 1)
    drawn = log[-1]
    assert drawn.op == "add_face" and drawn.args["photo_id"] == photo.photo_id and drawn.args["name"] == NEW_NAME
    tolerance = 2 / scale + 1  # a couple of screen pixels
    assert all(abs(drawn.args[key] - value) <= tolerance
               for key, value in zip(("x", "y", "width", "height"), box)), (drawn.args, box)
    page.reload()
    assert page.locator(f".box.pending[data-pending='{drawn.args['face_id']}']").count() == 1
    result = photo_assets_cli(env, "run", "--library", str(library), "--data", str(data), timeout=RUN_TIMEOUT_S)
    assert result.returncode == 0, result.stdout + result.stderr
    faces = {row["face_id"]: row for row in pq.read_table(DataLayout(data).people_faces).to_pylist()}
    assert faces[drawn.args["face_id"]]["person_name"] == NEW_NAME
    page.reload()
    assert page.locator(f".box[data-face='{drawn.args['face_id']}']").count() == 1
    screenshot(page, "photo-drawn-recognised")


def test_review_edits_are_reported_and_person_clusters_follows_them(review_server, review_copy):
    """Edits made through the pages' API (a rename, a merge, a reject, a move, a rename to a name someone has) are
    in the label log, Dagster saw them on label_log, and the next person_clusters keeps every one of them."""
    import dagster as dg

    url, data = review_server
    library, _, home = review_copy
    named = named_person(url)["person_id"]
    suggestion = next(s for s in api(url, "/api/suggestions")["suggestions"] if named not in
                      (s["person_id"], s["other_person_id"]))  # fmt: skip
    assert post_edit(url, {"op": "merge", "person": suggestion["person_id"],
                           "target": suggestion["other_person_id"]})[0] == 200  # fmt: skip
    other = next(p for p in api(url, "/api/people")["people"] if not p["named"] and p["faces"] >= 3)
    faces = [f["face_id"] for f in api(url, f"/api/people/{other['person_id']}")["face_list"]]
    assert post_edit(url, {"op": "reject", "face": faces[0]})[0] == 200
    assert post_edit(url, {"op": "move", "face": faces[1], "target": NEW_NAME})[0] == 200
    last = next(p for p in api(url, "/api/people")["people"] if not p["named"])
    assert post_edit(url, {"op": "rename", "person": last["person_id"], "name": NEW_NAME.upper()})[0] == 200
    log = edits(data)
    assert [edit.op for edit in log] == ["rename", "merge", "reject", "move", "rename"]
    instance = dg.DagsterInstance.from_config(str(home))
    observations = instance.fetch_observations(dg.AssetKey("label_log"), limit=1).records
    assert observations[0].asset_observation.tags["dagster/data_version"] == LabelLog(DataLayout(data).label_log).version()
    env = os.environ | {"DAGSTER_HOME": str(home), "PYTHONPATH": str(PROJECT_DIR),
                        "PHOTO_ASSETS_LIBRARY": str(library), "PHOTO_ASSETS_DATA": str(data)}  # fmt: skip
    script = ("from photo_assets.definitions import defs; import dagster as dg; "
              "job = defs.resolve_job_def('update_people'); "
              "r = job.execute_in_process(instance=dg.DagsterInstance.get(), raise_on_error=False); "
              "raise SystemExit(0 if r.success else 1)")  # fmt: skip
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                            timeout=RUN_TIMEOUT_S)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    latest = instance.get_latest_materialization_event(dg.AssetKey("person_clusters")).asset_materialization
    assert latest.metadata["review"].url == "http://127.0.0.1:3001/"  # the Dagster UI links to these pages
    faces_now = pq.read_table(DataLayout(data).people_faces).to_pylist()
    person_of = {row["face_id"]: row["person_id"] for row in faces_now}
    rename, merge, reject, move, merged_by_name = log
    assert {row["person_name"] for row in faces_now if row["person_id"] == named} == {NEW_NAME}
    assert person_of[move.args["face_id"]] == named
    assert person_of[reject.args["face_id"]] != reject.args["person_id"]
    assert merge.args["source"] not in person_of.values()
    assert merged_by_name.args["person_id"] not in person_of.values()  # typed the name someone had: folded in
    assert all(person_of[face_id] == named for face_id in merged_by_name.args["face_ids"])
    status, body = request(url, f"/api/people/{named}")
    assert status == 200 and body["name"] == NEW_NAME
