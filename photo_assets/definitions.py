"""The one Definitions object: assets, checks, resources, sensors, schedules and jobs."""

import os

import dagster as dg

from photo_assets import settings
from photo_assets.assets.catalog import photos
from photo_assets.assets.colours import color_histograms
from photo_assets.assets.faces import faces
from photo_assets.assets.locations import locations
from photo_assets.assets.people import (
    every_face_has_a_person,
    face_index,
    face_index_recall,
    label_log,
    person_clusters,
)
from photo_assets.assets.xmp import xmp_sidecars
from photo_assets.jobs import analyse_batch_job, catalog_batch_job, relabel, update_people_job
from photo_assets.library import DEFAULT_MAX_WAIT_SECONDS
from photo_assets.resources import FaceModels, GeoData, PhotoLibrary
from photo_assets.schedules import face_index_schedule
from photo_assets.sensors import new_photos_sensor


def _setting(env_name: str, default) -> str | dg.EnvVar:
    """Read from the environment at run time when set (the UI shows where it came from), else the default."""
    return dg.EnvVar(env_name) if os.environ.get(env_name) else str(default)


def build_resources() -> dict:
    return {
        "photo_library": PhotoLibrary(
            library_dir=_setting(settings.LIBRARY_ENV, settings.library_dir()),
            data_dir=_setting(settings.DATA_ENV, settings.data_dir()),
            max_wait_seconds=(
                dg.EnvVar.int(settings.BATCH_WAIT_ENV) if os.environ.get(settings.BATCH_WAIT_ENV)
                else DEFAULT_MAX_WAIT_SECONDS
            ),
        ),
        "geodata": GeoData(),
        "face_models": FaceModels(),
    }


defs = dg.Definitions(
    assets=[photos, color_histograms, locations, faces, face_index, label_log, person_clusters, xmp_sidecars],
    asset_checks=[face_index_recall, every_face_has_a_person],
    jobs=[analyse_batch_job, catalog_batch_job, update_people_job, relabel],
    schedules=[face_index_schedule],
    sensors=[
        new_photos_sensor,
        # Faces and people follow their inputs by declarative automation, in runs of their own, so the
        # face pool's one-at-a-time limit never holds up colours and locations.
        dg.AutomationConditionSensorDefinition(
            "follow_new_batches",
            target=dg.AssetSelection.all(),
            default_status=dg.DefaultSensorStatus.RUNNING,
            minimum_interval_seconds=30,
        ),
    ],
    resources=build_resources(),
)
