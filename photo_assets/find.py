"""The photos matching every filter given, from the Parquet datasets in the data folder (`photo-assets find`,
photo_assets/cli/find.py, is its command line).

    find_photos(layout, FindFilters(...)) -> list[dict]      the query
    format_rows(rows, json_lines=False) -> str               what the command prints

The command's arguments (all filters combine with AND):
    --person NAME|ID       a person's name (any case), number or "Unknown person NNNNNN"; repeat it for photos
                           showing all of them together
    --country CODE|NAME    ISO code ("FR") or country name ("France"), any case
    --city NAME            town name, any case
    --near LAT,LON         photos within --within KM (default 1 km) of this point, by haversine distance
    --within KM
    --colour NAME          a palette colour (Azure, Red, ...) covering at least --min-share of the photo
    --min-share S          (default 0.1)
    --from DATE, --to DATE capture date, inclusive, YYYY-MM-DD (or a full ISO timestamp)
    --camera TEXT          text in the camera's make or model, any case
    --with-faces / --without-faces
                           photos where faces were (not) detected
    --duplicates           photos with a near-duplicate (or an exact copy at another path), grouped: each row
                           names its group
    --object LABEL         one of COCO's 80 labels (dog, bicycle, ...) found in the photo; repeat it for photos
                           showing all of them
    --json                 one JSON object per line, for scripts
    --limit N              at most N photos (default 100; 0 for all)
An unknown person, colour or object label is an error (FindError) that lists the close matches (and for a label, all
80).

Read with pyarrow, not duckdb: pyarrow is already a dependency (every dataset here is written with it), duckdb is not
installed and would add a ~50 MB native wheel for what is a handful of filters and two small joins; pyarrow's
vectorised filters over a generated 100k-photo data folder answer in well under the 1 s target (bench/find.py).
Names come from person_clusters' last run: an edit not yet re-clustered is not seen.
"""

from __future__ import annotations

import difflib
import functools
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from photo_assets.analysis.colours import COLOUR_NAMES
from photo_assets.analysis.objects import LABELS
from photo_assets.storage import DataLayout, DataStore
from photo_assets.storage.layout import COLOR_HISTOGRAMS as COLOURS
from photo_assets.storage.layout import FACE_DETECTIONS as DETECTIONS
from photo_assets.storage.layout import LOCATIONS, OBJECT_DETECTIONS, PHOTOS, files_signature
from photo_assets.storage.people import load_people, load_people_faces

UNKNOWN_PREFIX = "Unknown person "
DEFAULT_WITHIN_KM = 1.0
DEFAULT_MIN_SHARE = 0.1
DEFAULT_LIMIT = 100
CLOSE_MATCHES = 5
EARTH_RADIUS_KM = 6_371.0088
PHOTO_COLUMNS = ["photo_id", "path", "captured_at", "camera_make", "camera_model", "latitude", "longitude", "error",
                 "width", "height", "size"]


class FindError(ValueError):
    """A query that cannot be answered as asked (unknown person or colour, bad argument): the message says why."""


@dataclass(frozen=True)
class FindFilters:
    persons: Sequence[str] = ()
    country: str | None = None
    city: str | None = None
    near: tuple[float, float] | None = None
    within_km: float = DEFAULT_WITHIN_KM
    colour: str | None = None
    min_share: float = DEFAULT_MIN_SHARE
    date_from: datetime | date | None = None
    date_to: datetime | date | None = None
    camera: str | None = None
    with_faces: bool | None = None  # True: with faces, False: without, None: either
    objects: Sequence[str] = ()
    duplicates: bool = False
    limit: int | None = DEFAULT_LIMIT
    offset: int = 0  # matching photos skipped before the first row: a later page of the search page


@dataclass(frozen=True)
class FoundPhotos:
    rows: list[dict]  # the matching photos from `offset`, at most `limit`
    total: int  # every matching photo


@dataclass(frozen=True)
class Place:
    """A country (city None) or a town with photos: how many files, and the mean position of their GPS fixes."""

    country_code: str
    country: str
    city: str | None
    photos: int
    latitude: float
    longitude: float


def _table(layout: DataLayout, name: str, columns: list[str], filter=None) -> pa.Table | None:
    dataset = DataStore(layout).dataset(name)
    return None if dataset is None else dataset.to_table(columns=columns, filter=filter)


def _close(wanted: str, known: list[str]) -> str:
    by_fold = {name.casefold(): name for name in known}
    matches = difflib.get_close_matches(wanted.casefold(), list(by_fold), n=CLOSE_MATCHES, cutoff=0.5)
    matches += [fold for fold in by_fold if wanted.casefold() in fold and fold not in matches]
    shown = [by_fold[fold] for fold in matches[:CLOSE_MATCHES]]
    return f"; did you mean: {', '.join(shown)}?" if shown else ""


def resolve_colour(name: str) -> str:
    for colour in COLOUR_NAMES:
        if colour.casefold() == name.strip().casefold():
            return colour
    hint = _close(name.strip(), COLOUR_NAMES) or f"; colours: {', '.join(COLOUR_NAMES)}"
    raise FindError(f"unknown colour {name!r}{hint}")


def resolve_label(name: str) -> str:
    wanted = name.strip().casefold()
    if wanted in LABELS:
        return wanted
    raise FindError(f"unknown object {name!r}{_close(name.strip(), list(LABELS))}; the 80 labels: {', '.join(LABELS)}")


def _people(layout: DataLayout) -> tuple[pa.Table, pa.Table]:
    faces, people = load_people_faces(layout), load_people(layout)
    if faces is None or people is None:
        raise FindError("no people yet: run `photo-assets run` (with faces) first")
    return faces.select(["photo_id", "person_id", "person_name"]), people.select(["person_id", "name"])


def resolve_person(people: pa.Table, text: str) -> str:
    """The person_id `text` names: a number, "Unknown person NNNNNN" or a name (any case)."""
    wanted = text.strip()
    ids = people["person_id"].to_pylist()
    names = people["name"].to_pylist()
    number = wanted[len(UNKNOWN_PREFIX):] if wanted.casefold().startswith(UNKNOWN_PREFIX.casefold()) else wanted
    if number in ids:
        return number
    found = sorted({person_id for person_id, name in zip(ids, names) if name.casefold() == wanted.casefold()})
    if len(found) == 1:
        return found[0]
    if found:
        raise FindError(f"{text!r} could be any of {', '.join(found)}: give the number")
    named = [name for name in names if not name.startswith(UNKNOWN_PREFIX)]
    raise FindError(f"no person {text!r}{_close(wanted, named)}")


def parse_when(text: str) -> date | datetime:
    """A capture-date bound: YYYY-MM-DD (the whole day) or a full ISO timestamp."""
    try:
        return date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
    except ValueError:
        raise FindError(f"expected a date as YYYY-MM-DD, got {text!r}") from None


def parse_point(text: str) -> tuple[float, float]:
    try:
        latitude, longitude = (float(part) for part in text.split(","))
    except ValueError:
        raise FindError(f"expected LAT,LON, got {text!r}") from None
    return latitude, longitude


def _number(text: str, name: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise FindError(f"{name} must be a number, got {text!r}") from None


# The search page's `faces` parameter: the CLI's --with-faces / --without-faces.
FACES_PARAMETER = {"with": True, "without": False}


def filters_from_query(items: Iterable[tuple[str, str]], limit: int | None, offset: int = 0) -> FindFilters:
    """The filters of a search page URL: each parameter is the `find` option of the same name (person and object
    repeat; from, to; faces=with|without; duplicates=1). Empty and unknown parameters are ignored. Raises
    FindError."""
    values: dict[str, list[str]] = {}
    for key, value in items:
        if value.strip():
            values.setdefault(key, []).append(value.strip())

    def one(key: str) -> str | None:
        return values[key][-1] if key in values else None

    faces = one("faces")
    if faces is not None and faces not in FACES_PARAMETER:
        raise FindError(f"faces must be one of {', '.join(FACES_PARAMETER)}, got {faces!r}")
    return FindFilters(
        persons=values.get("person", []), country=one("country"), city=one("city"),
        near=parse_point(one("near")) if one("near") else None,
        within_km=_number(one("within"), "within") if one("within") else DEFAULT_WITHIN_KM,
        colour=one("colour"),
        min_share=_number(one("min_share"), "min_share") if one("min_share") else DEFAULT_MIN_SHARE,
        date_from=parse_when(one("from")) if one("from") else None,
        date_to=parse_when(one("to")) if one("to") else None,
        camera=one("camera"), with_faces=FACES_PARAMETER.get(faces), objects=values.get("object", []),
        duplicates=one("duplicates") is not None, limit=limit, offset=offset,
    )  # fmt: skip


def _day_bound(value: datetime | date, end: bool) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    return datetime.combine(value, time.max if end else time.min)


def _haversine_km(lat: np.ndarray, lon: np.ndarray, lat0: float, lon0: float) -> np.ndarray:
    phi, phi0 = np.radians(lat), math.radians(lat0)
    a = np.sin((phi - phi0) / 2) ** 2 + np.cos(phi) * math.cos(phi0) * np.sin(np.radians(lon - lon0) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def _keep(photos: pa.Table, photo_ids) -> pa.Table:
    return photos.filter(pc.is_in(photos["photo_id"], value_set=pa.array(photo_ids, pa.string())))


def find_photos(layout: DataLayout, filters: FindFilters) -> list[dict]:
    """Matching photos, oldest first (undated last; with `duplicates`, by group), one dict per file: path, photo_id,
    date, camera, width, height, bytes, latitude, longitude, country, country_code, city, people (names, sorted), and
    with `duplicates` its duplicate_group. Raises FindError."""
    return search_photos(layout, filters).rows


def search_photos(layout: DataLayout, filters: FindFilters) -> FoundPhotos:
    """find_photos' rows from `filters.offset`, and how many photos match in all. Raises FindError."""
    colour = resolve_colour(filters.colour) if filters.colour else None
    labels = [resolve_label(name) for name in filters.objects]
    if filters.near is not None and not (abs(filters.near[0]) <= 90 and abs(filters.near[1]) <= 180):
        raise FindError(f"--near {filters.near[0]},{filters.near[1]} is not a latitude,longitude")
    if filters.within_km is not None and filters.within_km < 0:
        raise FindError("--within must be a distance in km, >= 0")
    faces = people = None
    person_ids: list[str] = []
    if filters.persons:
        faces, people = _people(layout)
        person_ids = [resolve_person(people, text) for text in filters.persons]

    dataset = DataStore(layout).dataset(PHOTOS)
    if dataset is None:
        return FoundPhotos([], 0)
    expression = pc.field("error").is_null()
    if filters.date_from is not None:
        expression &= pc.field("captured_at") >= pa.scalar(_day_bound(filters.date_from, False), pa.timestamp("us"))
    if filters.date_to is not None:
        expression &= pc.field("captured_at") <= pa.scalar(_day_bound(filters.date_to, True), pa.timestamp("us"))
    if filters.near is not None:
        expression &= pc.field("latitude").is_valid()
    photos = dataset.to_table(columns=PHOTO_COLUMNS, filter=expression)

    if filters.camera:
        camera = pc.binary_join_element_wise(pc.fill_null(photos["camera_make"], ""),
                                             pc.fill_null(photos["camera_model"], ""), " ")
        photos = photos.filter(pc.match_substring(pc.utf8_lower(camera), filters.camera.strip().lower()))
    if filters.near is not None:
        distance = _haversine_km(photos["latitude"].to_numpy(zero_copy_only=False),
                                 photos["longitude"].to_numpy(zero_copy_only=False), *filters.near)
        photos = photos.filter(pa.array(distance <= filters.within_km))
    for person_id in person_ids:
        photos = _keep(photos, faces.filter(pc.equal(faces["person_id"], person_id))["photo_id"].unique())
    if colour is not None:
        shares = _table(layout, COLOURS, ["photo_id"],
                        (pc.field("color") == colour) & (pc.field("score") >= filters.min_share))
        photos = _keep(photos, [] if shares is None else shares["photo_id"].unique())
    for label in labels:
        found = _table(layout, OBJECT_DETECTIONS, ["photo_id"], pc.field("label") == label)
        photos = _keep(photos, [] if found is None else found["photo_id"].unique())
    if filters.with_faces is not None:
        detections = _table(layout, DETECTIONS, ["photo_id"])
        with_faces = pa.array([], pa.string()) if detections is None else detections["photo_id"].unique()
        inside = pc.is_in(photos["photo_id"], value_set=with_faces)
        photos = photos.filter(inside if filters.with_faces else pc.invert(inside))

    if filters.country or filters.city:
        # Pushed into the scan: only matching rows are materialised.
        expression = None
        if filters.country:
            wanted = filters.country.strip().casefold()
            expression = (pc.utf8_lower(pc.field("country_code")) == wanted) | (
                pc.utf8_lower(pc.field("country")) == wanted)
        if filters.city:
            city = pc.utf8_lower(pc.field("city")) == filters.city.strip().casefold()
            expression = city if expression is None else expression & city
        located = _table(layout, LOCATIONS, ["photo_id"], expression)
        photos = _keep(photos, [] if located is None else located["photo_id"].unique())

    groups = _duplicate_groups(layout, photos) if filters.duplicates else None
    if groups is not None:
        photos = _keep(photos, list(groups))
        photos = photos.append_column("group", pa.array([groups[photo_id] for photo_id in photos["photo_id"].to_pylist()],
                                                         pa.string()))
        photos = photos.sort_by([("group", "ascending"), ("captured_at", "ascending"), ("path", "ascending")])
    else:
        photos = photos.sort_by([("captured_at", "ascending"), ("path", "ascending")])  # nulls last
    total = photos.num_rows
    photos = photos.slice(filters.offset, filters.limit or None)
    return FoundPhotos(_rows(layout, photos, faces), total)


def places(layout: DataLayout) -> tuple[tuple[Place, ...], tuple[Place, ...]]:
    """The countries and the towns the library's photos were taken in, most photos first. A photo counts as
    find_photos counts it (one per file, readable), so a place's count is what a search for it finds. Kept until the
    catalog or the locations change: the search and places pages ask on every view."""
    return _places(layout, files_signature(layout.batch_files(PHOTOS) + layout.batch_files(LOCATIONS)))


@functools.lru_cache(maxsize=4)
def _places(layout: DataLayout, signature: tuple) -> tuple[tuple[Place, ...], tuple[Place, ...]]:
    photos = _table(layout, PHOTOS, ["photo_id", "latitude", "longitude"], pc.field("error").is_null())
    located = _table(layout, LOCATIONS, ["photo_id", "country_code", "country", "city"],
                     pc.field("country_code").is_valid())
    if photos is None or located is None or not located.num_rows:
        return (), ()
    joined = photos.join(_first_per_photo(located), "photo_id", join_type="inner")
    return _place_counts(joined, ["country_code", "country"]), _place_counts(
        joined.filter(pc.is_valid(joined["city"])), ["country_code", "country", "city"])


def _place_counts(photos: pa.Table, keys: list[str]) -> tuple[Place, ...]:
    counted = photos.group_by(keys).aggregate([("photo_id", "count"), ("latitude", "mean"), ("longitude", "mean")])
    found = [
        Place(row["country_code"], row["country"], row.get("city"), row["photo_id_count"], row["latitude_mean"],
              row["longitude_mean"])
        for row in counted.to_pylist()
    ]
    return tuple(sorted(found, key=lambda place: (-place.photos, place.country, place.city or "")))


def object_counts(layout: DataLayout) -> tuple[tuple[str, int], ...]:
    """The object labels found in the library with how many photos show each, most first (kept as places are)."""
    return _object_counts(layout, files_signature(layout.batch_files(OBJECT_DETECTIONS)))


@functools.lru_cache(maxsize=4)
def _object_counts(layout: DataLayout, signature: tuple) -> tuple[tuple[str, int], ...]:
    found = _table(layout, OBJECT_DETECTIONS, ["photo_id", "label"])
    if found is None:
        return ()
    counted = found.group_by(["label", "photo_id"]).aggregate([]).group_by("label").aggregate([("photo_id", "count")])
    return tuple(sorted(zip(counted["label"].to_pylist(), counted["photo_id_count"].to_pylist()),
                        key=lambda pair: (-pair[1], pair[0])))


def _duplicate_groups(layout: DataLayout, photos: pa.Table) -> dict[str, str]:
    """photo_id -> group of every photo with a near-duplicate (near_duplicates) or an exact copy at another path."""
    groups = {}
    if layout.near_duplicates.exists():
        table = pq.read_table(layout.near_duplicates, columns=["photo_id", "group_id"])
        groups = dict(zip(table["photo_id"].to_pylist(), table["group_id"].to_pylist()))
    counts = photos["photo_id"].value_counts().to_pylist()
    return groups | {entry["values"]: groups.get(entry["values"], entry["values"]) for entry in counts
                     if entry["counts"] > 1}


def _first_per_photo(table: pa.Table) -> pa.Table:
    _, first = np.unique(table["photo_id"].to_numpy(zero_copy_only=False), return_index=True)
    return table.take(np.sort(first))


def _rows(layout: DataLayout, photos: pa.Table, faces: pa.Table | None) -> list[dict]:
    """The output rows of `photos` (in their order), with place and people joined on."""
    if not photos.num_rows:
        return []
    ids = photos["photo_id"].unique()
    photos = photos.append_column("order", pa.array(np.arange(photos.num_rows)))
    located = _table(layout, LOCATIONS, ["photo_id", "country", "country_code", "city"],
                     pc.field("photo_id").isin(ids))
    if located is not None and located.num_rows:
        photos = photos.join(_first_per_photo(located), "photo_id", join_type="left outer")
    if faces is None:
        faces = load_people_faces(layout)
        if faces is not None:
            faces = faces.select(["photo_id", "person_id", "person_name"]).filter(pc.is_in(faces["photo_id"], ids))
    names: dict[str, set[str]] = {}
    if faces is not None:
        shown = _keep(faces, ids)
        shown = shown.filter(pc.is_valid(shown["person_id"]))
        for photo_id, name in zip(shown["photo_id"].to_pylist(), shown["person_name"].to_pylist()):
            names.setdefault(photo_id, set()).add(name)
    photos = photos.sort_by("order")
    # Built column-wise: a 60k-photo answer costs ~0.1 s here, not the ~1.5 s of a Python loop over rows.
    make, model = photos["camera_make"], photos["camera_model"]
    camera = pc.if_else(
        pc.is_null(make), model,
        pc.if_else(pc.is_null(model), make, pc.binary_join_element_wise(make, model, " ")),
    )
    seconds = pc.cast(photos["captured_at"], pa.timestamp("s"), safe=False)
    nothing = pa.nulls(photos.num_rows, pa.string())
    out = pa.table({
        "path": photos["path"],
        "photo_id": photos["photo_id"],
        "date": pc.strftime(seconds, format="%Y-%m-%dT%H:%M:%S"),
        "camera": camera,
        "width": photos["width"],
        "height": photos["height"],
        "bytes": photos["size"],
        "latitude": photos["latitude"],
        "longitude": photos["longitude"],
        **{name: photos[name] if name in photos.column_names else nothing
           for name in ("country", "country_code", "city")},
    })
    rows = out.to_pylist()
    for row, group in zip(rows, photos["group"].to_pylist() if "group" in photos.column_names else [None] * len(rows)):
        if group is not None:
            row["duplicate_group"] = group
        found = names.get(row["photo_id"])
        row["people"] = sorted(found) if found else []
    return rows


def best_copy(rows: list[dict]) -> dict:
    """The copy of a duplicate group to keep: the most pixels, then the oldest capture, then the largest file."""
    return max(rows, key=lambda row: (row["width"] * row["height"], -_timestamp(row["date"]), row["bytes"] or 0))


def _timestamp(date_text: str | None) -> float:
    return datetime.fromisoformat(date_text).timestamp() if date_text else float("inf")


def format_rows(rows: list[dict], json_lines: bool = False) -> str:
    """JSON lines, or one line per photo: date, path, place, people (tab-separated)."""
    if json_lines:
        return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    lines = []
    for row in rows:
        place = ", ".join(part for part in (row["city"], row["country"]) if part)
        fields = [row["date"] or "-", row["path"], place or "-", ", ".join(row["people"]) or "-"]
        lines.append("\t".join(fields + ([f"group {row['duplicate_group'][:12]}"] if "duplicate_group" in row else [])))
    return "".join(line + "\n" for line in lines)
