"""The places page's world map, drawn offline from the project's own Natural Earth countries (geodata/): one SVG path
per country, in an equirectangular projection (x = longitude, y = -latitude, in degrees), simplified for the
browser. Nothing is fetched: no tiles, no fonts, no script from elsewhere.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from photo_assets.analysis.location import COUNTRIES_FILE_NAME

# Degrees: the 1:10m outlines' 547k points become 63k (bench/find.py prints both, and the page's size), and a town's
# coast is still recognisable when the map is zoomed to a region.
SIMPLIFY_DEGREES = 0.05
COORDINATE_DECIMALS = 2  # ~1 km: finer than the simplification
# The world as drawn: Antarctica and the Arctic ocean's edge would take a third of the map and hold no photos.
WORLD_VIEW = (-180.0, -60.0, 180.0, 84.0)  # west, south, east, north
# The map opens on the photos' places with this much margin (degrees), and never closer than MIN_VIEW_SPAN.
VIEW_MARGIN = 4.0
MIN_VIEW_SPAN = 24.0
# Photo counts are shaded on a log scale from the lightest to the darkest of these (a one-hue sequential ramp).
SHADE_LIGHT, SHADE_DARK = (198, 219, 239), (8, 69, 148)


@dataclass(frozen=True)
class CountryShape:
    country_code: str
    country: str
    path: str  # SVG path data


@functools.lru_cache(maxsize=2)
def country_shapes(geodata_dir: Path) -> tuple[CountryShape, ...]:
    """Every country of the geodata, simplified, one shape a country code (read once a process: ~1 s). Natural Earth
    draws some countries' outlying parts as rows of their own (Clipperton for FR, Akrotiri for GB): they join their
    country's shape, named as its largest part. Parts with no code (Bir Tawil, the Spratlys) are shapes of their own."""
    countries = gpd.read_parquet(Path(geodata_dir) / COUNTRIES_FILE_NAME)
    simplified = shapely.simplify(countries.geometry.values, SIMPLIFY_DEGREES, preserve_topology=True)
    parts: dict[str, list[tuple[float, str, str]]] = {}
    for row, (code, name, geometry) in enumerate(zip(countries["country_code"], countries["country"], simplified)):
        if geometry is not None and not geometry.is_empty:
            key = code if isinstance(code, str) else f"#{row}"
            parts.setdefault(key, []).append((geometry.area, name, _path(geometry)))
    return tuple(
        CountryShape(key if not key.startswith("#") else "", max(found)[1], "".join(path for _, _, path in found))
        for key, found in parts.items()
    )


def _path(geometry) -> str:
    rings = []
    for polygon in getattr(geometry, "geoms", [geometry]):
        for ring in (polygon.exterior, *polygon.interiors):
            points = np.round(np.asarray(ring.coords)[:-1], COORDINATE_DECIMALS)
            if len(points) < 3:
                continue
            coordinates = " ".join(f"{x:g} {-y:g}" for x, y in points)
            rings.append(f"M{coordinates}Z")
    return "".join(rings)


def shade(photos: int, most: int) -> str:
    """The fill of a country with `photos` photos, when the busiest has `most`."""
    t = math.log1p(photos) / math.log1p(max(most, 1))
    red, green, blue = (round(light + (dark - light) * t) for light, dark in zip(SHADE_LIGHT, SHADE_DARK))
    return f"#{red:02x}{green:02x}{blue:02x}"


def view_box(points: list[tuple[float, float]]) -> tuple[float, float, float, float]:
    """The SVG viewBox (x, y, width, height) showing every (latitude, longitude) given, or the world if none."""
    west, south, east, north = WORLD_VIEW
    if points:
        latitudes, longitudes = zip(*points)
        south, north = max(south, min(latitudes) - VIEW_MARGIN), min(north, max(latitudes) + VIEW_MARGIN)
        west, east = max(west, min(longitudes) - VIEW_MARGIN), min(east, max(longitudes) + VIEW_MARGIN)
        west, east = _widened(west, east, MIN_VIEW_SPAN, WORLD_VIEW[0], WORLD_VIEW[2])
        south, north = _widened(south, north, MIN_VIEW_SPAN / 2, WORLD_VIEW[1], WORLD_VIEW[3])
    return west, -north, east - west, north - south


def _widened(low: float, high: float, span: float, floor: float, ceiling: float) -> tuple[float, float]:
    if high - low >= span:
        return low, high
    middle = min(max((low + high) / 2, floor + span / 2), ceiling - span / 2)
    return middle - span / 2, middle + span / 2
