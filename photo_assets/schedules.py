"""`face_index_schedule`: every 5 minutes, rebuild the face index — but only when new faces were embedded."""

import dagster as dg

from photo_assets.assets.names import FACE_EMBEDDINGS_KEY, FACE_INDEX_KEY


def index_is_behind(instance: dg.DagsterInstance) -> tuple[bool, str]:
    """(rebuild?, why): the index is behind when any batch of face_embeddings was materialized after it."""
    embedded = instance.get_latest_materialization_event(FACE_EMBEDDINGS_KEY)
    if embedded is None:
        return False, "no face embeddings yet"
    indexed = instance.get_latest_materialization_event(FACE_INDEX_KEY)
    if indexed is None:
        return True, "the face index was never built"
    if embedded.timestamp > indexed.timestamp:
        partition = embedded.asset_materialization.partition
        return True, f"face embeddings materialized after the index was built (batch {partition})"
    return False, "no face embeddings materialized since the index was last built"


@dg.schedule(
    cron_schedule="*/5 * * * *",
    target=dg.AssetSelection.assets(FACE_INDEX_KEY),
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Rebuilds the Annoy face index when new faces arrived; skips (with the reason) otherwise.",
)
def face_index_schedule(context: dg.ScheduleEvaluationContext):
    rebuild, why = index_is_behind(context.instance)
    if not rebuild:
        return dg.SkipReason(why)
    # One run per tick at most: the key dedupes a tick evaluated twice.
    return dg.RunRequest(run_key=context.scheduled_execution_time.isoformat(), tags={"photo_assets/why": why[:200]})
