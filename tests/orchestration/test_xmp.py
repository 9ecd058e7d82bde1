"""XMP sidecars, read back with exiftool (a reader no one here wrote): the packet on its own, then the `xmp_sidecars`
asset on a library analysed by `photo-assets run`, after a rename through `photo-assets people rename`."""

import csv
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import dagster as dg
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from devtools.library import copy_portraits, make_library
from devtools.services import photo_assets_cli, photo_assets_run
from photo_assets.analysis.xmp import FaceRegion, MalformedSidecar, PhotoTags, gps_coordinate, merge_sidecar
from photo_assets.assets.people import person_clusters
from photo_assets.assets.xmp import write_sidecar, xmp_sidecars
from photo_assets.partitions import photo_batches
from photo_assets.resources import PhotoLibrary
from photo_assets.storage import DataLayout
from photo_assets.storage.layout import XMP_SIDECAR_LOG as SIDECAR_LOG
from photo_assets.storage.layout import XMP_SIDECARS_DIR as SIDECAR_DIR

EXIFTOOL = shutil.which("exiftool")
pytestmark = pytest.mark.skipif(
    EXIFTOOL is None and os.environ.get("CI") != "true",
    reason="exiftool missing: scripts/ci_services.sh installs Debian's libimage-exiftool-perl",
)
GPS_PHOTOS = ["mei__jpg__FujiFilm_FinePixS2Pro.jpg", "ianare__jpg__gps__DSCN0010.jpg"]  # Paris, Arezzo
PEOPLE = ["person_01", "person_02"]
PORTRAITS = slice(0, 4)
# Six decimals of normalized coordinates: a box is off by at most a millionth of the photo's side.
GEOMETRY_TOLERANCE = 2e-6


def exiftool(*paths: Path) -> list[dict]:
    """exiftool's JSON of the XMP group, structures kept, with no value formatting (-n)."""
    result = subprocess.run(
        [EXIFTOOL, "-j", "-struct", "-n", "-G1", "-XMP:all", *map(str, paths)],
        capture_output=True, text=True, check=True,
    )
    return json.loads(result.stdout)


def exiftool_sidecar(path: Path, *assignments: str) -> None:
    """A sidecar written by exiftool, as another photo tool leaves one."""
    subprocess.run([EXIFTOOL, "-q", "-o", str(path), *assignments], check=True)


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


TAGS = PhotoTags(
    width=4000,
    height=3000,
    faces=[FaceRegion("Bob", 2000, 1000, 300, 300), FaceRegion("Alice", 100, 200, 400, 500)],
    colours=["Azure", "White"],
    country="France",
    country_code="FR",
    city="Paris",
    latitude=48.85660,
    longitude=-2.35220,
)


# -- the packet ----------------------------------------------------------------------------------------------------


def test_a_new_sidecar_holds_regions_people_keywords_place_and_gps(tmp_path: Path):
    path = tmp_path / "photo.jpg.xmp"
    path.write_bytes(merge_sidecar(TAGS))
    (read,) = exiftool(path)
    regions = read["XMP-mwg-rs:RegionInfo"]
    assert regions["AppliedToDimensions"] == {"W": 4000, "H": 3000, "Unit": "pixel"}
    alice, bob = regions["RegionList"]
    assert (alice["Name"], alice["Type"], bob["Name"]) == ("Alice", "Face", "Bob")
    area = alice["Area"]
    assert area["Unit"] == "normalized"
    for key, expected in {"X": 300 / 4000, "Y": 450 / 3000, "W": 400 / 4000, "H": 500 / 3000}.items():
        assert area[key] == pytest.approx(expected, abs=GEOMETRY_TOLERANCE)
    microsoft = read["XMP-MP:RegionInfoMP"]["Regions"]
    assert [region["PersonDisplayName"] for region in microsoft] == ["Alice", "Bob"]
    rectangle = [float(value) for value in microsoft[0]["Rectangle"].split(",")]
    assert rectangle == pytest.approx([100 / 4000, 200 / 3000, 400 / 4000, 500 / 3000], abs=GEOMETRY_TOLERANCE)
    assert read["XMP-iptcExt:PersonInImage"] == ["Alice", "Bob"]
    assert read["XMP-dc:Subject"] == ["Alice", "Bob", "France", "Paris", "Azure", "White"]
    assert read["XMP-lr:HierarchicalSubject"] == [
        "People|Alice", "People|Bob", "Places|France|Paris", "Colours|Azure", "Colours|White"
    ]
    assert (read["XMP-photoshop:Country"], read["XMP-photoshop:City"]) == ("France", "Paris")
    assert read["XMP-iptcCore:CountryCode"] == "FR"
    assert read["XMP-exif:GPSLatitude"] == pytest.approx(48.8566, abs=1e-7)
    assert read["XMP-exif:GPSLongitude"] == pytest.approx(-2.3522, abs=1e-7)


STORED_SIZE, STORED_BOX = (400, 300), (50, 60, 100, 40)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_regions_are_written_in_the_stored_frame_for_every_orientation(tmp_path: Path, orientation: int):
    """A face found in the oriented photo lands, as exiftool reads the sidecar, on the same pixels of the photo as
    stored (MWG: readers apply the orientation to regions). The photo: a white box on black, stored at STORED_BOX."""
    from PIL import Image, ImageOps

    stored = Image.new("RGB", STORED_SIZE)
    x, y, w, h = STORED_BOX
    stored.paste((255, 255, 255), (x, y, x + w, y + h))
    exif = Image.Exif()
    exif[0x0112] = orientation
    stored.info["exif"] = exif.tobytes()
    stored.getexif()[0x0112] = orientation
    shown = ImageOps.exif_transpose(stored)
    left, top, right, bottom = shown.getbbox()
    tags = PhotoTags(width=shown.width, height=shown.height, orientation=orientation,
                     faces=[FaceRegion("Alice", left, top, right - left, bottom - top)])
    path = tmp_path / "photo.jpg.xmp"
    path.write_bytes(merge_sidecar(tags))
    (read,) = exiftool(path)
    assert read["XMP-mwg-rs:RegionInfo"]["AppliedToDimensions"] == {"W": 400, "H": 300, "Unit": "pixel"}
    rectangle = [float(value) for value in read["XMP-MP:RegionInfoMP"]["Regions"][0]["Rectangle"].split(",")]
    in_pixels = [rectangle[0] * 400, rectangle[1] * 300, rectangle[2] * 400, rectangle[3] * 300]
    assert in_pixels == pytest.approx(STORED_BOX, abs=1e-3)
    area = read["XMP-mwg-rs:RegionInfo"]["RegionList"][0]["Area"]
    assert (area["X"] * 400, area["Y"] * 300) == pytest.approx((x + w / 2, y + h / 2), abs=1e-3)


def test_gps_coordinates_use_xmps_degrees_and_decimal_minutes():
    assert gps_coordinate(48.8566, "N", "S") == "48,51.396000N"
    assert gps_coordinate(-2.3522, "E", "W") == "2,21.132000W"
    assert gps_coordinate(-0.0000001, "N", "S") == "0,00.000006S"
    assert gps_coordinate(179.9999999, "E", "W") == "179,59.999994E"
    assert gps_coordinate(179.999999999, "E", "W") == "180,00.000000E"  # minutes round up into a degree


def test_another_tools_sidecar_keeps_its_properties_and_rewrites_are_byte_identical(tmp_path: Path):
    path = tmp_path / "photo.jpg.xmp"
    exiftool_sidecar(path, "-XMP:Rating=4", "-XMP:Title=Sunset", "-XMP-dc:Subject=holiday",
                     "-XMP-lr:HierarchicalSubject=Trips|2024", "-XMP-photoshop:Headline=Evening")
    first = merge_sidecar(TAGS, path.read_bytes())
    path.write_bytes(first)
    assert merge_sidecar(TAGS, first) == first
    (read,) = exiftool(path)
    assert (read["XMP-xmp:Rating"], read["XMP-dc:Title"], read["XMP-photoshop:Headline"]) == (4, "Sunset", "Evening")
    assert read["XMP-dc:Subject"] == ["holiday", "Alice", "Bob", "France", "Paris", "Azure", "White"]
    assert read["XMP-lr:HierarchicalSubject"][0] == "Trips|2024"

    # A rename and a move: our old keywords and names go, everything else stays.
    renamed = PhotoTags(width=4000, height=3000, faces=[FaceRegion("Alicia", 100, 200, 400, 500)], country="Italy",
                        country_code="IT")
    path.write_bytes(merge_sidecar(renamed, first))
    (read,) = exiftool(path)
    assert read["XMP-dc:Subject"] == ["holiday", "Alicia", "Italy"]
    assert read["XMP-lr:HierarchicalSubject"] == ["Trips|2024", "People|Alicia", "Places|Italy"]
    assert as_list(read["XMP-iptcExt:PersonInImage"]) == ["Alicia"]
    assert [region["Name"] for region in as_list(read["XMP-mwg-rs:RegionInfo"]["RegionList"])] == ["Alicia"]
    assert "XMP-photoshop:City" not in read and "XMP-exif:GPSLatitude" not in read
    assert (read["XMP-xmp:Rating"], read["XMP-photoshop:Headline"]) == (4, "Evening")


def test_properties_in_attribute_form_are_kept_or_replaced_like_elements():
    existing = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b'<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/" '
        b'xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/" xmp:Rating="2" photoshop:City="Lyon"/>'
        b"</rdf:RDF></x:xmpmeta>"
    )
    merged = merge_sidecar(TAGS, existing).decode()
    assert 'xmp:Rating="2"' in merged and "Lyon" not in merged and "<photoshop:City>Paris</photoshop:City>" in merged


def test_a_face_without_a_name_is_a_region_without_a_name_and_no_person(tmp_path: Path):
    path = tmp_path / "photo.jpg.xmp"
    path.write_bytes(merge_sidecar(PhotoTags(width=400, height=300, faces=[FaceRegion("", 10, 20, 40, 50)])))
    (read,) = exiftool(path)
    (region,) = as_list(read["XMP-mwg-rs:RegionInfo"]["RegionList"])
    assert "Name" not in region and region["Type"] == "Face"
    assert region["Area"]["X"] == pytest.approx(30 / 400, abs=GEOMETRY_TOLERANCE)
    assert not {"XMP-MP:RegionInfoMP", "XMP-iptcExt:PersonInImage", "XMP-dc:Subject"} & set(read)


@pytest.mark.parametrize(
    "existing",
    [b"<x:xmpmeta xmlns:x='adobe:ns:meta/'><rdf:RDF", b"not xml at all", b"<html><body>hello</body></html>",
     b"<x:xmpmeta xmlns:x='adobe:ns:meta/'/>"],
)
def test_a_malformed_sidecar_is_an_error_not_overwritten(existing: bytes):
    with pytest.raises(MalformedSidecar):
        merge_sidecar(TAGS, existing)


# -- the asset, on a library analysed by `photo-assets run` --------------------------------------------------------


def materialize_sidecars(library: Path, data: Path, **settings) -> tuple[dict, list]:
    """person_clusters (the rename applied), then xmp_sidecars for every batch; (batch -> metadata, check results)."""
    resources = {"photo_library": PhotoLibrary(library_dir=str(library), data_dir=str(data), **settings)}
    batches = sorted(path.stem for path in (data / "batches").glob("*.json"))
    with dg.instance_for_test() as instance:
        assert dg.materialize([person_clusters], instance=instance, resources=resources).success
        instance.add_dynamic_partitions(photo_batches.name, batches)
        metadata, checks = {}, []
        for batch in batches:
            result = dg.materialize([xmp_sidecars], partition_key=batch, instance=instance, resources=resources)
            assert result.success
            (event,) = result.get_asset_materialization_events()
            metadata[batch] = event.step_materialization_data.materialization.metadata
            checks += result.get_asset_check_evaluations()
    return metadata, checks


@pytest.fixture(scope="module")
def analysed(shared_dir: Path, tmp_path_factory) -> dict:
    """Portraits of two people and two GPS photos, analysed by `photo-assets run`; person_01 renamed "Alice"."""
    root = tmp_path_factory.mktemp("xmp")
    library, data, home = root / "library", root / "data", root / "home"
    copy_portraits(shared_dir / "faces" / "deepface", library, PEOPLE, PORTRAITS)
    (library / "trips").mkdir()
    for name in GPS_PHOTOS:
        shutil.copyfile(shared_dir / "corpus" / "gps" / name, library / "trips" / name)
    result = photo_assets_run(library, data, home)
    assert result.returncode == 0, result.stdout + result.stderr
    faces = pq.read_table(DataLayout(data).people_faces)
    photos = ds.dataset(data / "photos").to_table(columns=["photo_id", "path"])
    folder_of = {row["photo_id"]: row["path"].split("/")[0] for row in photos.to_pylist()}
    in_folder = [face["person_id"] for face in faces.to_pylist() if folder_of[face["photo_id"]] == "person_01"]
    person = Counter(in_folder).most_common(1)[0][0]
    renamed = photo_assets_cli({**os.environ, "DAGSTER_HOME": str(home)}, "people", "rename", person, "Alice",
                               "--data", str(data))
    assert renamed.returncode == 0, renamed.stdout + renamed.stderr
    return {"library": library, "data": data, "home": home, "person": person}


@pytest.mark.slow  # the module's `photo-assets run` library
def test_sidecars_carry_the_renamed_person_the_boxes_and_the_place(analysed: dict, shared_dir: Path):
    library, data = analysed["library"], analysed["data"]
    # Another tool's sidecar, already in the mirror tree, for one portrait.
    portrait = sorted((library / "person_01").iterdir())[0]
    theirs = data / SIDECAR_DIR / "person_01" / f"{portrait.name}.xmp"
    theirs.parent.mkdir(parents=True, exist_ok=True)
    theirs.unlink(missing_ok=True)  # `photo-assets run` wrote ours already: the other tool's comes first here
    exiftool_sidecar(theirs, "-XMP:Rating=5", "-XMP:Title=Graduation")

    metadata, checks = materialize_sidecars(library, data)
    assert all(check.passed for check in checks)
    assert sum(values["errors"].value for values in metadata.values()) == 0
    sidecars = sorted((data / SIDECAR_DIR).rglob("*.xmp"))
    photos = sorted(path for path in library.rglob("*.jpg"))
    assert [path.relative_to(data / SIDECAR_DIR) for path in sidecars] == [
        Path(f"{path.relative_to(library)}.xmp") for path in photos
    ]
    read = {Path(entry["SourceFile"]).relative_to(data / SIDECAR_DIR).as_posix()[: -len(".xmp")]: entry
            for entry in exiftool(*sidecars)}

    catalog = ds.dataset(data / "photos").to_table().to_pylist()
    by_path = {row["path"]: row for row in catalog}
    detections = ds.dataset(data / "face_detections").to_table().to_pylist()
    faces = {row["face_id"]: row for row in pq.read_table(DataLayout(data).people_faces).to_pylist()}
    alice_photos = [path for path in read if path.startswith("person_01/")]
    assert alice_photos
    for path in alice_photos:
        entry, photo = read[path], by_path[path]
        assert as_list(entry["XMP-iptcExt:PersonInImage"]) == ["Alice"], path
        assert "People|Alice" in as_list(entry["XMP-lr:HierarchicalSubject"])
        assert "Alice" in as_list(entry["XMP-dc:Subject"])
        regions = entry["XMP-mwg-rs:RegionInfo"]
        assert regions["AppliedToDimensions"] == {"W": photo["width"], "H": photo["height"], "Unit": "pixel"}
        boxes = [box for box in detections if box["photo_id"] == photo["photo_id"]
                 and faces[box["face_id"]]["person_id"] == analysed["person"]]
        listed = as_list(regions["RegionList"])
        assert len(listed) == len(boxes) >= 1
        for region, box in zip(sorted(listed, key=lambda r: r["Area"]["X"]), sorted(boxes, key=lambda b: b["x"])):
            area = region["Area"]
            assert (region["Name"], region["Type"], area["Unit"]) == ("Alice", "Face", "normalized")
            expected = {"X": (box["x"] + box["width"] / 2) / photo["width"],
                        "Y": (box["y"] + box["height"] / 2) / photo["height"],
                        "W": box["width"] / photo["width"], "H": box["height"] / photo["height"]}
            for key, value in expected.items():
                assert area[key] == pytest.approx(value, abs=GEOMETRY_TOLERANCE), (path, key)
        (microsoft,) = as_list(entry["XMP-MP:RegionInfoMP"]["Regions"])
        assert microsoft["PersonDisplayName"] == "Alice"
    # The unnamed person_02 is nobody's name: no region, no person, no People keyword.
    for path in (path for path in read if path.startswith("person_02/")):
        assert "XMP-mwg-rs:RegionInfo" not in read[path] and "XMP-iptcExt:PersonInImage" not in read[path]
        assert not any(k.startswith("People|") for k in as_list(read[path].get("XMP-lr:HierarchicalSubject", [])))
    # The other tool's properties survived, beside ours.
    entry = read[f"person_01/{portrait.name}"]
    assert (entry["XMP-xmp:Rating"], entry["XMP-dc:Title"]) == (5, "Graduation")
    assert as_list(entry["XMP-iptcExt:PersonInImage"]) == ["Alice"]

    # Place: country code against truth.csv, city and country against the locations dataset, GPS against EXIF.
    with open(shared_dir / "corpus" / "gps" / "truth.csv", newline="", encoding="utf-8") as handle:
        truth = {row["file"]: row for row in csv.DictReader(handle)}
    locations = {row["photo_id"]: row for row in ds.dataset(data / "locations").to_table().to_pylist()}
    for name in GPS_PHOTOS:
        entry, photo = read[f"trips/{name}"], by_path[f"trips/{name}"]
        place = locations[photo["photo_id"]]
        assert entry["XMP-iptcCore:CountryCode"] == truth[name]["country_10m"].split("/")[-1]
        assert (entry["XMP-photoshop:Country"], entry["XMP-photoshop:City"]) == (place["country"], place["city"])
        assert f"Places|{place['country']}|{place['city']}" in as_list(entry["XMP-lr:HierarchicalSubject"])
        assert entry["XMP-exif:GPSLatitude"] == pytest.approx(photo["latitude"], abs=1e-6)
        assert entry["XMP-exif:GPSLongitude"] == pytest.approx(photo["longitude"], abs=1e-6)
        assert any(k.startswith("Colours|") for k in as_list(entry["XMP-lr:HierarchicalSubject"]))

    # Re-materializing writes nothing new: every file byte-identical, every photo "unchanged".
    before = {path: path.read_bytes() for path in sidecars}
    metadata, _ = materialize_sidecars(library, data)
    assert {path: path.read_bytes() for path in sidecars} == before
    assert sum(values["sidecars_written"].value for values in metadata.values()) == 0
    log = ds.dataset(data / SIDECAR_LOG).to_table()
    assert set(log["status"].to_pylist()) == {"unchanged"}


@pytest.mark.slow  # the module's `photo-assets run` library
def test_a_malformed_sidecar_is_left_alone_and_reported(analysed: dict):
    library, data = analysed["library"], analysed["data"]
    photo = sorted((library / "trips").iterdir())[0]
    broken = data / SIDECAR_DIR / "trips" / f"{photo.name}.xmp"
    broken.parent.mkdir(parents=True, exist_ok=True)
    broken.write_bytes(b"<x:xmpmeta half written")
    metadata, checks = materialize_sidecars(library, data)
    assert broken.read_bytes() == b"<x:xmpmeta half written"
    assert sum(values["errors"].value for values in metadata.values()) == 1
    assert not all(check.passed for check in checks)
    log = ds.dataset(data / SIDECAR_LOG).to_table().to_pylist()
    (failed,) = [row for row in log if row["status"] == "error"]
    assert failed["path"] == f"trips/{photo.name}" and "not well-formed" in failed["error"]
    broken.unlink()


@pytest.mark.slow  # the module's `photo-assets run` library
def test_unknown_peoples_regions_are_opt_in(analysed: dict):
    library, data = analysed["library"], analysed["data"]
    materialize_sidecars(library, data, xmp_unnamed_regions=True)
    read = {Path(entry["SourceFile"]).relative_to(data / SIDECAR_DIR).as_posix(): entry
            for entry in exiftool(*sorted((data / SIDECAR_DIR / "person_02").glob("*.xmp")))}
    assert len(read) == PORTRAITS.stop
    for path, entry in read.items():
        regions = as_list(entry["XMP-mwg-rs:RegionInfo"]["RegionList"])
        assert regions and all("Name" not in region and region["Type"] == "Face" for region in regions), path
        assert "XMP-MP:RegionInfoMP" not in entry and "XMP-iptcExt:PersonInImage" not in entry
    materialize_sidecars(library, data)  # and off again: the unnamed regions go
    for entry in exiftool(*sorted((data / SIDECAR_DIR / "person_02").glob("*.xmp"))):
        assert "XMP-mwg-rs:RegionInfo" not in entry


@pytest.mark.slow  # the module's `photo-assets run` library
def test_beside_the_photo_in_a_read_only_library_is_a_per_photo_error(analysed: dict):
    library, data = analysed["library"], analysed["data"]
    folders = [library, *(path for path in library.iterdir() if path.is_dir())]
    # person_02's folder stays writable: its sidecars are written, the others' are errors, the run goes on.
    read_only = [folder for folder in folders if folder.name != "person_02"]
    modes = {folder: folder.stat().st_mode for folder in folders}
    try:
        for folder in read_only:
            folder.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
        metadata, checks = materialize_sidecars(library, data, xmp_beside_photos=True)
    finally:
        for folder, mode in modes.items():
            folder.chmod(mode)
    log = ds.dataset(data / SIDECAR_LOG).to_table().to_pylist()
    written = sorted(row["path"] for row in log if row["status"] == "written")
    failed = [row for row in log if row["status"] == "error"]
    assert written and all(path.startswith("person_02/") for path in written)
    assert failed and all("read-only" in row["error"] for row in failed)
    assert len(written) + len(failed) == len(log) == len(list(library.rglob("*.jpg")))
    assert sorted(path.relative_to(library).as_posix() for path in library.rglob("*.xmp")) == [
        f"{path}.xmp" for path in written
    ]
    assert not all(check.passed for check in checks)
    for path in library.rglob("*.xmp"):
        path.unlink()


def test_a_rename_updates_every_batchs_sidecars_by_automation():
    """After person_clusters re-runs (a rename), declarative automation asks for every batch's sidecars again."""
    from photo_assets.definitions import defs

    instance = dg.DagsterInstance.ephemeral()
    batches = ["20250101-000000-aaaa", "20250101-000001-bbbb"]
    instance.add_dynamic_partitions(photo_batches.name, batches)

    def materialized(key: str, partition: str | None = None) -> None:
        instance.report_runless_asset_event(dg.AssetMaterialization(key, partition=partition))

    def requested(cursor=None):
        result = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, asset_selection=dg.AssetSelection.assets("xmp_sidecars"), cursor=cursor
        )
        return set(result.get_requested_partitions(dg.AssetKey("xmp_sidecars"))), result.cursor

    for batch in batches:
        for key in ("photos", "locations", "color_histograms", "object_detections"):
            materialized(key, batch)
    wanted, cursor = requested()
    assert wanted == set()  # people not clustered yet: sidecars wait for them
    materialized("person_clusters")
    wanted, cursor = requested(cursor)
    assert wanted == set(batches)
    for batch in batches:
        materialized("xmp_sidecars", batch)
    wanted, cursor = requested(cursor)
    assert wanted == set()
    materialized("person_clusters")  # the rename, clustered
    wanted, cursor = requested(cursor)
    assert wanted == set(batches)


KILL_CHILD = """
import os, sys, time
from pathlib import Path

from photo_assets.analysis.xmp import FaceRegion, PhotoTags
from photo_assets.assets.xmp import write_sidecar

target, marker = Path(sys.argv[1]), Path(sys.argv[2])
replace = os.replace


def replace_or_wait(source, destination, *args, **kwargs):
    if os.fspath(destination) == os.fspath(target):
        marker.write_text(os.fspath(source))
        while True:
            time.sleep(60)  # the new sidecar is complete beside the old one: the test kills us here
    return replace(source, destination, *args, **kwargs)


os.replace = replace_or_wait
write_sidecar(target, PhotoTags(width=400, height=300, faces=[FaceRegion("Alice", 10, 20, 40, 50)]), False)
"""


def test_kill_9_during_the_write_leaves_the_old_sidecar_whole(tmp_path: Path):
    target, marker = tmp_path / "mirror" / "photo.jpg.xmp", tmp_path / "paused"
    target.parent.mkdir()
    exiftool_sidecar(target, "-XMP:Rating=3", "-XMP:Title=Before")
    before = target.read_bytes()
    child = subprocess.Popen([sys.executable, "-c", KILL_CHILD, str(target), str(marker)], start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), "the writer never reached the rename"
        temporary = Path(marker.read_text())
        assert b"Alice" in temporary.read_bytes()  # the new bytes were complete
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait(timeout=60)
    assert target.read_bytes() == before  # never torn: the old sidecar, whole
    (read,) = exiftool(target)
    assert (read["XMP-xmp:Rating"], read["XMP-dc:Title"]) == (3, "Before")
    # The next write merges into the old sidecar as if nothing happened; the dead writer's temporary is not data.
    assert write_sidecar(target, PhotoTags(width=400, height=300, faces=[FaceRegion("Alice", 10, 20, 40, 50)]),
                         False) == "written"
    (read,) = exiftool(target)
    assert (read["XMP-xmp:Rating"], as_list(read["XMP-iptcExt:PersonInImage"])) == (3, ["Alice"])
    assert sorted(path.name for path in target.parent.iterdir() if not path.name.startswith(".")) == ["photo.jpg.xmp"]


@pytest.mark.slow  # two `photo-assets run`s
def test_the_mirror_follows_the_library_when_photos_are_moved_or_deleted(tmp_path: Path):
    """A photo moved to another folder takes its sidecar along (the old one is removed, the new path gets one); a
    deleted photo's sidecar goes, and so does a folder the mirror no longer needs. Every other sidecar stays."""
    library, data, home = tmp_path / "library", tmp_path / "data", tmp_path / "home"
    make_library(library, 3, folder="2024")
    make_library(library, 2, folder="old")
    assert photo_assets_run(library, data, home).returncode == 0
    mirror = DataLayout(data).xmp_sidecars
    before = sorted(str(path.relative_to(mirror)) for path in mirror.rglob("*.xmp"))
    assert before == ["2024/photo_000.jpg.xmp", "2024/photo_001.jpg.xmp", "2024/photo_002.jpg.xmp",
                      "old/photo_000.jpg.xmp", "old/photo_001.jpg.xmp"]  # fmt: skip
    (library / "2025").mkdir()
    (library / "2024" / "photo_001.jpg").rename(library / "2025" / "moved.jpg")
    (library / "2024" / "photo_002.jpg").unlink()
    shutil.rmtree(library / "old")
    result = photo_assets_run(library, data, home)
    assert result.returncode == 0, result.stdout + result.stderr
    after = sorted(str(path.relative_to(mirror)) for path in mirror.rglob("*.xmp"))
    assert after == ["2024/photo_000.jpg.xmp", "2025/moved.jpg.xmp"]
    assert not (mirror / "old").exists()
