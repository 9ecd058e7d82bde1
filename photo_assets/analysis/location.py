"""Country and town of GPS points, offline, from the files built into `geodata/` (see geodata/README.md).

Country, in this order, with `country_source` saying which step named it:
- `polygon`: the Natural Earth 1:10m admin-0 polygon containing the point. Overseas departments and territories that
  Natural Earth draws inside a parent's multipolygon (RE, GP, MQ, YT, GF in France's, SJ in Norway's, ...) are rows
  of their own in the committed data, with GeoNames' code and name (geodata/build.py, `split_territories`).
- `coast`: a point in no polygon (a beach, a pier, a boat, an islet the 1:10m coastline leaves out) gets the nearest
  country within COAST_RADIUS_M; the distance is reported in `country_fallback_m`.
- `nearest_place`: a point beyond that too (atolls the 1:10m data lacks: Marshall Islands, Kiribati, Micronesia)
  gets the country of the nearest GeoNames place within TOWN_RADIUS_M, the town below.
Town: the nearest GeoNames place (cities500) within TOWN_RADIUS_M by haversine distance; none beyond. The reference
picked the most populous place within 10 km; the spec is the nearest, with its distance and population kept.
"""

from __future__ import annotations

import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.spatial import cKDTree

COUNTRIES_FILE_NAME = "countries_10m.parquet"
CITIES_FILE_NAME = "cities500.parquet"

# IUGG mean Earth radius: the sphere haversine distances are measured on.
EARTH_RADIUS_M = 6_371_008.8
METRES_PER_DEGREE = EARTH_RADIUS_M * math.pi / 180
# docs/analysis.md: the nearest place within 10 km is the town; farther away a photo has none.
TOWN_RADIUS_M = 10_000.0
# 12 nautical miles, the territorial sea: within it the nearest coast's country is the legal answer, and across a
# strait the nearest country is the median-line one. Measured on the 3,687 GeoNames places (of 234,908) that fall
# outside every 1:10m polygon: 93.6% are within 5 km, 98.0% within 22.2 km; the remaining 2% are atolls missing
# from the 1:10m data, 80-520 km from any polygon, where a larger radius would name whatever is nearest across the
# open ocean (those now take the nearest GeoNames place's country). Agreement with GeoNames' own country code is
# 98.4% at every radius from 1 to 100 km.
COAST_RADIUS_M = 22_224.0
# What named the country (the `country_source` column); null when nothing did.
SOURCE_POLYGON, SOURCE_COAST, SOURCE_NEAREST_PLACE = "polygon", "coast", "nearest_place"

LOCATION_COLUMNS = [
    "country_code",
    "country",
    "country_fallback_m",
    "country_source",
    "city",
    "city_country_code",
    "city_distance_m",
    "city_population",
]


def haversine_m(lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray) -> np.ndarray:
    """Great-circle distance in metres between points given in degrees, element-wise."""
    phi1, phi2 = np.radians(lat1), np.radians(lat2)
    half_dphi = (phi2 - phi1) / 2
    half_dlambda = np.radians(np.asarray(lon2) - np.asarray(lon1)) / 2
    a = np.sin(half_dphi) ** 2 + np.cos(phi1) * np.cos(phi2) * np.sin(half_dlambda) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def _unit_vectors(latitudes: np.ndarray, longitudes: np.ndarray) -> np.ndarray:
    phi, lam = np.radians(latitudes), np.radians(longitudes)
    return np.column_stack((np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)))


class GeoIndex:
    """Countries and towns held in memory with their spatial indexes: build once, then `locate` many points."""

    def __init__(self, countries: gpd.GeoDataFrame, cities: pd.DataFrame):
        self.countries = countries.reset_index(drop=True)
        self.cities = cities.reset_index(drop=True)
        # Indexing each part of a multipolygon on its own keeps bounding boxes tight (France's box would span the
        # globe through its overseas departments); prepared parts answer point-in-polygon in logarithmic time.
        self._parts, self._part_country = shapely.get_parts(self.countries.geometry.values, return_index=True)
        shapely.prepare(self._parts)
        self._part_tree = shapely.STRtree(self._parts)
        # Plain arrays, converted once: taking rows from Arrow-backed columns on every call costs more than the lookup.
        self._country_codes = self.countries["country_code"].to_numpy(dtype=object)
        self._country_names = self.countries["country"].to_numpy(dtype=object)
        # The country row a GeoNames place's code names (for `nearest_place`): for a code with several units (GB:
        # the UK and the Sovereign Base Areas), the largest one; -1 for a code no unit carries.
        by_area = np.argsort(-shapely.area(self.countries.geometry.values), kind="stable")
        code_rows = pd.Series(by_area, index=self._country_codes[by_area])
        code_rows = code_rows[code_rows.index.notna() & ~code_rows.index.duplicated()]
        self._city_names = self.cities["name"].to_numpy(dtype=object)
        self._city_country_codes = self.cities["country_code"].to_numpy(dtype=object)
        self._city_populations = self.cities["population"].to_numpy()
        self._city_latitudes = self.cities["latitude"].to_numpy()
        self._city_longitudes = self.cities["longitude"].to_numpy()
        self._city_tree = cKDTree(_unit_vectors(self._city_latitudes, self._city_longitudes))
        self._city_country_row = (
            code_rows.reindex(self._city_country_codes).fillna(-1).to_numpy(dtype=np.int64)
        )

    @classmethod
    def load(cls, directory: Path) -> GeoIndex:
        """The index over the geodata files in `directory` (the repo's geodata/, see geodata/README.md)."""
        return cls(gpd.read_parquet(directory / COUNTRIES_FILE_NAME), pd.read_parquet(directory / CITIES_FILE_NAME))

    def locate(
        self, latitudes: np.ndarray, longitudes: np.ndarray, skip_places: np.ndarray | None = None
    ) -> pd.DataFrame:
        """One row per point, in input order, with LOCATION_COLUMNS; NaN/None/out-of-range coordinates give nulls.

        `country_fallback_m` is the distance to the nearest country when the coast fallback named it, else null;
        `country_source` is `polygon`, `coast` or `nearest_place` (null: no country). (0, 0) is a real place at sea
        here: mapping it to "no GPS" is the reader's job. `skip_places` (row of `cities` per point, -1 for none)
        leaves a place out of its point's town lookup: measuring on GeoNames' own places, a place never names itself.
        """
        latitudes = np.asarray(latitudes, dtype=np.float64).reshape(-1)
        longitudes = np.asarray(longitudes, dtype=np.float64).reshape(-1)
        if latitudes.shape != longitudes.shape:
            raise ValueError(f"{latitudes.size} latitudes but {longitudes.size} longitudes")
        count = latitudes.size
        valid = np.flatnonzero(
            np.isfinite(latitudes) & np.isfinite(longitudes) & (np.abs(latitudes) <= 90) & (np.abs(longitudes) <= 180)
        )
        lat, lon = latitudes[valid], longitudes[valid]

        country_row = np.full(count, -1)
        fallback_m = np.full(count, np.nan)
        inside = self._containing_country(lat, lon)
        country_row[valid] = inside
        outside = np.flatnonzero(inside < 0)
        nearest, distance = self._nearest_country(lat[outside], lon[outside])
        country_row[valid[outside]] = nearest
        fallback_m[valid[outside]] = np.where(nearest >= 0, distance, np.nan)

        city_row = np.full(count, -1)
        city_distance = np.full(count, np.nan)
        skip = None if skip_places is None else np.asarray(skip_places, dtype=np.int64).reshape(-1)[valid]
        city_row[valid], city_distance[valid] = self._nearest_town(lat, lon, skip)

        source = np.full(count, None, dtype=object)
        source[valid[inside >= 0]] = SOURCE_POLYGON
        source[valid[outside[nearest >= 0]]] = SOURCE_COAST
        by_place = (country_row < 0) & (city_row >= 0)
        country_row[by_place] = self._city_country_row[city_row[by_place]]
        source[by_place & (country_row >= 0)] = SOURCE_NEAREST_PLACE

        return pd.DataFrame(
            {
                "country_code": _take(self._country_codes, country_row, "string"),
                "country": _take(self._country_names, country_row, "string"),
                "country_fallback_m": fallback_m,
                "country_source": pd.array(source, dtype="string"),
                "city": _take(self._city_names, city_row, "string"),
                "city_country_code": _take(self._city_country_codes, city_row, "string"),
                "city_distance_m": city_distance,
                "city_population": _take(self._city_populations, city_row, "Int64"),
            },
            columns=LOCATION_COLUMNS,
        )

    def _containing_country(self, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        """Country row of the polygon containing each point, -1 for none."""
        country = np.full(lat.size, -1)
        point_index, part_index = self._part_tree.query(shapely.points(lon, lat))  # bounding-box candidates
        order = np.argsort(part_index, kind="stable")
        point_index, part_index = point_index[order], part_index[order]
        starts = np.flatnonzero(np.r_[True, part_index[1:] != part_index[:-1]]) if part_index.size else []
        for start, end in zip(starts, [*starts[1:], part_index.size]):
            candidates = point_index[start:end]
            hits = candidates[shapely.contains_xy(self._parts[part_index[start]], lon[candidates], lat[candidates])]
            country[hits] = self._part_country[part_index[start]]
        return country

    def _nearest_country(self, lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(country row, metres) of the nearest country within COAST_RADIUS_M of each point; (-1, inf) for none.

        Each candidate polygon part is clipped to the point's search box and measured in a local equirectangular
        frame (longitudes scaled by cos(latitude)), so the nearest coast is found in metres, not in degrees (which
        would favour east-west neighbours at high latitudes); the distance to that coast point is then haversine.
        """
        country = np.full(lat.size, -1)
        distance = np.full(lat.size, np.inf)
        if not lat.size:
            return country, distance
        half_height = COAST_RADIUS_M / METRES_PER_DEGREE
        half_width = np.minimum(180.0, half_height / np.maximum(np.cos(np.radians(lat)), 1e-9))
        # A search box crossing the antimeridian is searched a second time, shifted by 360 degrees.
        west = np.flatnonzero(lon - half_width < -180)
        east = np.flatnonzero(lon + half_width > 180)
        owner = np.concatenate((np.arange(lat.size), west, east))
        shift = np.concatenate((np.zeros(lat.size), np.full(west.size, 360.0), np.full(east.size, -360.0)))
        box_lat, box_lon, box_half_width = lat[owner], lon[owner] + shift, half_width[owner]
        boxes = shapely.box(box_lon - box_half_width, box_lat - half_height, box_lon + box_half_width,
                            box_lat + half_height)
        box_index, part_index = self._part_tree.query(boxes)
        # Testing against the prepared part is cheap, clipping a large part is not: clip only boxes that reach land.
        reach = shapely.intersects(self._parts[part_index], boxes[box_index])
        box_index, part_index = box_index[reach], part_index[reach]
        coasts = shapely.intersection(self._parts[part_index], boxes[box_index])
        kept = ~shapely.is_empty(coasts)
        box_index, part_index, coasts = box_index[kept], part_index[kept], coasts[kept]
        if not box_index.size:
            return country, distance

        coordinates, coast_of = shapely.get_coordinates(coasts, return_index=True)
        origin = np.column_stack((box_lon[box_index], box_lat[box_index]))
        scale = np.column_stack((np.cos(np.radians(box_lat[box_index])), np.ones(box_index.size)))
        local = shapely.set_coordinates(coasts.copy(), (coordinates - origin[coast_of]) * scale[coast_of])
        nearest_local = shapely.get_coordinates(shapely.shortest_line(shapely.points(0.0, 0.0), local))[1::2]
        nearest_lon, nearest_lat = (nearest_local / scale + origin).T
        metres = haversine_m(box_lat[box_index], box_lon[box_index], nearest_lat, nearest_lon)

        point = owner[box_index]
        best = np.lexsort((metres, point))
        first = best[np.r_[True, point[best][1:] != point[best][:-1]]]
        within = metres[first] <= COAST_RADIUS_M
        country[point[first][within]] = self._part_country[part_index[first][within]]
        distance[point[first][within]] = metres[first][within]
        return country, distance

    def _nearest_town(
        self, lat: np.ndarray, lon: np.ndarray, skip: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(city row, metres) of the nearest GeoNames place within TOWN_RADIUS_M, other than the point's `skip`
        row; (-1, NaN) for none."""
        city = np.full(lat.size, -1)
        distance = np.full(lat.size, np.nan)
        if not lat.size:
            return city, distance
        # Chord length of the radius on the unit sphere, a hair longer so float rounding cannot drop a place that
        # sits exactly at 10 km; the haversine check below is the exact one.
        chord = 2 * math.sin(TOWN_RADIUS_M / EARTH_RADIUS_M / 2) * (1 + 1e-9)
        if skip is None:
            _, index = self._city_tree.query(_unit_vectors(lat, lon), distance_upper_bound=chord)
        else:
            _, pair = self._city_tree.query(_unit_vectors(lat, lon), k=2, distance_upper_bound=chord)
            index = np.where(pair[:, 0] == skip, pair[:, 1], pair[:, 0])
        found = np.flatnonzero(index < len(self.cities))
        metres = haversine_m(
            lat[found], lon[found], self._city_latitudes[index[found]], self._city_longitudes[index[found]]
        )
        within = metres <= TOWN_RADIUS_M
        city[found[within]] = index[found[within]]
        distance[found[within]] = metres[within]
        return city, distance


def _take(values: np.ndarray, rows: np.ndarray, dtype: str) -> pd.api.extensions.ExtensionArray:
    """values[rows] as a nullable column, null where rows is -1."""
    column = pd.array(values[np.maximum(rows, 0)], dtype=dtype)
    column[rows < 0] = pd.NA
    return column
