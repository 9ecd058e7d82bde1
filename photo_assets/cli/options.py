"""What every command shares: `--data` and `--library` wherever they are typed, the settings they make, the Dagster
instance, and `--json` output."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from photo_assets import settings
from photo_assets.storage import DataLayout

# Where the flags given so far are kept: on the root context, so the innermost flag wins wherever it was typed.
PATHS_KEY = "photo_assets.paths"


def _remember(flag: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def callback(context: click.Context, _parameter: click.Parameter, value: Any) -> None:
        if value is not None:
            context.find_root().meta.setdefault(PATHS_KEY, {})[flag] = Path(value)

    return callback


def data_option(command: Callable) -> Callable:
    """`--data D` on a group or a command: accepted before or after any subcommand and verb."""
    return click.option(
        "--data", type=click.Path(file_okay=False), expose_value=False, callback=_remember("data"),
        help=f"data folder (default ${settings.DATA_ENV}, else ./data)",
    )(command)


def library_option(command: Callable) -> Callable:
    return click.option(
        "--library", type=click.Path(file_okay=False), expose_value=False, callback=_remember("library"),
        help=f"photo library folder (default ${settings.LIBRARY_ENV}, else the demo library)",
    )(command)


def current_settings() -> settings.Settings:
    """The environment's settings with the folders the command line named."""
    given = click.get_current_context().find_root().meta.get(PATHS_KEY, {})
    return settings.Settings.from_env().with_paths(library_dir=given.get("library"), data_dir=given.get("data"))


def current_layout() -> DataLayout:
    return DataLayout(current_settings().data_dir)


def dagster_instance(config: settings.Settings):
    """The instance in the configured Dagster home; a new home gets the project's defaults (SQLite, pools)."""
    import dagster as dg

    home = config.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        shutil.copyfile(settings.DEFAULT_DAGSTER_HOME / "dagster.yaml", home / "dagster.yaml")
    return dg.DagsterInstance.from_config(str(home))


def json_option(command: Callable) -> Callable:
    return click.option("--json", "as_json", is_flag=True, help="one JSON object per line, for scripts")(command)


def emit_json(rows: list[dict]) -> None:
    for row in rows:
        click.echo(json.dumps(row, ensure_ascii=False, default=str))
