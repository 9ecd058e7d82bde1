"""The review server's routes in-process (Starlette's TestClient): every page renders from the one people view, the
API answers and edits through the people service, images are cut from a real photo, and the guard refuses what it
must. What only a browser shows (typing, keys, dialogs) is tests/review/test_review.py."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from starlette.testclient import TestClient

from devtools.library import write_photo
from photo_assets.analysis.catalog import CATALOG_SCHEMA
from photo_assets.analysis.regions import ONE_NAME_ON_TWO_FACES
from photo_assets.review import browse
from photo_assets.review.app import create_app
from photo_assets.storage import DataLayout, DataStore, LabelLog
from photo_assets.storage.layout import COLOR_HISTOGRAMS, FACE_DETECTIONS, LOCATIONS, OBJECT_DETECTIONS, PHOTOS
from tests.people.test_service import ALICE_FACES, BOB_FACE, UNSORTED_FACE, write_people

TOKEN = "route-test-token"
ORIGIN = "http://127.0.0.1:3001"
PHOTO_SIZE = (320, 240)


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    """A data folder with four faces in four real photos of a library, and the app over it."""
    layout = DataLayout(tmp_path / "data")
    write_people(layout)
    store = DataStore(layout)
    photo_ids = ["0" + face for face in (*ALICE_FACES, BOB_FACE, UNSORTED_FACE)]
    for index, photo_id in enumerate(photo_ids):
        write_photo(tmp_path / "library" / f"photo_{index}.jpg", seed=index, size=PHOTO_SIZE)
    store.write_batch(PHOTOS, "b1", pa.table({
        "photo_id": photo_ids, "path": [f"photo_{index}.jpg" for index in range(4)], "width": [PHOTO_SIZE[0]] * 4,
        "height": [PHOTO_SIZE[1]] * 4, "captured_at": pa.array([None] * 4, pa.timestamp("us")),
    }))  # fmt: skip
    store.write_batch(FACE_DETECTIONS, "b1", pa.table({
        "face_id": [photo_id[1:] for photo_id in photo_ids], "photo_id": photo_ids, "x": [100] * 4, "y": [60] * 4,
        "width": [80] * 4, "height": [100] * 4,
    }))  # fmt: skip
    app = create_app(layout.root, tmp_path / "library", token=TOKEN, host="127.0.0.1", port=3001)
    return TestClient(app, base_url=ORIGIN)


def post_edit(client: TestClient, body, headers: dict | None = None):
    sent = {"Origin": ORIGIN, "X-Review-Token": TOKEN} | (headers or {})
    return client.post("/api/edits", json=body, headers={k: v for k, v in sent.items() if v is not None})


def edits(client: TestClient) -> list:
    return LabelLog(client.app.state.review.service.layout.label_log).read().edits


def test_every_page_renders_the_people_view(client: TestClient):
    people = client.get("/")
    assert people.status_code == 200 and people.headers["cache-control"] == "no-store"
    assert 'data-person="111111"' in people.text and 'data-person="222222"' in people.text
    assert f'content="{TOKEN}"' in people.text  # the token the page's script sends with each edit
    person = client.get("/people/111111")
    assert person.status_code == 200 and ALICE_FACES[0] in person.text and BOB_FACE not in person.text.split("<main>")[1].split("suggest")[0]
    photo = client.get(f"/photo/0{ALICE_FACES[0]}")
    assert photo.status_code == 200 and f'data-face="{ALICE_FACES[0]}"' in photo.text
    assert "222222" in client.get("/suggestions").text
    unsorted = client.get("/unsorted")
    assert 'data-reason="blurred"' in unsorted.text and UNSORTED_FACE in unsorted.text
    assert client.get("/people/999999").status_code == 404
    assert client.get("/photo/" + "0" * 20).status_code == 404


def test_a_merged_person_redirects_to_the_one_it_was_merged_into(client: TestClient):
    assert post_edit(client, {"op": "merge", "person": "222222", "target": "111111"}).status_code == 200
    moved = client.get("/people/222222", follow_redirects=False)
    assert moved.status_code == 303 and moved.headers["location"] == "/people/111111"


def test_the_api_reads_the_view_and_edits_through_the_service(client: TestClient):
    listed = client.get("/api/people").json()["people"]
    assert [(p["person_id"], p["faces"]) for p in listed] == [("111111", 2), ("222222", 1)]
    renamed = post_edit(client, {"op": "rename", "person": "222222", "name": "Bob"})
    assert renamed.status_code == 200 and renamed.json()["person_id"] == "222222"
    assert client.get("/api/people").json()["people"][0]["name"] == "Bob"  # named first, at once
    person = client.get("/api/people/222222").json()
    assert [f["face_id"] for f in person["face_list"]] == [BOB_FACE]
    assert client.get("/api/suggestions").json()["suggestions"][0]["other_name"] == "Bob"
    assert "Is this Bob?" in client.get("/suggestions").text
    assert [f["face_id"] for f in client.get("/api/unsorted").json()["blurred"]] == [UNSORTED_FACE]
    approved = post_edit(client, {"op": "approve", "face": ALICE_FACES[0]})
    assert approved.json()["op"] == "approve" and approved.json()["args"]["person_id"] == "111111"
    undone = post_edit(client, {"op": "undo"})
    assert undone.json()["undone_op"] == "move"
    assert [edit.op for edit in edits(client)] == ["rename", "move", "undo"]


@pytest.mark.parametrize(
    "body, status, words",
    [
        ({"op": "rename", "person": "999999999", "name": "X"}, 404, "no person"),
        ({"op": "rename", "person": "111111", "name": "   "}, 400, "empty"),
        ({"op": "rename", "person": "111111", "name": "x" * 500}, 400, "longer"),
        ({"op": "rename", "person": "111111", "name": 7}, 400, "must be a string"),
        ({"op": "move", "face": "abcdef0123", "target": "111111"}, 404, "no face"),
        ({"op": "reject", "face": "../../etc"}, 400, "face id"),
        ({"op": "explode"}, 400, "unknown op"),
        (["rename"], 400, "JSON object"),
        ({"op": "undo"}, 409, "nothing to undo"),
    ],
)
def test_bad_edits_get_a_clear_4xx_and_the_log_is_untouched(client: TestClient, body, status, words):
    answer = post_edit(client, body)
    assert answer.status_code == status and words in answer.json()["error"]
    assert edits(client) == []


def test_the_guard_refuses_foreign_origins_missing_tokens_and_foreign_hosts(client: TestClient):
    rename = {"op": "rename", "person": "111111", "name": "Mallory"}
    assert "origin" in post_edit(client, rename, {"Origin": "http://evil.example"}).json()["error"]
    assert "token" in post_edit(client, rename, {"X-Review-Token": None}).json()["error"]
    assert post_edit(client, rename, {"X-Review-Token": "wrong"}).status_code == 403
    assert post_edit(client, rename, {"Origin": None}).status_code == 403  # neither Origin nor Referer
    assert post_edit(client, rename, {"Origin": None, "Referer": ORIGIN + "/people/111111"}).status_code == 200
    assert client.get("/api/people", headers={"Host": "attacker.example:3001"}).status_code == 400
    not_json = client.post("/api/edits", content=b"{not json", headers={"Origin": ORIGIN, "X-Review-Token": TOKEN})
    assert not_json.status_code == 400 and "JSON" in not_json.json()["error"]
    assert [edit.args["name"] for edit in edits(client)] == ["Mallory"]  # only the same-origin one


def test_images_are_cut_from_the_library_once_and_nothing_is_served_by_path(client: TestClient):
    face = client.get(f"/faces/{ALICE_FACES[0]}.jpg")
    assert face.status_code == 200 and face.headers["content-type"] == "image/jpeg" and face.content[:2] == b"\xff\xd8"
    layout = client.app.state.review.service.layout
    assert layout.face_crop(ALICE_FACES[0]).exists()  # cut once, answered from the file after
    photo = client.get(f"/photos/0{ALICE_FACES[0]}.jpg")
    assert photo.status_code == 200 and layout.photo_preview(f"0{ALICE_FACES[0]}").exists()
    for path in ["/photos/..%2F..%2F..%2Fetc%2Fpasswd.jpg", "/faces/%2Fetc%2Fpasswd.jpg", "/photos/etc/passwd.jpg",
                 "/static/../app.py", "/static/..%2Fapp.py", "/photo/%2Fetc%2Fpasswd", "/faces/zz-not-hex.jpg",
                 f"/faces/{'e' * 20}.jpg"]:  # fmt: skip
        assert client.get(path).status_code == 404, path


def test_the_photo_page_lists_its_objects_and_the_unsorted_page_its_conflicts(client: TestClient):
    layout = client.app.state.review.service.layout
    photo_id = "0" + ALICE_FACES[0]
    DataStore(layout).write_batch(OBJECT_DETECTIONS, "b1", pa.table({
        "photo_id": [photo_id, photo_id], "label": ["dog", "frisbee"], "score": pa.array([0.8, 0.5], pa.float32()),
        "x": [10, 200], "y": [20, 30], "width": [100, 40], "height": [90, 40], "version": ["v", "v"],
    }))  # fmt: skip
    layout.added_faces_dir.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist([{"kind": ONE_NAME_ON_TWO_FACES, "photo_id": photo_id, "names": ["Gus"],
                                          "face_ids": [ALICE_FACES[0], BOB_FACE], "sources": ["photo_0.jpg.xmp"]}]),
                   layout.region_conflicts)
    page = client.get(f"/photo/{photo_id}").text
    assert page.index('data-object="1"') < page.index(">dog<") < page.index(">frisbee<")  # strongest first
    assert 'class="object-box" data-object="2"' in page
    unsorted = client.get("/unsorted").text
    assert "one name to two faces" in unsorted and "Gus" in unsorted and "photo_0.jpg.xmp" in unsorted


def test_the_duplicates_page_shows_each_group_with_its_best_copy(client: TestClient):
    layout = client.app.state.review.service.layout
    small, large = "0" + ALICE_FACES[0], "0" + ALICE_FACES[1]
    rows = [{"photo_id": small, "path": "photo_0.jpg", "width": 160, "height": 120, "size": 9_000},
            {"photo_id": large, "path": "photo_1.jpg", "width": 320, "height": 240, "size": 30_000},
            {"photo_id": large, "path": "copy/photo_1.jpg", "width": 320, "height": 240, "size": 30_000}]
    DataStore(layout).write_batch(PHOTOS, "b1", pa.Table.from_pylist(rows, CATALOG_SCHEMA))
    layout.near_duplicates.parent.mkdir(parents=True)
    pq.write_table(pa.table({"photo_id": [small, large], "group_id": [small, small], "distance": [0, 3],
                             "version": ["v", "v"]}), layout.near_duplicates)
    page = client.get("/duplicates")
    assert page.status_code == 200 and "1 group<" in page.text
    copies = page.text.split('class="copy')[1:]
    assert len(copies) == 3  # the near-duplicate and both paths of the exact copy
    best = [copy for copy in copies if copy.startswith(' best"')]
    assert len(best) == 1 and "photo_1.jpg" in best[0] and "320 × 240" in best[0]


def _library_with_places(client: TestClient) -> dict[str, str]:
    """Four readable photos of the fixture's library, catalogued with GPS, dates and places (three in France: two in
    Paris, one in Lyon; one in Portugal), a colour each: photo_id by path."""
    layout = client.app.state.review.service.layout
    places = {"photo_0.jpg": ("FR", "France", "Paris", 48.85, 2.35, "Red"),
              "photo_1.jpg": ("FR", "France", "Paris", 48.86, 2.34, "Azure"),
              "photo_2.jpg": ("FR", "France", "Lyon", 45.76, 4.84, "Red"),
              "photo_3.jpg": ("PT", "Portugal", "Lisbon", 38.72, -9.14, "Red")}  # fmt: skip
    ids = {path: "0" + face for path, face in zip(places, (*ALICE_FACES, BOB_FACE, UNSORTED_FACE))}
    rows = [{"photo_id": ids[path], "path": path, "width": PHOTO_SIZE[0], "height": PHOTO_SIZE[1], "size": 9_000,
             "latitude": lat, "longitude": lon, "captured_at": datetime(2019, 1 + index, 1)}
            for index, (path, (_, _, _, lat, lon, _)) in enumerate(places.items())]
    store = DataStore(layout)
    store.write_batch(PHOTOS, "b1", pa.Table.from_pylist(rows, CATALOG_SCHEMA))
    store.write_batch(LOCATIONS, "b1", pa.table({
        "photo_id": [ids[path] for path in places], "country_code": [place[0] for place in places.values()],
        "country": [place[1] for place in places.values()], "city": [place[2] for place in places.values()],
    }))  # fmt: skip
    store.write_batch(COLOR_HISTOGRAMS, "b1", pa.table({
        "photo_id": [ids[path] for path in places], "color": [place[5] for place in places.values()],
        "score": pa.array([0.6] * 4, pa.float32()),
    }))  # fmt: skip
    return ids


def test_the_find_page_answers_find_photos_query_from_its_url_a_page_at_a_time(client: TestClient, monkeypatch):
    ids = _library_with_places(client)
    paris = client.get("/find", params=[("country", "fr"), ("city", "Paris"), ("colour", "red")])
    assert paris.status_code == 200 and ">1 photo<" in paris.text
    assert f'data-photo="{ids["photo_0.jpg"]}"' in paris.text and 'value="Paris"' in paris.text  # the form keeps it
    assert "Portugal" in paris.text and "Lisbon" in paris.text  # the places offered to type
    thumbnail = client.get(f"/thumbnails/{ids['photo_0.jpg']}.jpg")
    assert thumbnail.status_code == 200 and thumbnail.content[:2] == b"\xff\xd8"
    assert client.app.state.review.service.layout.photo_thumbnail(ids["photo_0.jpg"]).exists()  # cached
    dated = client.get("/find?from=2019-02-01&to=2019-03-31")
    assert [ids["photo_1.jpg"], ids["photo_2.jpg"]] == [
        line.split('"')[1] for line in dated.text.split("data-photo=")[1:]]  # oldest first

    monkeypatch.setattr(browse, "PAGE_SIZE", 3)
    first = client.get("/find?colour=Red")
    assert "Photos 1–3 of 3" not in first.text and 'rel="next"' not in first.text  # 3 red photos: one page
    everything = client.get("/find")
    assert "Photos 1–3 of 4" in everything.text and 'href="/find?page=2" rel="next"' in everything.text
    second = client.get("/find?page=2")
    assert "Photos 4–4 of 4" in second.text and f'data-photo="{ids["photo_3.jpg"]}"' in second.text
    assert 'href="/find?" rel="prev"' in second.text


def test_the_find_page_says_what_is_wrong_with_a_query(client: TestClient):
    _library_with_places(client)
    for query, words in [("colour=Redd", "did you mean: Red"), ("from=yesterday", "YYYY-MM-DD"),
                         ("object=dgo", "did you mean: dog"), ("faces=some", "faces must be")]:
        answer = client.get(f"/find?{query}")
        assert answer.status_code == 400 and words in answer.text, query
        assert 'class="grid"' not in answer.text


def test_the_places_page_shades_countries_and_links_each_place_to_its_search(client: TestClient):
    _library_with_places(client)
    page = client.get("/places", headers={"Accept-Encoding": "gzip"})
    assert page.status_code == 200 and page.headers["content-encoding"] == "gzip"
    assert "2 countries · 3 towns" in page.text
    france = page.text.split('data-country="FR"')[1].split("</a>")[0]
    portugal = page.text.split('data-country="PT"')[1].split("</a>")[0]
    assert 'data-photos="3"' in france and "France: 3 photos" in france
    fill = {name: part.split('fill: ')[1][:7] for name, part in (("FR", france), ("PT", portugal))}
    assert fill["FR"] != fill["PT"] and int(fill["FR"][1:3], 16) < int(fill["PT"][1:3], 16)  # more photos, darker
    assert page.text.count("<path") > 200  # every country drawn, counted or not
    assert 'href="/find?country=FR&amp;city=Paris" data-city="Paris" data-photos="2"' in page.text
    assert "<script src=\"http" not in page.text and "https://" not in page.text  # nothing fetched
    assert ">1 photo<" in client.get("/find?country=PT").text  # where Portugal's link goes, its one photo


def test_the_places_page_draws_the_busiest_towns_when_there_are_many(client: TestClient, monkeypatch):
    _library_with_places(client)
    monkeypatch.setattr(browse, "TOWNS_DRAWN", 1)
    page = client.get("/places").text
    assert page.count("<circle") == 1 and 'data-city="Paris" data-photos="2"' in page
    assert "(the 1 with most photos)" in page and ">Lisbon</a>" in page  # still listed beside the map


def test_the_find_page_of_an_empty_library_says_how_to_fill_it(tmp_path: Path):
    app = create_app(tmp_path / "data", tmp_path / "library", token=TOKEN, host="127.0.0.1", port=3001)
    page = TestClient(app, base_url=ORIGIN).get("/find")
    assert page.status_code == 200 and "No photos yet" in page.text and "photo-assets run" in page.text
    places = TestClient(app, base_url=ORIGIN).get("/places")
    assert places.status_code == 200 and "No photo has a place yet" in places.text
