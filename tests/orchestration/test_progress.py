"""Progress of long steps (issue 12): the run log hears from a step at least every LOG_SECONDS, listeners in the
process get photos done/total, rate and time left, and `photo-assets run` prints plain lines when not on a terminal."""

from __future__ import annotations

import io

from photo_assets.assets import progress
from photo_assets.assets.progress import LOG_SECONDS, StepProgress, Update, listening
from photo_assets.cli.progress import ProgressDisplay


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Log:
    def __init__(self):
        self.lines: list[str] = []

    def info(self, message: str) -> None:
        self.lines.append(message)


def test_the_run_log_hears_from_a_long_step_at_least_every_log_seconds():
    assert LOG_SECONDS <= 30
    clock, log = Clock(), Log()
    step = StepProgress(log, "faces", "b1", total=1000, clock=clock)
    logged_at = []
    for _ in range(1000):
        clock.now += 0.4  # 2.5 photos/s: 400 s for the batch
        before = len(log.lines)
        step.advance()
        if len(log.lines) > before:
            logged_at.append(clock.now)
    step.finish()
    gaps = [later - earlier for earlier, later in zip([1000.0, *logged_at], logged_at)]
    assert logged_at and max(gaps) <= LOG_SECONDS + 0.4
    assert "faces: 1000/1000 photos, 2.50 photos/s" in log.lines[-1]
    assert "left" in log.lines[0]


def test_listeners_get_done_total_rate_and_eta():
    clock, updates = Clock(), []
    with listening(updates.append):
        step = StepProgress(None, "colours", "b1", total=10, clock=clock)
        for _ in range(4):
            clock.now += 1.0
            step.advance()
        step.finish()
    assert not progress._listeners
    last = updates[-1]
    assert (last.stage, last.done, last.total, last.finished) == ("colours", 4, 10, True)
    assert updates[-2].rate == 1.0 and updates[-2].eta_seconds == 6.0


def test_plain_lines_when_not_a_terminal():
    stream = io.StringIO()
    display = ProgressDisplay(stream)
    assert not display.tty
    display(Update("faces", "b1", 0, 100, 0.0))
    display(Update("faces", "b1", 100, 100, 50.0, finished=True))
    assert stream.getvalue().strip() == "faces: 100/100 photos, 2.00 photos/s"
