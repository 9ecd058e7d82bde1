"""Every asset, group and pool name of the Dagster layer, spelled once. Per-batch assets are named as the datasets
they write (photo_assets.storage.layout)."""

import dagster as dg
from dagster_celery.tags import DAGSTER_CELERY_QUEUE_TAG

from photo_assets.storage.layout import (
    COLOR_HISTOGRAMS,
    FACE_DETECTIONS,
    FACE_EMBEDDINGS,
    LOCATIONS,
    NEAR_DUPLICATES,
    OBJECT_DETECTIONS,
    PHOTOS,
)

ADDED_FACES = "added_faces"
FACE_INDEX = "face_index"
LABEL_LOG = "label_log"
PERSON_CLUSTERS = "person_clusters"
XMP_SIDECARS = "xmp_sidecars"

PHOTOS_KEY = dg.AssetKey(PHOTOS)
COLOR_HISTOGRAMS_KEY = dg.AssetKey(COLOR_HISTOGRAMS)
LOCATIONS_KEY = dg.AssetKey(LOCATIONS)
FACE_DETECTIONS_KEY = dg.AssetKey(FACE_DETECTIONS)
FACE_EMBEDDINGS_KEY = dg.AssetKey(FACE_EMBEDDINGS)
OBJECT_DETECTIONS_KEY = dg.AssetKey(OBJECT_DETECTIONS)
NEAR_DUPLICATES_KEY = dg.AssetKey(NEAR_DUPLICATES)
ADDED_FACES_KEY = dg.AssetKey(ADDED_FACES)
FACE_INDEX_KEY = dg.AssetKey(FACE_INDEX)
LABEL_LOG_KEY = dg.AssetKey(LABEL_LOG)
PERSON_CLUSTERS_KEY = dg.AssetKey(PERSON_CLUSTERS)
XMP_SIDECARS_KEY = dg.AssetKey(XMP_SIDECARS)

CATALOG_GROUP = "catalog"
ANALYSIS_GROUP = "analysis"
FACES_GROUP = "faces"
OBJECTS_GROUP = "objects"  # found in the faces step's pass, sharing its decode
DUPLICATES_GROUP = "duplicates"
PEOPLE_GROUP = "people"
SIDECARS_GROUP = "sidecars"

# Concurrency pools (limits in dagster_home/dagster.yaml): one face step and one people step at a time across runs.
FACE_POOL = "face_models"
PEOPLE_POOL = "people"
# The Celery queue of the face steps (docs/scale-out.md): only the workers serving it need the face models and the
# memory for them; every other step goes to dagster-celery's default queue, "dagster". Ignored by other executors.
FACES_QUEUE = "faces"
FACE_STEP_TAGS = {DAGSTER_CELERY_QUEUE_TAG: FACES_QUEUE}

# What the sensor asks for each new batch; faces follow in runs of their own (declarative automation).
CATALOG_ASSETS = dg.AssetSelection.groups(CATALOG_GROUP, ANALYSIS_GROUP)
PER_BATCH_ASSETS = CATALOG_ASSETS | dg.AssetSelection.groups(FACES_GROUP, OBJECTS_GROUP)
