"""`photo-assets`: the command line. Parsing and printing only; the work is done by the Dagster jobs, the people
editor and the storage layer. `--data` and `--library` may stand before or after any subcommand and its verb."""

from __future__ import annotations

import warnings

import click

from photo_assets import settings
from photo_assets.cli.find import find
from photo_assets.cli.options import data_option, library_option
from photo_assets.cli.people import people
from photo_assets.cli.review import review
from photo_assets.cli.run import run
from photo_assets.cli.status import status

# Exit status when the instance's database cannot be reached: not the library's fault, and nothing was lost.
EXIT_DATABASE_UNREACHABLE = 3


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@library_option
@data_option
def photo_assets() -> None:
    """Catalogue and analyse a photo library, and name the people in it, against the configured Dagster instance."""


photo_assets.add_command(run)
photo_assets.add_command(status)
photo_assets.add_command(find)
photo_assets.add_command(people)
photo_assets.add_command(review)


def _database_unreachable(error: BaseException) -> str | None:
    """The driver's own words when `error` (or what caused it) says the instance's database is gone, else None."""
    import sqlalchemy.exc

    gone: list[type[BaseException]] = [sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError]
    try:
        from dagster_postgres.utils import DagsterPostgresException

        gone.append(DagsterPostgresException)
    except ImportError:  # dagster-postgres is only needed with a Postgres instance
        pass
    causes = []
    while error is not None and error not in causes:
        causes.append(error)
        error = error.__cause__ or error.__context__
    if not any(isinstance(cause, tuple(gone)) for cause in causes):
        return None
    # The innermost cause names the server and what went wrong ("connection refused", "server closed the connection").
    return " ".join(str(getattr(causes[-1], "orig", None) or causes[-1]).split())



def main(argv: list[str] | None = None) -> int:
    """Output into a closed pipe (`| head`) ends quietly with status 1: click's own handling of EPIPE."""
    # Dagster warns, once per decorator, that parameters this project relies on (backfill policies, observable source
    # assets) are in beta: the developers' concern, pinned and tested here, not the user's at every command.
    from dagster import BetaWarning

    warnings.filterwarnings("ignore", category=BetaWarning)
    try:
        result = photo_assets.main(args=argv, prog_name="photo-assets", standalone_mode=False)
    except click.ClickException as error:  # usage errors and the commands' own one-line errors
        error.show()
        return error.exit_code
    except click.Abort:
        click.echo("aborted", err=True)
        return 1
    except Exception as error:
        reason = _database_unreachable(error)
        if reason is None:
            raise
        click.echo(
            f"error: the Dagster instance's database is unreachable ({reason}); instance: "
            f"{settings.Settings.from_env().dagster_home}/dagster.yaml. Batches that finished are kept: start the "
            "database and run the same command again.",
            err=True,
        )
        return EXIT_DATABASE_UNREACHABLE
    return result if isinstance(result, int) else 0

