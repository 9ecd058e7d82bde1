"""`photo-assets find`: photos by person, place, colour, date and camera (photo_assets.find does the query)."""

from __future__ import annotations

import click

from photo_assets.cli.options import current_layout, data_option, json_option
from photo_assets.find import (
    DEFAULT_LIMIT,
    DEFAULT_MIN_SHARE,
    DEFAULT_WITHIN_KM,
    FindError,
    FindFilters,
    find_photos,
    format_rows,
    parse_point,
    parse_when,
)

# Exit status when nothing matched: scripts can tell "none" from "found" without parsing the output.
EXIT_NONE_FOUND = 1


class _Point(click.ParamType):
    name = "LAT,LON"

    def convert(self, value, param, ctx):
        try:
            return parse_point(value)
        except FindError as error:
            self.fail(str(error), param, ctx)


class _When(click.ParamType):
    name = "DATE"

    def convert(self, value, param, ctx):
        try:
            return parse_when(value)
        except FindError as error:
            self.fail(str(error), param, ctx)


class FindRequestError(click.ClickException):
    """An unknown person or colour name, with the close matches: one line, exit status 2."""

    exit_code = 2


@click.command()
@data_option
@click.option("--person", "persons", multiple=True, metavar="NAME|ID",
              help="a person in the photo; repeat it for photos showing all of them together")
@click.option("--country", metavar="CODE|NAME", help="ISO code (FR) or name (France)")
@click.option("--city", metavar="NAME")
@click.option("--near", type=_Point(), help="photos within --within km of this point")
@click.option("--within", type=float, default=DEFAULT_WITHIN_KM, show_default=True, metavar="KM")
@click.option("--colour", "--color", "colour", metavar="NAME", help="a palette colour (Azure, Red, ...)")
@click.option("--min-share", type=float, default=DEFAULT_MIN_SHARE, show_default=True, metavar="S",
              help="the share of the photo the colour must cover")
@click.option("--from", "date_from", type=_When(), help="taken on or after this date")
@click.option("--to", "date_to", type=_When(), help="taken on or before this date")
@click.option("--camera", metavar="TEXT", help="text in the camera's make or model")
@click.option("--with-faces/--without-faces", default=None, help="photos where faces were (not) found")
@click.option("--duplicates", is_flag=True, help="photos with a near-duplicate or an exact copy, grouped")
@click.option("--object", "objects", multiple=True, metavar="LABEL",
              help="a COCO label found in the photo (dog, bicycle, ...); repeat it for photos showing all of them")
@json_option
@click.option("--limit", type=int, default=DEFAULT_LIMIT, show_default=True, help="at most N photos (0: all)")
def find(persons, country, city, near, within, colour, min_share, date_from, date_to, camera, with_faces, duplicates,
         objects, as_json: bool, limit: int) -> int:
    """Photos matching every filter given: date, path, place, people, objects (exit status 1 when none match)."""
    filters = FindFilters(
        persons=persons, country=country, city=city, near=near, within_km=within, colour=colour,
        min_share=min_share, date_from=date_from, date_to=date_to, camera=camera, with_faces=with_faces,
        objects=objects, duplicates=duplicates, limit=limit or None,
    )
    try:
        rows = find_photos(current_layout(), filters)
    except FindError as error:
        raise FindRequestError(str(error)) from error
    click.echo(format_rows(rows, json_lines=as_json), nl=False)
    return 0 if rows else EXIT_NONE_FOUND
