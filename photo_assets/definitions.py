"""The one Definitions object: assets, checks, resources, sensors, schedules and jobs, built from the settings."""

import dagster as dg
from dagster_celery import celery_executor

from photo_assets import settings
from photo_assets.assets.added_faces import added_faces
from photo_assets.assets.batches import backfill_policy
from photo_assets.assets.catalog import photos
from photo_assets.assets.colours import color_histograms
from photo_assets.assets.duplicates import near_duplicates
from photo_assets.assets.faces import faces
from photo_assets.assets.locations import locations
from photo_assets.assets.people import (
    every_face_has_a_person,
    every_person_is_plausible,
    face_index,
    face_index_recall,
    label_log,
    person_clusters,
)
from photo_assets.assets.xmp import xmp_sidecars
from photo_assets.jobs import analyse_batch_job, catalog_batch_job, relabel, update_people_job, write_sidecars_job
from photo_assets.resources import FaceModels, GeoData, PhotoLibrary
from photo_assets.schedules import face_index_schedule
from photo_assets.sensors import new_photos_sensor


def _path(config: settings.Settings, env_name: str, value) -> str | dg.EnvVar:
    """A setting the environment gave is read from it at run time (the UI shows where it came from); one given
    explicitly (the command line's flags, a default) is passed as it is."""
    return dg.EnvVar(env_name) if env_name in config.from_environment else str(value)


def build_resources(config: settings.Settings) -> dict:
    wait = config.batch_wait_seconds
    return {
        "photo_library": PhotoLibrary(
            library_dir=_path(config, settings.LIBRARY_ENV, config.library_dir),
            data_dir=_path(config, settings.DATA_ENV, config.data_dir),
            max_wait_seconds=dg.EnvVar.int(settings.BATCH_WAIT_ENV)
            if settings.BATCH_WAIT_ENV in config.from_environment else wait,
            review_url=_path(config, settings.REVIEW_URL_ENV, config.review_url),
        ),
        "geodata": GeoData(geodata_dir=_path(config, settings.GEODATA_ENV, config.geodata_dir)),
        "face_models": FaceModels(
            models_dir=_path(config, settings.MODELS_ENV, config.models_dir),
            descriptor=_path(config, settings.FACE_DESCRIPTOR_ENV, config.face_descriptor),
        ),
    }


def build_executor(config: settings.Settings) -> dg.ExecutorDefinition | None:
    """Celery when a broker is set (face steps to their own queue, by their tag); else Dagster's default, a process
    per step for launched runs."""
    if config.celery_broker is None:
        return None
    return celery_executor.configured({"broker": config.celery_broker, "backend": config.celery_backend})


def build_definitions(config: settings.Settings) -> dg.Definitions:
    # A backfill puts this many batches in one run: part of each per-batch asset's definition.
    policy = backfill_policy(config.batches_per_backfill_run)
    per_batch = [asset.with_attributes(backfill_policy=policy)
                 for asset in (photos, color_histograms, locations, faces, xmp_sidecars)]
    return dg.Definitions(
        assets=[*per_batch, added_faces, face_index, label_log, person_clusters, near_duplicates],
        asset_checks=[face_index_recall, every_face_has_a_person, every_person_is_plausible],
        jobs=[analyse_batch_job, catalog_batch_job, update_people_job, write_sidecars_job, relabel],
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
        resources=build_resources(config),
        executor=build_executor(config),
    )


defs = build_definitions(settings.Settings.from_env())
