"""The pages to find photos by: Find (the search form and a paged thumbnail grid), Places (the world map) and
Duplicates. Read-only: every query is photo_assets.find's, the one `photo-assets find` runs, so a search here and on
the command line answer alike; the URL holds the query, so a search can be bookmarked."""

from __future__ import annotations

import math
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from photo_assets.analysis.colours import PALETTE
from photo_assets.find import (
    FindError,
    FindFilters,
    FoundPhotos,
    best_copy,
    filters_from_query,
    find_photos,
    object_counts,
    places,
    search_photos,
)
from photo_assets.review import world_map
from photo_assets.review.pages import render

# Photos on a page of the search grid: a few screens of thumbnails, each loaded as it scrolls into view.
PAGE_SIZE = 240
# Groups on the duplicates page: the largest first, a page's worth.
DUPLICATE_GROUPS_SHOWN = 200
# The places page lists this many towns beside the map, and draws this many (those with most photos): thousands of
# dots cost the browser more than they show at world scale.
TOWNS_LISTED, TOWNS_DRAWN = 50, 2_000
# Towns the search form offers as you type (those with most photos; any other still answers when typed in full).
TOWNS_OFFERED = 300


def _page_number(request: Request) -> int:
    text = request.query_params.get("page", "1")
    return max(1, int(text)) if text.isdigit() else 1


def _page_link(request: Request, page: int) -> str:
    kept = [(key, value) for key, value in request.query_params.multi_items() if key != "page" and value]
    return "/find?" + urlencode(kept + ([("page", str(page))] if page > 1 else []))


def _search(layout, filters: FindFilters) -> tuple[FoundPhotos, tuple, tuple]:
    countries, towns = places(layout)
    return search_photos(layout, filters), countries, towns


async def find_page(request: Request):
    """/find?person=…&country=…&city=…&colour=…&from=…&to=…&object=…&faces=with|without&page=N"""
    layout = request.app.state.review.service.layout
    page = _page_number(request)
    query = request.query_params.multi_items()
    error, found, countries, towns = None, FoundPhotos([], 0), (), ()
    try:
        filters = filters_from_query(query, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
        found, countries, towns = await run_in_threadpool(_search, layout, filters)
    except FindError as failure:
        error = str(failure)
        countries, towns = await run_in_threadpool(places, layout)
    pages = max(1, math.ceil(found.total / PAGE_SIZE))
    given = {key: [value for k, value in query if k == key and value] for key in {k for k, _ in query}}
    return render(
        request, "find.html", status=400 if error else 200, title="Find photos", error=error, found=found,
        page=page, pages=pages, first=(page - 1) * PAGE_SIZE + 1, given=given, countries=countries,
        towns=towns[:TOWNS_OFFERED],
        colours=PALETTE, objects=await run_in_threadpool(object_counts, layout),
        previous_link=_page_link(request, page - 1) if page > 1 else None,
        next_link=_page_link(request, page + 1) if page < pages else None,
    )  # fmt: skip


async def places_page(request: Request):
    """The world map: countries shaded by how many photos were taken there, towns as dots sized by their count;
    a click on either opens the search for it."""
    review = request.app.state.review
    countries, towns = await run_in_threadpool(places, review.service.layout)
    shapes = await run_in_threadpool(world_map.country_shapes, review.geodata_dir)
    most = max((country.photos for country in countries), default=1)
    counted = {country.country_code: country for country in countries}
    fills = {code: world_map.shade(country.photos, most) for code, country in counted.items()}
    most_in_town = max((town.photos for town in towns), default=1)
    return render(
        request, "places.html", title="Places", shapes=shapes, counted=counted, fills=fills, countries=countries,
        towns=towns, towns_drawn=towns[:TOWNS_DRAWN], towns_listed=towns[:TOWNS_LISTED], most_in_town=most_in_town,
        view_box=world_map.view_box([(town.latitude, town.longitude) for town in towns[:TOWNS_DRAWN]]
                                    or [(country.latitude, country.longitude) for country in countries]),
        world_box=world_map.view_box([]), link=lambda **fields: "/find?" + urlencode(fields),
    )  # fmt: skip


async def duplicates_page(request: Request):
    """Near-duplicate groups side by side, the best copy marked: a page to decide from; nothing here deletes."""
    review = request.app.state.review
    rows = await run_in_threadpool(find_photos, review.service.layout, FindFilters(duplicates=True, limit=None))
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(row["duplicate_group"], []).append(row)
    shown = [(members, best_copy(members)["path"]) for members in sorted(groups.values(), key=lambda g: -len(g))]
    return render(request, "duplicates.html", groups=shown[:DUPLICATE_GROUPS_SHOWN], total=len(shown),
                  title="Duplicates")
