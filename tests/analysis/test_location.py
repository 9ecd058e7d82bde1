"""Country and town from GPS, on the committed geodata: the GPS corpus against its truth.csv, then chosen places."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely
from scipy.spatial import cKDTree

from photo_assets.analysis.images import read_metadata
from photo_assets.analysis.location import (
    COAST_RADIUS_M,
    EARTH_RADIUS_M,
    LOCATION_COLUMNS,
    METRES_PER_DEGREE,
    TOWN_RADIUS_M,
    GeoIndex,
    haversine_m,
)
from photo_assets.settings import DEFAULT_GEODATA as GEODATA_DIR

# truth.csv rounds town distances to 0.1 km.
TRUTH_ROUNDING_M = 50.0


@pytest.fixture(scope="module")
def geo_index() -> GeoIndex:
    return GeoIndex.load(GEODATA_DIR)


def _locate_one(geo_index: GeoIndex, latitude: float | None, longitude: float | None) -> pd.Series:
    return geo_index.locate(np.array([latitude], dtype=float), np.array([longitude], dtype=float)).iloc[0]


def _truth_rows(shared_dir: Path) -> list[dict[str, str]]:
    with open(shared_dir / "corpus" / "gps" / "truth.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_corpus_photos_get_the_country_and_town_of_truth_csv(shared_dir: Path, geo_index: GeoIndex):
    corpus = shared_dir / "corpus" / "gps"
    rows = [row for row in _truth_rows(shared_dir) if not row["file"].startswith("edge_cases/")]
    assert len(rows) == 37
    metadata = [read_metadata(corpus / row["file"]) for row in rows]
    located = geo_index.locate(
        np.array([m.latitude for m in metadata], dtype=float), np.array([m.longitude for m in metadata], dtype=float)
    )
    problems = []
    for row, meta, (_, found) in zip(rows, metadata, located.iterrows()):
        # "Kenya/KE", or "sea->nearest Croatia/HR 4.8km" where the point is in no polygon.
        country = re.fullmatch(r"(?:sea->nearest )?(.+)/(\w\w)(?: [\d.]+km)?", row["country_10m"])
        town = re.fullmatch(r"(.+) \((\w\w)\) ([\d.]+)km", row["nearest_city1000"])
        town_name, town_m = town.group(1), float(town.group(3)) * 1000
        if meta.latitude is None:
            problems.append(f"{row['file']}: no GPS read, truth has {row['lat']}, {row['lon']}")
            continue
        if (found.country, found.country_code) != country.groups():
            problems.append(f"{row['file']}: country {found.country}/{found.country_code}, truth {country.groups()}")
        if row["country_10m"].startswith("sea->") == pd.isna(found.country_fallback_m):
            problems.append(f"{row['file']}: fallback {found.country_fallback_m} m against truth {row['country_10m']}")
        if found.country_source != ("coast" if row["country_10m"].startswith("sea->") else "polygon"):
            problems.append(f"{row['file']}: country source {found.country_source}, truth {row['country_10m']}")
        # cities500 holds places cities1000 lacks: a different town is right only when it is nearer.
        if pd.isna(found.city) or found.city_distance_m > town_m + TRUTH_ROUNDING_M:
            problems.append(f"{row['file']}: town {found.city} at {found.city_distance_m} m, truth {town.group(0)}")
        elif found.city != town_name and found.city_distance_m >= town_m - TRUTH_ROUNDING_M:
            problems.append(f"{row['file']}: town {found.city} is no nearer than truth {town.group(0)}")
    assert not problems, "\n".join(problems)


def test_edge_case_photos_have_no_location(shared_dir: Path, geo_index: GeoIndex):
    edge_rows = [row for row in _truth_rows(shared_dir) if row["file"].startswith("edge_cases/")]
    assert len(edge_rows) == 4  # three (0, 0) placeholders and one with every GPS rational 0/0
    for row in edge_rows:
        meta = read_metadata(shared_dir / "corpus" / "gps" / row["file"])
        assert (meta.latitude, meta.longitude) == (None, None), row["file"]
        assert _locate_one(geo_index, meta.latitude, meta.longitude).isna().all(), row["file"]


@pytest.mark.parametrize(
    ("place", "latitude", "longitude", "country_code", "source", "town", "town_country_code"),
    [
        # Either side of the Rhine, 4.6 km apart.
        ("Strasbourg", 48.5734, 7.7521, "FR", False, "Strasbourg", "FR"),
        ("Kehl", 48.5723, 7.8150, "DE", False, "Kehl", "DE"),
        # Either side of the Geneva border, 7 km apart.
        ("Geneva", 46.2044, 6.1432, "CH", False, "Geneva", "CH"),
        ("Annemasse", 46.1934, 6.2342, "FR", False, "Annemasse", "FR"),
        # Beaches: on the sand, inside or just outside the 1:10m coastline.
        ("Bondi Beach", -33.8915, 151.2767, "AU", False, "Bondi Beach", "AU"),
        ("Brighton beach", 50.8190, -0.1400, "GB", True, "Brighton", "GB"),
        # Just offshore.
        ("off Nice", 43.68, 7.27, "FR", True, "Vieille Ville", "FR"),
        ("off Copacabana", -22.99, -43.17, "BR", True, "Copacabana", "BR"),
        # Small islands: Lampedusa is in the 1:10m data, Heligoland and Capri fall just outside every polygon.
        ("Lampedusa", 35.5036, 12.6094, "IT", False, "Lampedusa", "IT"),
        ("Heligoland", 54.1817, 7.8856, "DE", True, "Helgoland", "DE"),
        ("Capri", 40.5507, 14.2422, "IT", True, "Capri", "IT"),
        # Overseas departments and territories Natural Earth draws inside a parent's polygon have their own code,
        # as GeoNames gives it, by polygon or by coast; mainland France stays France.
        ("Saint-Denis, Réunion", -20.8789, 55.4481, "RE", False, "Saint-Denis", "RE"),
        ("Pointe-à-Pitre, Guadeloupe", 16.2411, -61.5331, "GP", False, "Pointe-à-Pitre", "GP"),
        ("Mamoudzou, Mayotte", -12.7806, 45.2278, "YT", True, "Mamoudzou", "YT"),
        ("Fort-de-France, Martinique", 14.6037, -61.0594, "MQ", True, "Fort-de-France", "MQ"),
        ("Cayenne, French Guiana", 4.9372, -52.3260, "GF", False, "Cayenne", "GF"),
        ("Longyearbyen, Svalbard", 78.2233, 15.6469, "SJ", True, "Longyearbyen", "SJ"),
        ("Kralendijk, Bonaire", 12.15, -68.27, "BQ", False, "Kralendijk", "BQ"),
        ("Paris", 48.8566, 2.3522, "FR", False, "Paris 04 Hôtel-de-Ville", "FR"),
        # Atolls the 1:10m data lacks, far beyond any coast: the nearest GeoNames place within 10 km names them.
        ("Likiep atoll, Marshall Islands", 9.8351, 169.3107, "MH", "nearest_place", "Likiep", "MH"),
        ("Makin atoll, Kiribati", 3.3644, 172.99, "KI", "nearest_place", "Makin Village", "KI"),
        ("Pulap atoll, Micronesia", 7.6366, 149.43, "FM", "nearest_place", "Pulap", "FM"),
        # Natural Earth's ISO_A2 is "-99" for these.
        ("Oslo", 59.9139, 10.7522, "NO", False, "Oslo", "NO"),
        ("Pristina", 42.6629, 21.1655, "XK", False, "Pristina", "XK"),
        # At sea west of the antimeridian; the nearest Fijian coast (15 km) is east of it.
        ("Koro Sea", -18.96, 179.99, "FJ", True, None, None),
        # Mid-Atlantic and null island: no country within reach, no town.
        ("mid-Atlantic", 30.0, -40.0, None, False, None, None),
        ("null island", 0.0, 0.0, None, False, None, None),
    ],
)
def test_chosen_places(geo_index, place, latitude, longitude, country_code, source, town, town_country_code):
    """`source`: True for the coast fallback, False for a polygon (or no country), or "nearest_place"."""
    found = _locate_one(geo_index, latitude, longitude)
    assert (None if pd.isna(found.country_code) else found.country_code) == country_code
    expected_source = (
        source if isinstance(source, str) else "coast" if source else "polygon" if country_code else None
    )
    assert (None if pd.isna(found.country_source) else found.country_source) == expected_source
    by_fallback = source is True
    assert pd.notna(found.country_fallback_m) == by_fallback
    if by_fallback:
        assert 0 <= found.country_fallback_m <= COAST_RADIUS_M
    assert (None if pd.isna(found.city) else found.city) == town
    assert (None if pd.isna(found.city_country_code) else found.city_country_code) == town_country_code
    if town is None:
        assert pd.isna(found.city_distance_m) and pd.isna(found.city_population)
    else:
        assert 0 <= found.city_distance_m <= TOWN_RADIUS_M and found.city_population >= 0


@pytest.mark.parametrize(
    ("latitude", "longitude", "country_code"),
    [(43.85946944, 15.50328333, "HR"), (43.68, 7.27, "FR"), (65.5, -168.5, "US"), (69.5, 17.0, "NO")],
)
def test_fallback_distance_is_the_haversine_distance_to_the_coast(geo_index, latitude, longitude, country_code):
    """Against brute force: the country's outline cut to a window, densified to ~20 m, every vertex measured."""
    found = _locate_one(geo_index, latitude, longitude)
    assert found.country_code == country_code
    country = geo_index.countries.geometry[geo_index.countries["country_code"] == country_code]
    window = shapely.box(longitude - 1.5, latitude - 0.5, longitude + 1.5, latitude + 0.5)
    coast = shapely.intersection(shapely.union_all(country.boundary.values), window)
    vertices = shapely.get_coordinates(shapely.segmentize(coast, 20 / METRES_PER_DEGREE))
    expected = haversine_m(latitude, longitude, vertices[:, 1], vertices[:, 0]).min()
    assert found.country_fallback_m == pytest.approx(expected, abs=25)


def test_town_radius_is_10_km(geo_index: GeoIndex):
    """An isolated place is the town at 9.9 km due north of it, and nothing is at 10.1 km."""
    cities = geo_index.cities
    phi, lam = np.radians(cities.latitude), np.radians(cities.longitude)
    unit = np.column_stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)])
    neighbour_chord, _ = cKDTree(unit).query(unit, k=2)
    isolated = cities[(neighbour_chord[:, 1] * EARTH_RADIUS_M > 50_000) & (cities.latitude.abs() < 60)].iloc[0]
    for offset_m, expected in ((9_900, isolated["name"]), (10_100, None)):
        latitude = isolated.latitude + offset_m / METRES_PER_DEGREE
        found = _locate_one(geo_index, latitude, isolated.longitude)
        assert (None if pd.isna(found.city) else found.city) == expected
        if expected:
            assert found.city_distance_m == pytest.approx(offset_m, rel=1e-6)
            assert found.city_population == isolated.population


def test_missing_and_invalid_coordinates_give_null_rows_in_input_order(geo_index: GeoIndex):
    latitudes = np.array([48.8578, np.nan, None, 91.0, 41.8530, 12.0], dtype=float)
    longitudes = np.array([2.2970, 2.0, None, 0.0, np.inf, -200.0], dtype=float)
    located = geo_index.locate(latitudes, longitudes)
    assert list(located.columns) == LOCATION_COLUMNS
    assert located.loc[0, "country_code"] == "FR"
    assert located.iloc[1:].isna().all().all()


def test_empty_input_gives_an_empty_frame(geo_index: GeoIndex):
    located = geo_index.locate(np.array([]), np.array([]))
    assert list(located.columns) == LOCATION_COLUMNS and located.empty


def test_countries_data_carries_the_natural_earth_fixes(geo_index: GeoIndex):
    countries = geo_index.countries
    assert countries.geometry.is_valid.all()
    assert not (countries["country_code"] == "-99").any()
    assert {"FR", "NO", "XK", "GB", "CU"} <= set(countries["country_code"].dropna())
    # Only the units no ISO country claims lack a code.
    assert set(countries.loc[countries["country_code"].isna(), "adm0_a3"]) == {"BRT", "PGA", "SCR"}


def test_every_geonames_country_code_has_a_country_of_its_own(geo_index: GeoIndex):
    """The territories Natural Earth folds into a parent's polygon are split out with GeoNames' name."""
    countries = geo_index.countries
    assert set(geo_index.cities["country_code"]) <= set(countries["country_code"].dropna())
    names = dict(zip(countries["country_code"], countries["country"]))
    assert {code: names[code] for code in ("RE", "GP", "MQ", "YT", "GF")} == {
        "RE": "Reunion", "GP": "Guadeloupe", "MQ": "Martinique", "YT": "Mayotte", "GF": "French Guiana"
    }
    france = countries.geometry[countries["adm0_a3"] == "FRA"].iloc[0]
    assert france.bounds[0] > -10 and france.bounds[2] < 10  # metropolitan France and Corsica only


def test_skipping_a_place_leaves_it_out_of_its_own_town_lookup(geo_index: GeoIndex):
    likiep = geo_index.cities.index[geo_index.cities["name"] == "Likiep"][0]
    place = geo_index.cities.loc[likiep]
    alone = geo_index.locate(np.array([place.latitude]), np.array([place.longitude]), skip_places=np.array([likiep]))
    assert pd.isna(alone.loc[0, "city"]) and pd.isna(alone.loc[0, "country_code"])  # no other place within 10 km
    kept = geo_index.locate(np.array([place.latitude]), np.array([place.longitude]), skip_places=np.array([-1]))
    assert kept.loc[0, "city"] == "Likiep" and kept.loc[0, "country_source"] == "nearest_place"
