"""One dynamic partition per ingest batch (not per photo: Dagster's ~0.1 s bookkeeping per partition
materialization would cost hours on a 100k-photo library; batches keep it to minutes)."""

import dagster as dg

photo_batches = dg.DynamicPartitionsDefinition(name="photo_batches")
