"""`photo-assets review`: the people, search, places and duplicates pages in the browser (photo_assets.review)."""

from __future__ import annotations

import click

from photo_assets.cli.options import current_settings, data_option, library_option


@click.command()
@library_option
@data_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="address to bind; anything but loopback lets others on that network edit your labels")
@click.option("--port", type=int, default=3001, show_default=True)
def review(host: str, port: int) -> int:
    """Serve the review pages: name, merge, move and reject faces with a click; find photos by person, place,
    colour, date and object; see the places on a map and the near-duplicates side by side."""
    from photo_assets.review.app import serve

    config = current_settings()
    serve(config.data_dir, config.library_dir, config.dagster_home, host=host, port=port,
          geodata_dir=config.geodata_dir)
    return 0
