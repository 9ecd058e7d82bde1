"""`photo-assets review`: the people of a library in the browser — see faces in their photos, and approve, reject,
rename, merge and move them with a click; find photos by person, place, colour, date and object, on a map of places
and among near-duplicates. Server-rendered pages with a little plain JavaScript, every asset served from this
package (no CDN, no build step). Every action is an edit of the one people service (the CLI's), appended to the
same label log and reported on the `label_log` asset, so person_clusters re-materializes by automation.

This module assembles the app: routes from `pages` (people HTML), `browse` (find, places, duplicates: read-only)
and `api` (JSON, images), the guard from `security`.
Images are addressed by id only (hexadecimal, matched by the routes' convertors); a file is read only from the
library (a catalogued photo whose path resolves inside it) or the cache in the data folder.
"""

from __future__ import annotations

import contextlib
import secrets
from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment
from starlette.applications import Starlette
from starlette.convertors import Convertor, register_url_convertor
from starlette.middleware.gzip import GZipMiddleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from photo_assets.people import PeopleService
from photo_assets.people.edits import FACE_ID_CHARACTERS
from photo_assets.review import api, browse, pages
from photo_assets.review.images import ImageCache
from photo_assets.review.reporting import Observer
from photo_assets.review.security import Guard, allowed_hosts, is_loopback
from photo_assets.settings import DEFAULT_GEODATA
from photo_assets.storage import DataLayout

STATIC_DIR = Path(__file__).parent / "static"
MAX_BODY = 64 * 1024  # bytes of a request body: an edit is a few hundred
# Pages larger than this are gzipped: the Places page is over a megabyte of path data, about a quarter of that
# gzipped (bench/find.py prints both).
GZIP_MIN_BYTES = 4096


class _Pattern(Convertor):
    """A path parameter that matches only its pattern: anything else is a 404 before a handler runs."""

    def __init__(self, regex: str):
        self.regex = regex

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


for _name, _regex in {"person_id": pages.PERSON_ID, "photo_id": pages.PHOTO_ID, "face_id": FACE_ID_CHARACTERS}.items():
    register_url_convertor(_name, _Pattern(_regex))


@dataclass(frozen=True)
class Review:
    """What every handler reads (as `request.app.state.review`)."""

    service: PeopleService
    images: ImageCache
    observer: Observer
    templates: Environment
    geodata_dir: Path  # the countries the places page draws


ROUTES = [
    Route("/", pages.people_page),
    Route("/people/{person_id:person_id}", pages.person_page),
    Route("/photo/{photo_id:photo_id}", pages.photo_page),
    Route("/suggestions", pages.suggestions_page),
    Route("/unsorted", pages.unsorted_page),
    Route("/find", browse.find_page),
    Route("/places", browse.places_page),
    Route("/duplicates", browse.duplicates_page),
    Route("/faces/{face_id:face_id}.jpg", api.face_image),
    Route("/photos/{photo_id:photo_id}.jpg", api.photo_image),
    Route("/thumbnails/{photo_id:photo_id}.jpg", api.photo_thumbnail),
    Route("/api/people", api.api_people),
    Route("/api/people/{person_id:person_id}", api.api_person),
    Route("/api/suggestions", api.api_suggestions),
    Route("/api/unsorted", api.api_unsorted),
    Route("/api/edits", api.api_edits, methods=["POST"]),
    Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
]


def create_app(
    data_dir: Path,
    library_dir: Path,
    token: str | None = None,
    host: str = "127.0.0.1",
    port: int = 3001,
    dagster_home: Path | None = None,
    geodata_dir: Path = DEFAULT_GEODATA,
) -> Starlette:
    """The review pages for one data folder; each edit is reported to the Dagster instance in `dagster_home` (none:
    edits are only written to the label log, and the next `photo-assets` command or sensor tick reports them)."""
    layout = DataLayout(Path(data_dir).resolve())
    token = token or secrets.token_urlsafe(32)
    review = Review(PeopleService(layout), ImageCache(layout, Path(library_dir).resolve()),
                    Observer(layout, dagster_home), pages.templates(token), Path(geodata_dir).resolve())

    @contextlib.asynccontextmanager
    async def lifespan(app):
        review.observer.warm_up()
        yield

    app = Starlette(routes=ROUTES, lifespan=lifespan, max_body_size=MAX_BODY)
    app.add_middleware(GZipMiddleware, minimum_size=GZIP_MIN_BYTES)
    app.add_middleware(Guard, hosts=allowed_hosts(host, port), token=token)
    app.state.token = token
    app.state.review = review
    return app


def serve(
    data_dir: Path, library_dir: Path, dagster_home: Path | None, host: str = "127.0.0.1", port: int = 3001,
    geodata_dir: Path = DEFAULT_GEODATA,
) -> None:
    import uvicorn

    if not is_loopback(host):
        print(
            f"warning: serving on {host}: anyone who can reach this address on your network can see your photos "
            "and edit your labels (use 127.0.0.1 unless you mean it)",
            flush=True,
        )
    app = create_app(data_dir, library_dir, host=host, port=port, dagster_home=dagster_home, geodata_dir=geodata_dir)
    shown = f"[{host}]" if ":" in host else host
    print(f"review pages on http://{shown}:{port}/", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
