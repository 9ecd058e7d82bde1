"""`find`: each filter on the session's search library (tests/search_library.py: the GPS corpus, deepface portraits of
two people renamed, one photo of both, single-colour photos, objects and copies), analysed by `photo-assets run`;
expectations from truth.csv and the photos' own EXIF."""

import json
import math
import subprocess
from datetime import date

import numpy as np
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from devtools.regions import exiftool
from photo_assets.analysis.images import read_metadata
from photo_assets.cli import main
from photo_assets.find import FindError, FindFilters, find_photos, format_rows
from photo_assets.storage import DataLayout
from tests.search_library import COPIED, OBJECT_PHOTOS, PAIR, PEOPLE, PORTRAITS, SOLID

pytestmark = pytest.mark.slow  # a `photo-assets run` subprocess builds the library it queries

AREZZO = (43.4633, 11.8797)


@pytest.fixture
def library(search_library: dict) -> dict:
    return search_library


def paths(rows: list[dict]) -> set[str]:
    return {row["path"] for row in rows}


def find(library: dict, **filters) -> list[dict]:
    return find_photos(DataLayout(library["data"]), FindFilters(limit=None, **filters))


def gps_files(library: dict, keep) -> set[str]:
    return {f"gps/{row['file']}" for row in library["truth"] if keep(row)}


def test_person(library: dict):
    alice = paths(find(library, persons=["Alice"]))
    assert {path.split("/")[0] for path in alice} == {"person_01", "together"}
    assert PAIR in alice and len(alice) == PORTRAITS.stop + 1
    assert paths(find(library, persons=["alice"])) == alice  # any case
    rows = find(library, persons=["Alice", "Bob"])  # both in one photo
    assert paths(rows) == {PAIR} and rows[0]["people"] == ["Alice", "Bob"]


def test_person_by_number_and_unknown_name(library: dict):
    people = pq.read_table(library["data"] / "person_clusters" / "people.parquet").to_pylist()
    bob = next(person["person_id"] for person in people if person["name"] == "Bob")
    assert paths(find(library, persons=[bob])) == paths(find(library, persons=["Bob"]))
    with pytest.raises(FindError, match="no person 'Alise'.*did you mean: Alice"):
        find(library, persons=["Alise"])


def test_country_by_code_and_by_name(library: dict):
    italy = gps_files(library, lambda row: row["country_10m"].endswith("/IT"))
    assert len(italy) >= 10
    assert paths(find(library, country="IT")) == italy
    assert paths(find(library, country="italy")) == italy
    assert find(library, country="Atlantis") == []


def test_city(library: dict):
    arezzo = gps_files(library, lambda row: row["nearest_city1000"].startswith("Arezzo "))
    rows = find(library, city="arezzo")
    assert paths(rows) == arezzo and {row["city"] for row in rows} == {"Arezzo"}


def test_near_within(library: dict):
    def distance_km(row):
        phi1, phi2 = math.radians(AREZZO[0]), math.radians(float(row["lat"]))
        a = (math.sin((phi2 - phi1) / 2) ** 2
             + math.cos(phi1) * math.cos(phi2) * math.sin(math.radians(float(row["lon"]) - AREZZO[1]) / 2) ** 2)
        return 2 * 6371.0088 * math.asin(math.sqrt(a))

    near = gps_files(library, lambda row: distance_km(row) <= 5)
    assert near and paths(find(library, near=AREZZO, within_km=5)) == near
    assert paths(find(library, near=AREZZO, within_km=1000)) > near
    with pytest.raises(FindError):
        find(library, near=(95.0, 0.0))


def test_colour_with_min_share(library: dict):
    assert paths(find(library, colour="magenta", min_share=0.9)) == {"solid/magenta.jpg"}
    shares = ds.dataset(library["data"] / "color_histograms").to_table().to_pylist()
    photo_of = {row["path"]: row["photo_id"] for row in find(library)}
    for min_share in (0.05, 0.5, 0.9):
        expected = {row["photo_id"] for row in shares if row["color"] == "Azure" and row["score"] >= min_share}
        found = paths(find(library, colour="Azure", min_share=min_share))
        assert "solid/azure.jpg" in found and {photo_of[path] for path in found} == expected
    with pytest.raises(FindError, match="unknown colour 'Azur'.*did you mean: Azure"):
        find(library, colour="Azur")


def test_dates(library: dict):
    captured = {f"gps/{row['file']}": read_metadata(library["corpus"] / row["file"]).captured_at
                for row in library["truth"]}
    dated = {path: when for path, when in captured.items() if when}
    assert len(dated) >= 5
    middle = sorted(dated.values())[len(dated) // 2].date()
    before = {path for path, when in dated.items() if when.date() <= middle}
    after = {path for path, when in dated.items() if when.date() >= middle}
    assert paths(find(library, date_to=middle)) & set(captured) == before
    assert paths(find(library, date_from=middle)) & set(captured) == after
    on_the_day = paths(find(library, date_from=middle, date_to=middle)) & set(captured)
    assert on_the_day == before & after and on_the_day
    assert find(library, date_from=date(2100, 1, 1)) == []


def test_camera(library: dict):
    # truth.csv for the corpus; the portraits' own EXIF (one is a Nikon's) read by read_metadata.
    nikon = gps_files(library, lambda row: "nikon" in f"{row['make']} {row['model']}".lower())
    for path in library["library"].rglob("*.jpg"):
        meta = read_metadata(path)
        if not path.parent.name == "gps" and "nikon" in f"{meta.camera_make} {meta.camera_model}".lower():
            nikon.add(path.relative_to(library["library"]).as_posix())
    assert nikon and paths(find(library, camera="Nikon")) == nikon
    p6000 = gps_files(library, lambda row: row["model"] == "COOLPIX P6000")
    assert p6000 and paths(find(library, camera="coolpix p6000")) == p6000


def test_with_and_without_faces(library: dict):
    everything = paths(find(library))
    with_faces = paths(find(library, with_faces=True))
    without_faces = paths(find(library, with_faces=False))
    assert with_faces | without_faces == everything and not with_faces & without_faces
    portraits = {path for path in everything if path.split("/")[0] in {*PEOPLE, "together"}}
    assert portraits <= with_faces
    assert set(SOLID) <= without_faces


def test_objects(library: dict, capsys):
    for name, label in OBJECT_PHOTOS.items():
        assert f"skimage/{name}" in paths(find(library, objects=[label])), label
    assert paths(find(library, objects=["Motorcycle"])) == {"skimage/motorcycle_left.png", "skimage/motorcycle_right.png"}
    portraits = {path for path in paths(find(library)) if path.split("/")[0] in PEOPLE}
    assert portraits <= paths(find(library, objects=["person"]))  # a portrait is a person
    assert not find(library, objects=["cat", "motorcycle"])  # both in one photo: none
    assert main(["find", "--data", str(library["data"]), "--object", "dragon"]) == 2
    said = capsys.readouterr().err
    assert "unknown object 'dragon'" in said and "toothbrush" in said  # the 80 labels listed


def test_object_tags_are_in_the_sidecars_as_exiftool_reads_them(library: dict):
    sidecar = DataLayout(library["data"]).sidecar("skimage/chelsea.png")
    read = subprocess.run([exiftool(), "-j", "-XMP-lr:HierarchicalSubject", "-XMP-dc:Subject", str(sidecar)],
                          capture_output=True, text=True, check=True)
    (tags,) = json.loads(read.stdout)
    assert "Objects|cat" in tags["HierarchicalSubject"] and "cat" in tags["Subject"]


def test_duplicates(library: dict):
    rows = find(library, duplicates=True)
    groups: dict[str, set[str]] = {}
    for row in rows:
        groups.setdefault(row["duplicate_group"], set()).add(row["path"])
    expected = {f"skimage/{COPIED}", "copies/half.jpg", "copies/crop.png", "copies/brighter.jpg", "copies/exact.png"}
    assert expected in groups.values(), groups
    for members in groups.values():  # no two people's portraits are one shot, no two single-colour photos
        assert len({path.split("/")[0] for path in members} & set(PEOPLE)) <= 1, members
        assert not set(SOLID) & members, members


def test_filters_combine_and_limit(library: dict):
    rows = find(library, country="IT", camera="nikon", near=AREZZO, within_km=5)
    assert paths(rows) == paths(find(library, country="IT")) & paths(find(library, camera="nikon")) & paths(
        find(library, near=AREZZO, within_km=5))
    limited = find_photos(DataLayout(library["data"]), FindFilters(country="GB", limit=2))
    everything_in_gb = [row["path"] for row in find(library, country="GB")]
    assert len(limited) == 2 and [row["path"] for row in limited] == everything_in_gb[:2]


def test_output_text_and_json(library: dict):
    rows = find(library, persons=["Alice", "Bob"])
    assert format_rows(rows).splitlines() == [f"-\t{PAIR}\t-\tAlice, Bob"]
    (line,) = format_rows(rows, json_lines=True).splitlines()
    assert json.loads(line)["people"] == ["Alice", "Bob"]
    paris = find(library, country="FR")[0]
    assert f"\t{paris['city']}, France\t" in format_rows([paris])


def test_the_find_command(library: dict, capsys):
    data = ["--data", str(library["data"])]
    status = main(["find", *data, "--country", "it", "--camera", "nikon", "--json", "--limit", "3"])
    lines = capsys.readouterr().out.splitlines()
    assert status == 0 and len(lines) == 3
    assert all(json.loads(line)["country_code"] == "IT" for line in lines)
    assert main(["find", *data, "--colour", "purpel"]) == 2
    assert "did you mean: Purple" in capsys.readouterr().err
    assert main(["find", *data, "--city", "Nowhere"]) == 1
    assert main(["find", *data, "--near", "not-a-point"]) == 2  # a usage error, said in one line
    assert "expected LAT,LON" in capsys.readouterr().err
    np.testing.assert_equal(main(["find", *data, "--near", "43.4633,11.8797", "--within", "5"]), 0)
