"""`new_photos_sensor`: walks the library, cuts batches of new files, and asks for them to be analysed."""

import dagster as dg

from photo_assets.assets.names import CATALOG_ASSETS
from photo_assets.partitions import photo_batches
from photo_assets.resources import PhotoLibrary
from photo_assets.storage.scanner import ScanCursor

# A sensor tick is cut off after 60 s by default; walking stops well before, and resumes from the cursor.
SCAN_BUDGET_SECONDS = 30


def plan_batches(
    photo_library: PhotoLibrary, cursor: ScanCursor, known_partitions: set[str], time_budget_s: float | None
) -> tuple[ScanCursor, list[str], list[str], str]:
    """Scan, cut batches; return (next cursor, partitions to add, batches to (re)materialize, summary)."""
    library = photo_library.scanner()
    try:
        report = library.scan(cursor, time_budget_s=time_budget_s)
        library.cut_batches(photo_library.batch_size, photo_library.max_wait_seconds, scan_complete=report.complete)
        dirty = library.take_dirty_batches()
        all_batches = library.batch_keys()
        pending = library.pending_count()
    finally:
        library.close()
    new = [key for key in all_batches if key not in known_partitions]
    rerun = [key for key in dirty if key not in new]
    summary = (
        f"{'complete' if report.complete else 'partial'} walk: {report.files_seen} files seen, "
        f"{report.new_or_changed} new or changed, {report.deleted} deleted; {len(new)} new batches, "
        f"{len(rerun)} batches to refresh, {pending} files pending"
    )
    return report.cursor, new, rerun, summary


@dg.sensor(
    target=CATALOG_ASSETS,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def new_photos_sensor(context: dg.SensorEvaluationContext, photo_library: PhotoLibrary) -> dg.SensorResult:
    """New and changed files become batches; a batch whose files changed or vanished is re-materialized, so
    deleted photos disappear downstream. Files are identified by content hash: a moved file is not re-analysed."""
    known = set(context.instance.get_dynamic_partitions(photo_batches.name))
    cursor, new, rerun, summary = plan_batches(
        photo_library, ScanCursor.from_json(context.cursor), known, SCAN_BUDGET_SECONDS
    )
    context.log.info(summary)
    # A new batch runs once (its key dedupes the request); a refreshed batch runs every time it changes.
    requests = [dg.RunRequest(partition_key=key, run_key=key) for key in new]
    requests += [dg.RunRequest(partition_key=key) for key in rerun]
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[photo_batches.build_add_request(new)] if new else [],
        cursor=cursor.to_json(),
        skip_reason=None if requests else dg.SkipReason(summary),
    )
