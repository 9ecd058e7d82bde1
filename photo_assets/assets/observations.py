"""What the Dagster instance is told outside a run: the label log's new data version after each edit, which makes
person_clusters stale (its automation then re-runs it). The command line, the review pages and the `relabel` job all
report edits through this one function."""

import dagster as dg

from photo_assets.assets.names import LABEL_LOG
from photo_assets.storage import DataLayout, LabelLog

# The tag an observation carries its data version in (what an observable source asset's function returns).
DATA_VERSION_TAG = "dagster/data_version"


def label_log_observation(layout: DataLayout) -> dg.AssetObservation:
    return dg.AssetObservation(asset_key=LABEL_LOG, tags={DATA_VERSION_TAG: LabelLog(layout.label_log).version()})
