"""`locations`: country and town of every catalogued photo that has GPS, per batch."""

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from photo_assets.assets.batches import BACKFILL_POLICY, BatchOutcome, materialize_batches
from photo_assets.assets.metadata import preview
from photo_assets.assets.names import ANALYSIS_GROUP, LOCATIONS, PHOTOS
from photo_assets.partitions import photo_batches
from photo_assets.resources import GeoData, PhotoLibrary

LOCATION_VERSION = "location-v2-ne10m-territories-cities500-coast22km-nearestplace10km"
CHECK_COORDINATES = "coordinates_in_range"


@dg.asset(
    partitions_def=photo_batches,
    backfill_policy=BACKFILL_POLICY,
    group_name=ANALYSIS_GROUP,
    kinds={"python", "geopandas", "parquet"},
    code_version=LOCATION_VERSION,
    deps=[PHOTOS],
    check_specs=[dg.AssetCheckSpec(CHECK_COORDINATES, asset=LOCATIONS)],
)
def locations(context: dg.AssetExecutionContext, photo_library: PhotoLibrary, geodata: GeoData) -> dg.MaterializeResult:
    """Country (Natural Earth 1:10m, overseas territories under their own GeoNames code; nearest coast within 12
    nautical miles for points just offshore, with `country_fallback_m` saying so; else the nearest GeoNames place's
    country within 10 km, for atolls; `country_source` says which: polygon, coast or nearest_place) and town
    (nearest GeoNames place within 10 km, with distance and population) for each photo with GPS. One row per
    distinct photo with GPS."""
    metadata, checks = materialize_batches(context, lambda batch_key: _locate_batch(photo_library, geodata, batch_key))
    return dg.MaterializeResult(metadata=metadata[None], check_results=checks)


def _locate_batch(photo_library: PhotoLibrary, geodata: GeoData, batch_key: str) -> BatchOutcome:
    store = photo_library.store()
    catalog = store.read_batch(PHOTOS, batch_key)
    located = catalog.filter(pc.and_(pc.is_valid(catalog["latitude"]), pc.is_null(catalog["error"])))
    # A photo stored twice in the batch is located once.
    _, first = np.unique(located["photo_id"].to_numpy(zero_copy_only=False), return_index=True)
    located = located.take(np.sort(first))
    places = geodata.index().locate(located["latitude"].to_numpy(), located["longitude"].to_numpy())
    table = pa.Table.from_pandas(places, preserve_index=False)
    for position, name in enumerate(["photo_id", "latitude", "longitude"]):
        table = table.add_column(position, name, located[name])
    table = table.append_column("version", pa.array([LOCATION_VERSION] * table.num_rows, pa.string()))
    path = store.write_batch(LOCATIONS, batch_key, table)
    latitudes, longitudes = table["latitude"].to_numpy(), table["longitude"].to_numpy()
    in_range = bool(np.all(np.abs(latitudes) <= 90) and np.all(np.abs(longitudes) <= 180))
    countries = table["country"].drop_null().value_counts().to_pylist()
    sources = table["country_source"].drop_null().value_counts().to_pylist()
    metadata = {
        "dagster/row_count": table.num_rows,
        "path": dg.MetadataValue.path(str(path)),
        "photos_in_batch": catalog.num_rows,
        "photos_with_location": int(pc.sum(pc.is_valid(table["country"])).as_py() or 0),
        "photos_with_town": int(pc.sum(pc.is_valid(table["city"])).as_py() or 0),
        "coast_fallbacks": int(pc.sum(pc.is_valid(table["country_fallback_m"])).as_py() or 0),
        "country_sources": dg.MetadataValue.json({entry["values"]: entry["counts"] for entry in sources}),
        "countries": dg.MetadataValue.json({entry["values"]: entry["counts"] for entry in countries}),
        "preview": preview(
            table, ["photo_id", "latitude", "longitude", "country", "country_source", "city", "city_distance_m"]
        ),
    }
    check = dg.AssetCheckResult(
        check_name=CHECK_COORDINATES,
        passed=in_range,
        description="Every latitude is within ±90 and every longitude within ±180.",
    )
    return {None: metadata}, [check]
