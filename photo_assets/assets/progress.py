"""Progress of a long step: photos done of the total, photos/s and the time left, for the Dagster run log (at least
every LOG_SECONDS) and for whoever watches in this process (`photo-assets run` draws a line per stage from it).

A step reports through `StepProgress`; listeners registered with `listening` get every update, throttled to
NOTIFY_SECONDS. Listeners live in this process only: a run executed elsewhere (a daemon, another machine) still
logs its progress to the run log, which is where the UI shows it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

# The run log gets a progress event at least this often during a step (a user watching a long step sees it move).
LOG_SECONDS = 20.0
# Listeners (a terminal's progress line) get at most this many updates a second.
NOTIFY_SECONDS = 0.2


@dataclass(frozen=True)
class Update:
    stage: str  # the step's name, e.g. "faces"
    batch: str
    done: int
    total: int
    seconds: float  # since the step's first photo
    finished: bool = False

    @property
    def rate(self) -> float:
        return self.done / self.seconds if self.seconds > 0 else 0.0

    @property
    def eta_seconds(self) -> float | None:
        return (self.total - self.done) / self.rate if self.rate > 0 else None

    def describe(self) -> str:
        eta = self.eta_seconds
        left = f", {_duration(eta)} left" if eta is not None and not self.finished else ""
        return f"{self.stage}: {self.done}/{self.total} photos, {self.rate:.2f} photos/s{left}"


Listener = Callable[[Update], None]
_listeners: list[Listener] = []


@contextlib.contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """Send every step's progress in this process to `listener` while the block runs."""
    _listeners.append(listener)
    try:
        yield
    finally:
        _listeners.remove(listener)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else (
        f"{seconds // 60}:{seconds % 60:02d}"
    )


class StepProgress:
    """Counts photos done in one batch of a step; logs to `log` (a Dagster logger, or None) every LOG_SECONDS."""

    def __init__(self, log, stage: str, batch: str, total: int, clock: Callable[[], float] = time.monotonic):
        self.log, self.stage, self.batch, self.total, self.clock = log, stage, batch, total, clock
        self.done = 0
        self.started = clock()
        self.logged = self.notified = self.started
        self._notify(self._update())

    def _update(self, finished: bool = False) -> Update:
        return Update(self.stage, self.batch, self.done, self.total, self.clock() - self.started, finished)

    def _notify(self, update: Update) -> None:
        for listener in list(_listeners):
            listener(update)

    def advance(self, count: int = 1) -> None:
        self.done += count
        now = self.clock()
        if now - self.logged >= LOG_SECONDS and self.log is not None:
            self.logged = now
            self.log.info(f"batch {self.batch}: {self._update().describe()}")
        if now - self.notified >= NOTIFY_SECONDS:
            self.notified = now
            self._notify(self._update())

    def finish(self) -> None:
        update = self._update(finished=True)
        self._notify(update)
        if self.log is not None and self.total:
            self.log.info(f"batch {self.batch}: {update.describe()}")
