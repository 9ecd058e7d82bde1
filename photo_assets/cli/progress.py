"""The live progress `photo-assets run` shows per stage: a tqdm line per stage and batch on a terminal (photos
done/total, photos/s, time left), plain lines (one per stage and batch every PLAIN_SECONDS, and when it ends) when
the output is a file or a pipe."""

from __future__ import annotations

import sys
import time

import click

from photo_assets.assets.progress import Update

PLAIN_SECONDS = 30.0


class ProgressDisplay:
    """A listener for photo_assets.assets.progress: draws what each step reports."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.bars: dict[tuple[str, str], object] = {}
        self.printed: dict[tuple[str, str], float] = {}

    def __call__(self, update: Update) -> None:
        key = (update.stage, update.batch)
        if self.tty:
            self._draw(key, update)
        else:
            now = time.monotonic()
            if update.finished or now - self.printed.setdefault(key, now) >= PLAIN_SECONDS:
                self.printed[key] = now
                if update.total:
                    click.echo(f"    {update.describe()}", file=self.stream)

    def _draw(self, key: tuple[str, str], update: Update) -> None:
        from tqdm import tqdm

        bar = self.bars.get(key)
        if bar is None:
            if not update.total:
                return
            bar = self.bars[key] = tqdm(
                total=update.total, desc=f"    {update.stage}", unit="photo", file=self.stream, dynamic_ncols=True,
                leave=True,
            )
        bar.update(update.done - bar.n)
        if update.finished:
            bar.close()
            del self.bars[key]

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
        self.bars.clear()
