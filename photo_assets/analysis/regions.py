"""Face regions other tools wrote: read from XMP (sidecars beside a photo, or embedded in it), put in the oriented
photo's pixels, and matched to the faces found (docs/analysis.md, Names from other tools).

Two schemas carry names on faces:
- MWG regions (`mwg-rs:Regions`, written by digiKam, Lightroom, darktable, Picasa exports, exiftool): a
  `RegionList` of `Area` (centre x, y and w, h; normalised, or pixels of `AppliedToDimensions`), `Name` and `Type`;
  only `Type` Face (or none given) is a person: Pet, Focus and BarCode regions are read and left aside.
- Microsoft People Tags (`MP:RegionInfo`, written by Windows Photo Gallery): `MPRI:Regions` of
  `MPReg:PersonDisplayName` and `MPReg:Rectangle` "left, top, w, h", normalised.
Both are relative to the image as stored; readers apply the photo's EXIF orientation, as the MWG guidelines say and as
digiKam, Immich and PhotoPrism do, so a region is turned into the oriented frame the faces are found in.
Structs may come as `rdf:parseType="Resource"`, as a nested `rdf:Description`, and fields as attributes or elements:
all are read. XML is parsed by expat, whose entity-amplification limits stop a hostile packet.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from photo_assets.analysis.images import PhotoError, read_embedded_xmp
from photo_assets.analysis.xmp import MP, MPREG, MPRI, MWG_RS, RDF, ST_AREA, ST_DIM, TO_STORED_FRAME, X

XMP_BASIC = "http://ns.adobe.com/xap/1.0/"
MWG, MICROSOFT = "mwg", "mp"
FACE_TYPE = "Face"
# Sidecar names tools write beside IMG_1.jpg: digiKam and darktable append (IMG_1.jpg.xmp), Lightroom replaces the
# extension (IMG_1.xmp). Both are read when both exist, each a source of its own.
SIDECAR_SUFFIX = ".xmp"
# A sidecar larger than this is no XMP packet a photo tool wrote (digiKam's largest are a few hundred KB).
MAX_SIDECAR_BYTES = 8 * 1024 * 1024
# The toolkit name in the sidecars we write (photo_assets.analysis.xmp): beside the photos, those are ours, not a
# user's labels, and are never read back.
OUR_TOOLKIT = "photo_assets"
# A region names a found face when their boxes overlap this much (intersection over union), or each box holds the
# other's centre: other detectors draw boxes of other proportions (digiKam's take in hair and chin, Windows' are
# tight), so overlap alone misses true pairs, and centres alone pair neighbours in a crowd.
MATCH_MIN_IOU = 0.3
# Orientation -> the orientation whose mapping undoes it (6 and 8 undo each other; every other one undoes itself).
INVERSE_ORIENTATION = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 8, 7: 7, 8: 6}


class UnreadableXmp(ValueError):
    """An XMP packet that is not well-formed XML, or not XMP: reported for its photo, other sources still read."""


@dataclass(frozen=True)
class Region:
    """A named (or unnamed) region of another tool: normalised top-left box in the oriented photo's frame."""

    name: str
    kind: str  # MWG Type: Face, Pet, Focus, BarCode (Microsoft People Tags are all Face)
    schema: str  # MWG or MICROSOFT
    x: float
    y: float
    width: float
    height: float

    @property
    def is_person(self) -> bool:
        return self.kind == FACE_TYPE and bool(self.name)

    def pixels(self, width: int, height: int) -> tuple[int, int, int, int]:
        """(x, y, w, h) in pixels of a photo of this oriented size, clipped to it."""
        left, top = max(0.0, self.x) * width, max(0.0, self.y) * height
        right, bottom = min(1.0, self.x + self.width) * width, min(1.0, self.y + self.height) * height
        x, y = round(left), round(top)
        return x, y, max(0, round(right) - x), max(0, round(bottom) - y)


def sidecar_candidates(photo: Path) -> list[Path]:
    """The sidecars other tools write beside a photo, in order of preference (digiKam's naming first)."""
    appended = photo.with_name(photo.name + SIDECAR_SUFFIX)
    replaced = photo.with_suffix(SIDECAR_SUFFIX)
    return [appended] if replaced == photo else [appended, replaced]


def _q(namespace: str, name: str) -> str:
    return f"{{{namespace}}}{name}"


def _fields(node: ET.Element) -> dict[str, ET.Element | str]:
    """A struct's fields, from attributes and child elements alike, through a nested rdf:Description."""
    found: dict[str, ET.Element | str] = {key: value for key, value in node.attrib.items()
                                          if not key.startswith(f"{{{RDF}}}")}
    for child in node:
        if child.tag == _q(RDF, "Description"):
            found.update(_fields(child))
        else:
            found[child.tag] = child
    return found


def _struct(value: ET.Element | str | None) -> dict[str, ET.Element | str]:
    return {} if value is None or isinstance(value, str) else _fields(value)


def _text(value: ET.Element | str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    alternatives = value.findall(f"{_q(RDF, 'Alt')}/{_q(RDF, 'li')}")  # a language alternative: its first text
    return ((alternatives[0].text if alternatives else value.text) or "").strip()


def _items(value: ET.Element | str | None) -> list[ET.Element]:
    if value is None or isinstance(value, str):
        return []
    return [item for container in value for item in container if item.tag == _q(RDF, "li")]


def _number(value: ET.Element | str | None) -> float | None:
    try:
        number = float(_text(value))
    except ValueError:
        return None
    return number if number == number and abs(number) != float("inf") else None


def _oriented(box: tuple[float, float, float, float], orientation: int) -> tuple[float, float, float, float]:
    return TO_STORED_FRAME[INVERSE_ORIENTATION.get(orientation, 1)](*box)


def _mwg_regions(regions: ET.Element, orientation: int) -> list[Region]:
    fields = _fields(regions)
    dimensions = _struct(fields.get(_q(MWG_RS, "AppliedToDimensions")))
    applied = _number(dimensions.get(_q(ST_DIM, "w"))), _number(dimensions.get(_q(ST_DIM, "h")))
    found = []
    for item in _items(fields.get(_q(MWG_RS, "RegionList"))):
        region = _fields(item)
        area = _struct(region.get(_q(MWG_RS, "Area")))
        centre_x, centre_y, width, height = (_number(area.get(_q(ST_AREA, axis))) for axis in ("x", "y", "w", "h"))
        if None in (centre_x, centre_y, width, height) or width <= 0 or height <= 0:
            continue
        if _text(area.get(_q(ST_AREA, "unit"))).lower() == "pixel":
            if not applied[0] or not applied[1]:
                continue  # pixels of an unknown size: no place on the photo
            centre_x, width, centre_y, height = (centre_x / applied[0], width / applied[0],
                                                 centre_y / applied[1], height / applied[1])
        box = _oriented((centre_x - width / 2, centre_y - height / 2, width, height), orientation)
        kind = _text(region.get(_q(MWG_RS, "Type"))) or FACE_TYPE
        found.append(Region(_text(region.get(_q(MWG_RS, "Name"))), kind, MWG, *box))
    return found


def _microsoft_regions(info: ET.Element, orientation: int) -> list[Region]:
    found = []
    for item in _items(_fields(info).get(_q(MPRI, "Regions"))):
        region = _fields(item)
        try:
            x, y, width, height = (float(part) for part in _text(region.get(_q(MPREG, "Rectangle"))).split(","))
        except ValueError:
            continue
        if width <= 0 or height <= 0:
            continue
        box = _oriented((x, y, width, height), orientation)
        found.append(Region(_text(region.get(_q(MPREG, "PersonDisplayName"))), FACE_TYPE, MICROSOFT, *box))
    return found


def parse_packet(packet: bytes) -> ET.Element:
    """The root of an XMP packet (x:xmpmeta or rdf:RDF)."""
    try:
        # Writers pad packets, and some end them with a NUL (a C string's end) that XML does not allow.
        root = ET.fromstring(packet.rstrip(b"\x00 \t\r\n"))
    except ET.ParseError as error:
        raise UnreadableXmp(f"not well-formed XML: {error}") from error
    if root.tag not in {_q(X, "xmpmeta"), _q(X, "xapmeta"), _q(RDF, "RDF")}:
        raise UnreadableXmp(f"root element {root.tag} is not XMP")
    return root


def written_by_us(root: ET.Element) -> bool:
    return root.get(_q(X, "xmptk")) == OUR_TOOLKIT


def regions_in_packet(root: ET.Element, orientation: int) -> list[Region]:
    """Every MWG region and Microsoft People Tag of a parsed packet, in the oriented photo's frame."""
    found = []
    for regions in root.iter(_q(MWG_RS, "Regions")):
        found += _mwg_regions(regions, orientation)
    for info in root.iter(_q(MP, "RegionInfo")):
        found += _microsoft_regions(info, orientation)
    return found


@dataclass(frozen=True)
class SourcedRegion:
    """A region and where it was read: the file (relative to the library) and the tool that wrote it, if it says."""

    region: Region
    source: str
    tool: str


@dataclass(frozen=True)
class PhotoRegions:
    regions: list[SourcedRegion]
    problems: list[str]  # sources that could not be read, each with why: the others still count


def sidecar_signature(photo: Path) -> str:
    """Changes when a sidecar beside the photo appears, goes, or is rewritten (name, size, mtime): a photo's regions
    are read again only then, or when the photo itself changes."""
    parts = []
    for sidecar in sidecar_candidates(photo):
        try:
            status = sidecar.stat()
        except OSError:
            continue
        parts.append(f"{sidecar.name}:{status.st_size}:{status.st_mtime_ns}")
    return "|".join(parts)


def _inside(path: Path, library: Path) -> bool:
    return path.resolve().is_relative_to(library.resolve())


def _tool(root: ET.Element) -> str:
    creator = next((_text(element) for element in root.iter(_q(XMP_BASIC, "CreatorTool"))), "")
    return creator or root.get(_q(X, "xmptk"), "")


def read_photo_regions(photo: Path, library: Path, follow_links: bool = False) -> PhotoRegions:
    """Every region of the photo's sidecars (both namings) and of the XMP embedded in it, each with its source.
    A sidecar we wrote beside the photo is skipped (not a user's label); so is one that links out of the library,
    unless `follow_links`. One unreadable source is a problem reported, never an exception."""
    problems: list[str] = []
    try:
        embedded, orientation = read_embedded_xmp(photo)
    except PhotoError as error:
        embedded, orientation = None, 1
        problems.append(f"{photo.name}: {error}")
    packets = [(photo, embedded)] if embedded else []
    for sidecar in sidecar_candidates(photo):
        if not sidecar.is_file() or not (follow_links or _inside(sidecar, library)):
            continue
        try:
            if sidecar.stat().st_size > MAX_SIDECAR_BYTES:
                raise UnreadableXmp(f"larger than {MAX_SIDECAR_BYTES} bytes")
            packets.append((sidecar, sidecar.read_bytes()))
        except (OSError, UnreadableXmp) as error:
            problems.append(f"{sidecar.name}: {error}")
    found = []
    for path, packet in packets:
        try:
            root = parse_packet(packet)
        except UnreadableXmp as error:
            problems.append(f"{path.name}: {error}")
            continue
        if path != photo and written_by_us(root):
            continue
        source, tool = os.path.relpath(path, library), _tool(root)
        found += [SourcedRegion(region, source, tool) for region in regions_in_packet(root, orientation)]
    return PhotoRegions(found, problems)


# -- matching regions to found faces --------------------------------------------------------------------------------

Box = tuple[float, float, float, float]  # x, y, w, h


def overlap(first: Box, second: Box) -> float:
    """Intersection over union of two boxes."""
    left, top = max(first[0], second[0]), max(first[1], second[1])
    right = min(first[0] + first[2], second[0] + second[2])
    bottom = min(first[1] + first[3], second[1] + second[3])
    inter = max(0.0, right - left) * max(0.0, bottom - top)
    union = first[2] * first[3] + second[2] * second[3] - inter
    return inter / union if union > 0 else 0.0


def _holds_centre(box: Box, other: Box) -> bool:
    centre_x, centre_y = other[0] + other[2] / 2, other[1] + other[3] / 2
    return box[0] <= centre_x <= box[0] + box[2] and box[1] <= centre_y <= box[1] + box[3]


def match_regions(regions: Sequence[Box], faces: Sequence[Box]) -> list[int | None]:
    """For each region, the face it names (an index into `faces`) or None; one region per face and one face per
    region, the best overlapping pairs first."""
    pairs = []
    for region_index, region in enumerate(regions):
        for face_index, face in enumerate(faces):
            shared = overlap(region, face)
            if shared >= MATCH_MIN_IOU or (_holds_centre(region, face) and _holds_centre(face, region)):
                pairs.append((-shared, region_index, face_index))
    matched: list[int | None] = [None] * len(regions)
    taken: set[int] = set()
    for _, region_index, face_index in sorted(pairs):
        if matched[region_index] is None and face_index not in taken:
            matched[region_index] = face_index
            taken.add(face_index)
    return matched


# -- from regions to imported names -------------------------------------------------------------------------------

TWO_NAMES_ON_ONE_FACE = "two_names_on_one_face"
ONE_NAME_ON_TWO_FACES = "one_name_on_two_faces"


@dataclass(frozen=True)
class PlacedRegion:
    """A person region of a photo and the face it names (found by the detector, or added for it)."""

    photo_id: str
    face_id: str
    source: str
    name: str


@dataclass(frozen=True)
class Conflict:
    """Regions that disagree, so none of them names a face: two names on one face, or one name on two faces of
    one photo."""

    kind: str
    photo_id: str
    names: tuple[str, ...]
    face_ids: tuple[str, ...]
    sources: tuple[str, ...]


def plan_imports(placed: Sequence[PlacedRegion]) -> tuple[dict[tuple[str, str], str | None], list[Conflict]]:
    """What each source should say of each face it names ((face_id, source) -> name, None where a conflict
    silences it), and the conflicts. Names compare without regard to case or surrounding spaces."""
    by_face: dict[str, list[PlacedRegion]] = {}
    by_photo_name: dict[tuple[str, str], list[PlacedRegion]] = {}
    for region in placed:
        by_face.setdefault(region.face_id, []).append(region)
        by_photo_name.setdefault((region.photo_id, region.name.strip().casefold()), []).append(region)
    conflicts, silenced = [], set()
    for face_id, regions in sorted(by_face.items()):
        if len({region.name.strip().casefold() for region in regions}) > 1:
            conflicts.append(_conflict(TWO_NAMES_ON_ONE_FACE, regions))
            silenced.add(face_id)
    for _, regions in sorted(by_photo_name.items()):
        if len({region.face_id for region in regions}) > 1:
            conflicts.append(_conflict(ONE_NAME_ON_TWO_FACES, regions))
            silenced |= {region.face_id for region in regions}
    desired = {(region.face_id, region.source): None if region.face_id in silenced else region.name.strip()
               for region in placed}
    return desired, conflicts


def _conflict(kind: str, regions: list[PlacedRegion]) -> Conflict:
    return Conflict(kind, regions[0].photo_id, tuple(sorted({region.name.strip() for region in regions})),
                    tuple(sorted({region.face_id for region in regions})),
                    tuple(sorted({region.source for region in regions})))


def import_changes(
    desired: dict[tuple[str, str], str | None], said: dict[tuple[str, str], str | None], known_faces: set[str]
) -> list[tuple[str, str, str | None]]:
    """(face_id, source, name) records that bring what the label log says (`said`: its latest import per face and
    source) to what the files say now: nothing when nothing changed. A source that no longer names a face still
    present (its region removed or renamed away, or now in conflict) is recorded as naming it no more."""
    changes = [(face, source, name) for (face, source), name in sorted(desired.items(), key=_key)
               if said.get((face, source)) != name and (name is not None or said.get((face, source)))]
    changes += [(face, source, None) for (face, source), name in sorted(said.items(), key=_key)
                if name and (face, source) not in desired and face in known_faces]
    return changes


def _key(item):
    return item[0]
