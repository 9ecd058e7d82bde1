"""How per-batch assets run: over the one batch a sensor's run asks for, or over a range of batches when a backfill
groups them into one run. Each batch is computed and written on its own and gets materialization metadata of its
own; the run's check results cover every batch it wrote."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import dagster as dg

from photo_assets.settings import DEFAULT_BATCHES_PER_BACKFILL_RUN


def backfill_policy(batches_per_run: int) -> dg.BackfillPolicy:
    """A backfill launches one run per this many batches (PHOTO_ASSETS_BATCHES_PER_BACKFILL_RUN, 5,000 photos by
    default): each run pays Python's and Dagster's start-up once, a failed one costs at most this many batches."""
    return dg.BackfillPolicy.multi_run(max_partitions_per_run=batches_per_run)


# The per-batch assets' policy as defined; the Definitions replace it with the one the settings ask for.
BACKFILL_POLICY = backfill_policy(DEFAULT_BATCHES_PER_BACKFILL_RUN)

# What one batch's computation hands back: metadata per asset key (None for a single asset) and its check results.
BatchOutcome = tuple[Mapping[str | None, Mapping[str, Any]], list[dg.AssetCheckResult]]


def materialize_batches(context: dg.AssetExecutionContext, compute: Callable[[str], BatchOutcome]) -> BatchOutcome:
    """Run `compute` on every batch of the run in order. Returns the metadata for the run's MaterializeResult (a
    single batch's own; with several, each batch's goes to its own partition instead) and one result per check,
    covering all the batches."""
    if len(context.partition_keys) == 1:  # a sensor's run: also what calling the asset directly allows
        return compute(context.partition_key)
    per_batch: dict[str, list[dg.AssetCheckResult]] = {}
    for index, batch_key in enumerate(context.partition_keys, start=1):
        metadata, checks = compute(batch_key)
        for asset_key, values in metadata.items():
            context.add_asset_metadata(values, asset_key=asset_key, partition_key=batch_key)
        per_batch[batch_key] = checks
        context.log.info(f"batch {batch_key} done ({index}/{len(context.partition_keys)})")
    return {asset_key: {} for asset_key in metadata}, _combined_checks(per_batch)


def _combined_checks(per_batch: dict[str, list[dg.AssetCheckResult]]) -> list[dg.AssetCheckResult]:
    grouped: dict[tuple, list[tuple[str, dg.AssetCheckResult]]] = {}
    for batch_key, results in per_batch.items():
        for result in results:
            grouped.setdefault((result.asset_key, result.check_name), []).append((batch_key, result))
    return [
        dg.AssetCheckResult(
            asset_key=asset_key,
            check_name=check_name,
            passed=all(result.passed for _, result in outcomes),
            description=outcomes[0][1].description,
            metadata={
                "batches_checked": len(outcomes),
                "failed_batches": dg.MetadataValue.json([key for key, result in outcomes if not result.passed]),
            },
        )
        for (asset_key, check_name), outcomes in grouped.items()
    ]
