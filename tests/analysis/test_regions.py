"""Reading other tools' face regions: both schemas in every form RDF allows, units, orientations, what is not a
person; matching regions to faces; and which names a set of regions imports (conflicts silenced)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from devtools.regions import EMBEDDED_MP, EMBEDDED_MWG, SIDECAR_APPENDED, SIDECAR_REPLACED, exiftool, write_regions
from photo_assets.analysis.regions import (
    MICROSOFT,
    MWG,
    ONE_NAME_ON_TWO_FACES,
    TWO_NAMES_ON_ONE_FACE,
    PlacedRegion,
    import_changes,
    match_regions,
    parse_packet,
    plan_imports,
    read_photo_regions,
    regions_in_packet,
)
from photo_assets.analysis.xmp import FaceRegion, PhotoTags, merge_sidecar

WIDTH, HEIGHT = 400, 300  # the oriented photo
BOX = (40, 60, 100, 120)  # x, y, w, h in it

ATTRIBUTE_FORM = b"""<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:mwg-rs="http://www.metadataworkinggroup.com/schemas/regions/"
  xmlns:stArea="http://ns.adobe.com/xmp/sType/Area#" xmlns:stDim="http://ns.adobe.com/xap/1.0/sType/Dimensions#">
 <mwg-rs:Regions><rdf:Description>
  <mwg-rs:AppliedToDimensions stDim:w="400" stDim:h="300" stDim:unit="pixel"/>
  <mwg-rs:RegionList><rdf:Bag>
   <rdf:li><rdf:Description mwg-rs:Name="Ann" mwg-rs:Type="Face">
     <mwg-rs:Area stArea:x="90" stArea:y="120" stArea:w="100" stArea:h="120" stArea:unit="pixel"/>
   </rdf:Description></rdf:li>
   <rdf:li><rdf:Description mwg-rs:Name="Rex" mwg-rs:Type="Pet">
     <mwg-rs:Area stArea:x="0.5" stArea:y="0.5" stArea:w="0.1" stArea:h="0.1" stArea:unit="normalized"/>
   </rdf:Description></rdf:li>
  </rdf:Bag></mwg-rs:RegionList>
 </rdf:Description></mwg-rs:Regions>
</rdf:Description></rdf:RDF></x:xmpmeta>\x00"""


def _pixels(region) -> tuple[int, int, int, int]:
    return region.pixels(WIDTH, HEIGHT)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_regions_we_write_in_the_stored_frame_read_back_in_the_oriented_one(orientation: int):
    packet = merge_sidecar(PhotoTags(WIDTH, HEIGHT, faces=[FaceRegion("Ann", *BOX)], orientation=orientation))
    regions = regions_in_packet(parse_packet(packet), orientation)
    assert sorted((region.schema, region.name, _pixels(region)) for region in regions) == [
        (MICROSOFT, "Ann", BOX), (MWG, "Ann", BOX)]


def test_struct_fields_as_attributes_nested_descriptions_pixel_units_and_a_trailing_nul():
    regions = regions_in_packet(parse_packet(ATTRIBUTE_FORM), 1)
    assert [(region.name, region.kind, region.is_person) for region in regions] == [
        ("Ann", "Face", True), ("Rex", "Pet", False)]
    assert _pixels(regions[0]) == (40, 60, 100, 120)


@pytest.mark.parametrize("placement", [SIDECAR_APPENDED, SIDECAR_REPLACED, EMBEDDED_MWG, EMBEDDED_MP])
def test_exiftools_regions_are_read_in_each_placement(placement: str, tmp_path: Path):
    photo = tmp_path / "IMG_1.jpg"
    Image.new("RGB", (WIDTH, HEIGHT), "grey").save(photo)
    written = write_regions(photo, placement, [("Zoë d'Arc", (0.1, 0.2, 0.25, 0.4))])
    found = read_photo_regions(photo, tmp_path)
    assert found.problems == []
    (region,) = [sourced for sourced in found.regions]
    assert region.source == written.name and region.tool.startswith("Image::ExifTool")
    assert region.region.name == "Zoë d'Arc" and _pixels(region.region) == (40, 60, 100, 120)


@pytest.mark.parametrize("suffix", [".webp", ".png", ".tif", ".heic"])
def test_regions_embedded_in_other_formats_are_read(suffix: str, tmp_path: Path):
    photo = tmp_path / f"IMG_1{suffix}"
    Image.new("RGB", (WIDTH, HEIGHT), "grey").save(photo)
    subprocess.run([exiftool(), "-q", "-overwrite_original", "-XMP-mwg-rs:RegionInfo={RegionList=[{Area={X=0.225,"
                    "Y=0.4,W=0.25,H=0.4,Unit=normalized},Name=Ann,Type=Face}]}", str(photo)], check=True)
    (region,) = read_photo_regions(photo, tmp_path).regions
    assert region.region.name == "Ann" and _pixels(region.region) == (40, 60, 100, 120)


def test_our_own_sidecar_and_a_link_out_of_the_library_are_not_read(tmp_path: Path):
    library, outside = tmp_path / "library", tmp_path / "outside"
    library.mkdir(), outside.mkdir()
    photo = library / "IMG_1.jpg"
    Image.new("RGB", (WIDTH, HEIGHT), "grey").save(photo)
    (library / "IMG_1.jpg.xmp").write_bytes(merge_sidecar(PhotoTags(WIDTH, HEIGHT, faces=[FaceRegion("Ann", *BOX)])))
    other = outside / "IMG_1.xmp"
    shutil.copyfile(library / "IMG_1.jpg.xmp", other)
    other.write_text(other.read_text().replace('x:xmptk="photo_assets"', 'x:xmptk="digiKam"'))
    (library / "IMG_1.xmp").symlink_to(other)
    assert read_photo_regions(photo, library).regions == []
    assert [r.region.name for r in read_photo_regions(photo, library, follow_links=True).regions] == ["Ann", "Ann"]


def test_a_broken_sidecar_is_a_problem_of_its_own(tmp_path: Path):
    photo = tmp_path / "IMG_1.jpg"
    Image.new("RGB", (WIDTH, HEIGHT)).save(photo)
    (tmp_path / "IMG_1.jpg.xmp").write_bytes(b"<x:xmpmeta><unclosed>")
    (tmp_path / "IMG_1.xmp").write_bytes(ATTRIBUTE_FORM)
    found = read_photo_regions(photo, tmp_path)
    assert [r.region.name for r in found.regions] == ["Ann", "Rex"]
    assert len(found.problems) == 1 and found.problems[0].startswith("IMG_1.jpg.xmp: not well-formed")


def test_regions_match_faces_by_overlap_or_centres_one_to_one():
    faces = [(100, 100, 50, 60), (300, 100, 50, 60)]
    larger = (85, 80, 80, 100)  # another tool's box: hair and chin, IoU below the bar but centres inside each other
    assert match_regions([larger, (500, 500, 40, 40), (95, 95, 60, 70)], faces) == [None, None, 0]
    assert match_regions([larger], faces) == [0]
    assert match_regions([(600, 100, 50, 60)], faces) == [None]


def test_conflicts_silence_every_name_involved_and_changes_are_idempotent():
    placed = [
        PlacedRegion("p1", "f1", "a.jpg.xmp", "Ann"), PlacedRegion("p1", "f1", "a.jpg", " ann "),  # same name
        PlacedRegion("p2", "f2", "b.jpg.xmp", "Bob"), PlacedRegion("p2", "f2", "b.jpg", "Rob"),  # two names
        PlacedRegion("p3", "f3", "c.xmp", "Cy"), PlacedRegion("p3", "f4", "c.xmp", "Cy"),  # one name, two faces
    ]
    desired, conflicts = plan_imports(placed)
    assert sorted((c.kind, c.names) for c in conflicts) == [
        (ONE_NAME_ON_TWO_FACES, ("Cy",)), (TWO_NAMES_ON_ONE_FACE, ("Bob", "Rob"))]
    assert {key: name for key, name in desired.items() if name} == {("f1", "a.jpg.xmp"): "Ann", ("f1", "a.jpg"): "ann"}
    changes = import_changes(desired, {}, {"f1", "f2", "f3", "f4"})
    assert sorted(changes) == [("f1", "a.jpg", "ann"), ("f1", "a.jpg.xmp", "Ann")]
    said = {(face, source): name for face, source, name in changes}
    assert import_changes(desired, said, {"f1"}) == []
    # The region is renamed in one file and gone from the other: an update and a retraction.
    assert import_changes({("f1", "a.jpg.xmp"): "Anne"}, said, {"f1"}) == [
        ("f1", "a.jpg.xmp", "Anne"), ("f1", "a.jpg", None)]
