"""Edits made on the review pages reported to the Dagster instance (as `photo-assets people` does), when one is
configured: person_clusters turns stale and its automation re-runs it."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from photo_assets.storage import DataLayout

log = logging.getLogger(__name__)


class Observer:
    def __init__(self, layout: DataLayout, dagster_home: Path | None):
        self.layout = layout
        self.dagster_home = dagster_home
        self.enabled = dagster_home is not None and (dagster_home / "dagster.yaml").exists()
        self._instance = None
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        """Import Dagster and open the instance in the background, so the first edit is not the one that waits."""
        if self.enabled:
            threading.Thread(target=self._warm, daemon=True).start()

    def _warm(self) -> None:
        try:
            self._open()
        except Exception as error:  # noqa: BLE001 - report() says it again, with the edit
            log.warning("Dagster instance not available: %s", error)

    def _open(self):
        import dagster as dg

        import photo_assets.assets.observations  # noqa: F401 - imported once, here, off the request path

        with self._lock:
            if self._instance is None:
                self._instance = dg.DagsterInstance.from_config(str(self.dagster_home))
            return self._instance

    def report(self) -> str | None:
        if not self.enabled:
            return None
        try:
            from photo_assets.assets.observations import label_log_observation

            self._open().report_runless_asset_event(label_log_observation(self.layout))
            return "reported"
        except Exception as error:  # noqa: BLE001 - the edit is recorded; the next CLI command reports it too
            log.warning("could not report the label log to Dagster: %s", error)
            return f"not reported: {error}"
