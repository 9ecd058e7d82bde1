"""XMP sidecars: what we found about a photo, in the properties digiKam writes and Lightroom, Immich and PhotoPrism
read, merged into whatever sidecar another tool already wrote.

Written with the standard library (xml.etree to parse, a small serializer of our own to write), not with
python-xmp-toolkit (a binding to Debian's native libexempi) or pyexiftool (drives the exiftool Perl program): a
sidecar is a small RDF/XML document, the properties we write are a fixed handful, and the standard library needs
nothing installed at run time on a worker. Serializing ourselves also gives what the asset needs most: the same
input gives byte-identical output (fixed property order, fixed number formats, fixed namespace prefixes), so
re-materializing rewrites nothing that changed. exiftool is used only by the tests, as an independent reader.

What we own, and replace on every write (dropping it when we have nothing to say):
- `mwg-rs:Regions` (MWG regions: `AppliedToDimensions` of the photo as stored, one `Type=Face` region per face
  given, with `Name` (a face without a name, which callers pass only when asked to, gets none) and an `Area` of
  normalized centre x, y and w, h, in the stored photo's frame: readers apply the EXIF orientation to regions, as
  the MWG guidelines say),
- `MP:RegionInfo` (Microsoft People Tags: `MPRI:Regions` of `MPReg:PersonDisplayName` and `MPReg:Rectangle`
  "x, y, w, h", top-left corner, normalized, in the same frame),
- `Iptc4xmpExt:PersonInImage`, `photoshop:Country`, `photoshop:City`, `Iptc4xmpCore:CountryCode`,
  `exif:GPSLatitude`, `exif:GPSLongitude` (XMP's "DDD,MM.mmmmmmN" form).
Keywords are shared with the user, so there we own entries, not the property: `lr:hierarchicalSubject` entries under
`People|`, `Places|`, `Colours|` and `Objects|`, and in `dc:subject` the words those entries spell. Every other property, in any
rdf:Description and in either attribute or element form, is kept as it was.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

X = "adobe:ns:meta/"
XML = "http://www.w3.org/XML/1998/namespace"  # xml:lang: bound by XML itself, never declared
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
DC = "http://purl.org/dc/elements/1.1/"
LR = "http://ns.adobe.com/lightroom/1.0/"
PHOTOSHOP = "http://ns.adobe.com/photoshop/1.0/"
IPTC_CORE = "http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/"
IPTC_EXT = "http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
EXIF = "http://ns.adobe.com/exif/1.0/"
MWG_RS = "http://www.metadataworkinggroup.com/schemas/regions/"
ST_DIM = "http://ns.adobe.com/xap/1.0/sType/Dimensions#"
ST_AREA = "http://ns.adobe.com/xmp/sType/Area#"
MP = "http://ns.microsoft.com/photo/1.2/"
MPRI = "http://ns.microsoft.com/photo/1.2/t/RegionInfo#"
MPREG = "http://ns.microsoft.com/photo/1.2/t/Region#"
# The prefixes we write, as digiKam and exiftool spell them (an existing sidecar's own prefixes win).
PREFIXES = {
    X: "x", XML: "xml", RDF: "rdf", DC: "dc", LR: "lr", PHOTOSHOP: "photoshop", IPTC_CORE: "Iptc4xmpCore",
    IPTC_EXT: "Iptc4xmpExt", EXIF: "exif", MWG_RS: "mwg-rs", ST_DIM: "stDim", ST_AREA: "stArea", MP: "MP",
    MPRI: "MPRI", MPREG: "MPReg",
}
TOOLKIT = "photo_assets"
PACKET_BEGIN = "<?xpacket begin=\"\ufeff\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?>\n"
PACKET_END = "<?xpacket end=\"w\"?>\n"

# Properties replaced as a whole, in the order we write them.
OWNED = [
    (MWG_RS, "Regions"), (MP, "RegionInfo"), (IPTC_EXT, "PersonInImage"),
    (PHOTOSHOP, "Country"), (PHOTOSHOP, "City"), (IPTC_CORE, "CountryCode"),
    (EXIF, "GPSLatitude"), (EXIF, "GPSLongitude"),
]
SUBJECT, HIERARCHICAL_SUBJECT = (DC, "subject"), (LR, "hierarchicalSubject")
PEOPLE_ROOT, PLACES_ROOT, COLOURS_ROOT, OBJECTS_ROOT = "People", "Places", "Colours", "Objects"
OWNED_ROOTS = (PEOPLE_ROOT, PLACES_ROOT, COLOURS_ROOT, OBJECTS_ROOT)
HIERARCHY_SEPARATOR = "|"
DECIMALS = 6
# Characters XML 1.0 cannot carry at all; they are dropped from names.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


class MalformedSidecar(ValueError):
    """An existing sidecar that is not an XMP packet we can merge into: the caller reports it and leaves it alone."""


@dataclass(frozen=True)
class FaceRegion:
    """A face: its person's name ("" for none) and its box in pixels of the oriented photo (top-left corner, width,
    height)."""

    name: str
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class PhotoTags:
    """Everything a sidecar says about one photo. `width`/`height` are of the photo after EXIF orientation."""

    width: int
    height: int
    faces: Sequence[FaceRegion] = ()
    colours: Sequence[str] = ()
    objects: Sequence[str] = ()  # COCO labels found in the photo
    country: str | None = None
    country_code: str | None = None
    city: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    orientation: int = 1  # the photo's EXIF orientation: regions are written in the stored (unrotated) frame


# A normalized top-left rectangle (x, y, w, h) of the oriented photo, in the stored photo's frame, per EXIF
# orientation: MWG regions (and Microsoft People Tags, as digiKam, Immich and PhotoPrism read them) are relative to the
# image as stored, and readers apply the orientation to them. Orientations 6 and 8 undo each other; the others undo
# themselves.
TO_STORED_FRAME = {
    1: lambda x, y, w, h: (x, y, w, h),
    2: lambda x, y, w, h: (1 - x - w, y, w, h),
    3: lambda x, y, w, h: (1 - x - w, 1 - y - h, w, h),
    4: lambda x, y, w, h: (x, 1 - y - h, w, h),
    5: lambda x, y, w, h: (y, x, h, w),
    6: lambda x, y, w, h: (y, 1 - x - w, h, w),
    7: lambda x, y, w, h: (1 - y - h, 1 - x - w, h, w),
    8: lambda x, y, w, h: (1 - y - h, x, h, w),
}
# Orientations that turn the photo a quarter: its stored width is its oriented height.
QUARTER_TURNS = {5, 6, 7, 8}


def _clean(text: str) -> str:
    return _NOT_XML.sub("", str(text)).strip()


def _keyword_part(text: str) -> str:
    """A name as one level of a hierarchical keyword: "|" would split it, so it becomes "/"."""
    return _clean(text).replace(HIERARCHY_SEPARATOR, "/")


def _number(value: float) -> str:
    return f"{min(max(float(value), 0.0), 1.0):.{DECIMALS}f}"


def gps_coordinate(value: float, positive: str, negative: str) -> str:
    """XMP's GPSCoordinate "DDD,MM.mmmmmmK": whole degrees, decimal minutes, hemisphere letter."""
    hemisphere = positive if value >= 0 else negative
    minutes_total = round(abs(value) * 60, DECIMALS)
    degrees, minutes = divmod(minutes_total, 60)
    return f"{int(degrees)},{minutes:0{3 + DECIMALS}.{DECIMALS}f}{hemisphere}"


def hierarchical_keywords(tags: PhotoTags) -> list[str]:
    """People|Name, Places|Country|City, Colours|Colour, Objects|label: each once, in this order."""
    keywords = [f"{PEOPLE_ROOT}|{_keyword_part(name)}" for name in person_names(tags)]
    if tags.country:
        place = [PLACES_ROOT, _keyword_part(tags.country)] + ([_keyword_part(tags.city)] if tags.city else [])
        keywords.append(HIERARCHY_SEPARATOR.join(place))
    keywords += [f"{COLOURS_ROOT}|{_keyword_part(colour)}" for colour in tags.colours]
    keywords += [f"{OBJECTS_ROOT}|{_keyword_part(label)}" for label in sorted(tags.objects)]
    return list(dict.fromkeys(keywords))


def person_names(tags: PhotoTags) -> list[str]:
    return sorted({_clean(face.name) for face in tags.faces if _clean(face.name)})


def _flat(hierarchical: list[str]) -> list[str]:
    """The words hierarchical keywords spell below their root (People|Alice -> Alice; Places|France|Paris -> France,
    Paris), each once."""
    return list(dict.fromkeys(part for keyword in hierarchical for part in keyword.split(HIERARCHY_SEPARATOR)[1:]))


# -- building our properties -------------------------------------------------------------------------------------


def _q(namespace: str, name: str) -> str:
    return f"{{{namespace}}}{name}"


def _simple(parent: ET.Element, namespace: str, name: str, text: str) -> ET.Element:
    element = ET.SubElement(parent, _q(namespace, name))
    element.text = text
    return element


def _resource(parent: ET.Element, namespace: str, name: str) -> ET.Element:
    return ET.SubElement(parent, _q(namespace, name), {_q(RDF, "parseType"): "Resource"})


def _bag(parent: ET.Element, namespace: str, name: str, items: list[str]) -> ET.Element:
    element = ET.SubElement(parent, _q(namespace, name))
    bag = ET.SubElement(element, _q(RDF, "Bag"))
    for item in items:
        ET.SubElement(bag, _q(RDF, "li")).text = item
    return element


def _sorted_faces(tags: PhotoTags) -> list[FaceRegion]:
    return sorted(tags.faces, key=lambda face: (face.x, face.y, face.width, face.height, face.name))


def _owned_properties(tags: PhotoTags) -> list[ET.Element]:
    """Our whole-property values, in OWNED order; properties with nothing to say are absent."""
    holder = ET.Element("holder")
    faces = _sorted_faces(tags)
    if faces and tags.width > 0 and tags.height > 0:
        regions = _resource(holder, MWG_RS, "Regions")
        dimensions = _resource(regions, MWG_RS, "AppliedToDimensions")
        stored = (tags.height, tags.width) if tags.orientation in QUARTER_TURNS else (tags.width, tags.height)
        _simple(dimensions, ST_DIM, "w", str(int(stored[0])))
        _simple(dimensions, ST_DIM, "h", str(int(stored[1])))
        _simple(dimensions, ST_DIM, "unit", "pixel")
        region_bag = ET.SubElement(ET.SubElement(regions, _q(MWG_RS, "RegionList")), _q(RDF, "Bag"))
        people_bag = None
        if any(_clean(face.name) for face in faces):  # People Tags are names: an unnamed face has none
            info = _resource(holder, MP, "RegionInfo")
            people_bag = ET.SubElement(ET.SubElement(info, _q(MPRI, "Regions")), _q(RDF, "Bag"))
        for face in faces:
            name = _clean(face.name)
            left, top, width, height = TO_STORED_FRAME.get(tags.orientation, TO_STORED_FRAME[1])(
                face.x / tags.width, face.y / tags.height, face.width / tags.width, face.height / tags.height
            )
            region = ET.SubElement(region_bag, _q(RDF, "li"), {_q(RDF, "parseType"): "Resource"})
            area = _resource(region, MWG_RS, "Area")
            for axis, value in (("x", left + width / 2), ("y", top + height / 2), ("w", width), ("h", height)):
                _simple(area, ST_AREA, axis, _number(value))
            _simple(area, ST_AREA, "unit", "normalized")
            if name:
                _simple(region, MWG_RS, "Name", name)
            _simple(region, MWG_RS, "Type", "Face")
            if not name:
                continue
            person = ET.SubElement(people_bag, _q(RDF, "li"), {_q(RDF, "parseType"): "Resource"})
            rectangle = ", ".join(_number(value) for value in (left, top, width, height))
            _simple(person, MPREG, "Rectangle", rectangle)
            _simple(person, MPREG, "PersonDisplayName", name)
    names = person_names(tags)
    if names:
        _bag(holder, IPTC_EXT, "PersonInImage", names)
    for namespace, name, value in (
        (PHOTOSHOP, "Country", tags.country),
        (PHOTOSHOP, "City", tags.city),
        (IPTC_CORE, "CountryCode", tags.country_code),
    ):
        if value and _clean(value):
            _simple(holder, namespace, name, _clean(value))
    if tags.latitude is not None and tags.longitude is not None:
        _simple(holder, EXIF, "GPSLatitude", gps_coordinate(tags.latitude, "N", "S"))
        _simple(holder, EXIF, "GPSLongitude", gps_coordinate(tags.longitude, "E", "W"))
    return list(holder)


# -- reading and merging -----------------------------------------------------------------------------------------


def _parse(existing: bytes) -> tuple[ET.Element, dict[str, str]]:
    """(rdf:RDF element, {namespace: prefix as the file spells it}) of an existing sidecar."""
    prefixes: dict[str, str] = {}
    try:
        parser = ET.XMLPullParser(events=("start-ns",))
        parser.feed(existing)
        parser.close()
        for _, (prefix, uri) in parser.read_events():
            prefixes.setdefault(uri, prefix)
        root = ET.fromstring(existing)
    except ET.ParseError as error:
        raise MalformedSidecar(f"not well-formed XML: {error}") from error
    if root.tag == _q(RDF, "RDF"):
        rdf = root
    elif root.tag == _q(X, "xmpmeta") or root.tag == _q(X, "xapmeta"):
        rdf = root.find(_q(RDF, "RDF"))
        if rdf is None:
            raise MalformedSidecar("x:xmpmeta holds no rdf:RDF")
    else:
        raise MalformedSidecar(f"root element {root.tag} is neither x:xmpmeta nor rdf:RDF")
    for child in rdf:
        if child.tag != _q(RDF, "Description"):
            raise MalformedSidecar(f"rdf:RDF holds {child.tag}, not only rdf:Description")
    return rdf, prefixes


def _items(element: ET.Element) -> list[str]:
    """The text items of a Bag/Seq/Alt property (or of a plain-text one, as one item)."""
    containers = [child for child in element if child.tag in {_q(RDF, kind) for kind in ("Bag", "Seq", "Alt")}]
    if containers:
        return [(li.text or "").strip() for container in containers for li in container if li.tag == _q(RDF, "li")]
    text = (element.text or "").strip()
    return [text] if text else []


def merge_sidecar(tags: PhotoTags, existing: bytes | None = None) -> bytes:
    """The sidecar for `tags`: a new packet, or `existing` with our properties replaced and every other kept.

    Raises MalformedSidecar when `existing` is not an XMP packet (the caller must then leave the file alone).
    """
    if existing is None or not existing.strip():
        rdf, prefixes = ET.Element(_q(RDF, "RDF")), {}
    else:
        rdf, prefixes = _parse(existing)
    descriptions = list(rdf)
    if not descriptions:
        descriptions = [ET.SubElement(rdf, _q(RDF, "Description"), {_q(RDF, "about"): ""})]

    owned = {_q(namespace, name) for namespace, name in OWNED}
    keyword_tags = {_q(*SUBJECT), _q(*HIERARCHICAL_SUBJECT)}
    old_subjects: list[str] = []
    old_hierarchy: list[str] = []
    for description in descriptions:
        for attribute in [name for name in description.attrib if name in owned | keyword_tags]:
            value = description.attrib.pop(attribute).strip()
            if attribute == _q(*SUBJECT) and value:
                old_subjects.append(value)
            elif attribute == _q(*HIERARCHICAL_SUBJECT) and value:
                old_hierarchy.append(value)
        for child in list(description):
            if child.tag in owned:
                description.remove(child)
            elif child.tag == _q(*SUBJECT):
                old_subjects += _items(child)
                description.remove(child)
            elif child.tag == _q(*HIERARCHICAL_SUBJECT):
                old_hierarchy += _items(child)
                description.remove(child)

    new_hierarchy = hierarchical_keywords(tags)
    new_subjects = _flat(new_hierarchy)
    ours_before = [keyword for keyword in old_hierarchy if keyword.split(HIERARCHY_SEPARATOR)[0] in OWNED_ROOTS]
    words_before = set(_flat(ours_before))
    hierarchy = [k for k in dict.fromkeys(old_hierarchy) if k not in ours_before and k not in new_hierarchy]
    subjects = [k for k in dict.fromkeys(old_subjects) if k not in words_before and k not in new_subjects]

    target = descriptions[0]
    for element in _owned_properties(tags):
        target.append(element)
    if subjects + new_subjects:
        _bag(target, *SUBJECT, subjects + new_subjects)
    if hierarchy + new_hierarchy:
        _bag(target, *HIERARCHICAL_SUBJECT, hierarchy + new_hierarchy)
    return serialize(rdf, prefixes)


# -- writing -----------------------------------------------------------------------------------------------------


def _collect_namespaces(element: ET.Element, found: set[str]) -> None:
    for name in [element.tag, *element.attrib]:
        if name.startswith("{"):
            found.add(name[1:].split("}", 1)[0])
    for child in element:
        _collect_namespaces(child, found)


def _prefix_map(rdf: ET.Element, existing: dict[str, str]) -> dict[str, str]:
    """A prefix for every namespace used: the sidecar's own, else ours, else ns1, ns2... never one used twice."""
    used: set[str] = {X, RDF}
    _collect_namespaces(rdf, used)
    fixed = (X, XML, RDF)
    chosen: dict[str, str] = {}
    taken: set[str] = {"xml", "xmlns"}
    for uri in sorted(used, key=lambda uri: (uri not in fixed, uri)):
        if uri == XML:
            chosen[uri] = "xml"
            continue
        candidates = [existing.get(uri), PREFIXES.get(uri)] if uri not in fixed else [PREFIXES[uri]]
        prefix = next((p for p in candidates if p and p not in taken), None)
        number = 1
        while prefix is None or prefix in taken:
            prefix, number = f"ns{number}", number + 1
        chosen[uri] = prefix
        taken.add(prefix)
    return chosen


def _name(qualified: str, prefixes: dict[str, str]) -> str:
    if qualified.startswith("{"):
        uri, local = qualified[1:].split("}", 1)
        return f"{prefixes[uri]}:{local}"
    return qualified


def _write(element: ET.Element, prefixes: dict[str, str], depth: int, out: list[str]) -> None:
    indent = " " * depth
    attributes = "".join(f" {_name(name, prefixes)}={quoteattr(value)}" for name, value in element.attrib.items())
    tag = _name(element.tag, prefixes)
    children = list(element)
    if children:
        out.append(f"{indent}<{tag}{attributes}>\n")
        for child in children:
            _write(child, prefixes, depth + 1, out)
        out.append(f"{indent}</{tag}>\n")
    elif element.text and not (element.text.isspace() and "\n" in element.text):  # not indentation left behind
        out.append(f"{indent}<{tag}{attributes}>{escape(element.text, {chr(13): '&#13;'})}</{tag}>\n")
    else:
        out.append(f"{indent}<{tag}{attributes}/>\n")


def serialize(rdf: ET.Element, existing_prefixes: dict[str, str] | None = None) -> bytes:
    """The packet: x:xmpmeta around rdf:RDF, every namespace declared on rdf:RDF, one element per line."""
    prefixes = _prefix_map(rdf, existing_prefixes or {})
    declarations = "".join(
        f"\n    xmlns:{prefix}={quoteattr(uri)}" for uri, prefix in sorted(prefixes.items(), key=lambda p: p[1])
        if uri not in (X, XML)
    )
    out = [PACKET_BEGIN, f"<x:xmpmeta xmlns:x={quoteattr(X)} x:xmptk={quoteattr(TOOLKIT)}>\n",
           f" <rdf:RDF{declarations}>\n"]
    for description in rdf:
        _write(description, prefixes, 2, out)
    out += [" </rdf:RDF>\n", "</x:xmpmeta>\n", PACKET_END]
    return "".join(out).encode("utf-8")
