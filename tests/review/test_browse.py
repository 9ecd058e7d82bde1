"""The pages to find photos by, as a user sees them in Debian's Chromium: the search form, the places map and the
duplicates page, served over the session's search library (tests/search_library.py: the GPS corpus, two named
people, single-colour photos, COCO objects, altered copies) after a real `photo-assets run`. Every answer is checked
against photo_assets.find, the query `photo-assets find` runs, and against the corpus' own truth. Read-only: the
pages never write, so one server serves the module."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest

from photo_assets.find import FindFilters, find_photos, parse_when, places
from photo_assets.storage import DataLayout
from tests.review.browser import screenshot, served
from tests.search_library import COPIED, PAIR, SOLID

pytestmark = pytest.mark.slow  # a `photo-assets run` subprocess and a browser

TOKEN = "browse-test-token"


@pytest.fixture(scope="module")
def site(search_library: dict):
    with served(search_library["data"], search_library["library"], TOKEN) as url:
        yield url, DataLayout(search_library["data"])


def expected(layout: DataLayout, **filters) -> list[str]:
    return [row["photo_id"] for row in find_photos(layout, FindFilters(limit=None, **filters))]


LOADED_WIDTHS = ("images => Promise.all(images.map(i => { i.loading = 'eager';"
                 " return i.decode().then(() => i.naturalWidth, () => 0); }))")


def shown(page) -> list[str]:
    """The photo ids of the result grid, in order, once every thumbnail has loaded (each a real picture)."""
    ids = page.locator("#results li").evaluate_all("cells => cells.map(c => c.dataset.photo)")
    assert all(width > 0 for width in page.locator("#results img").evaluate_all(LOADED_WIDTHS)), "a thumbnail failed"
    return ids


def test_search_by_person_with_the_names_offered_and_the_query_in_the_url(site, page):
    url, layout = site
    page.goto(f"{url}/find")
    assert "Alice" in page.locator("#names option").evaluate_all("options => options.map(o => o.value)")
    page.get_by_label("Person 1").fill("Alice")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url("**/find?*")
    assert parse_qs(urlparse(page.url).query)["person"] == ["Alice"]
    alice = expected(layout, persons=["Alice"])
    assert shown(page) == alice and len(alice) == 5  # four portraits and the pair
    screenshot(page, "find-person")

    page.get_by_label("Person 2").fill("Bob")  # a second name: photos of both together
    page.get_by_role("button", name="Search").click()
    page.wait_for_url("**person=Bob*")
    together = shown(page)
    assert together == expected(layout, persons=["Alice", "Bob"])
    assert page.locator("#results li").first.get_attribute("data-path") == PAIR

    bookmark = page.url
    page.goto(f"{url}/find")
    page.goto(bookmark)  # a bookmarked search answers the same
    assert shown(page) == together
    page.locator("#results a").first.click()
    page.wait_for_url(f"**/photo/{together[0]}")
    assert page.locator("h1").inner_text().startswith(PAIR)


def test_search_by_place_and_dates(site, page, search_library):
    url, layout = site
    page.goto(f"{url}/find")
    page.get_by_label("Country").fill("Italy")
    page.get_by_label("Taken from").fill("2008-10-01")
    page.get_by_label("Taken until").fill("2008-10-31")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url("**country=Italy*")
    arezzo = shown(page)
    assert arezzo == expected(layout, country="IT", date_from=parse_when("2008-10-01"),
                              date_to=parse_when("2008-10-31"))
    truth = {f"gps/{row['file']}" for row in search_library["truth"]
             if row["country_10m"] == "Italy/IT" and "Arezzo" in row["nearest_city1000"]}
    paths = page.locator("#results li").evaluate_all("cells => cells.map(c => c.dataset.path)")
    assert set(paths) == truth and len(truth) == 9  # the Nikon's day in Arezzo, and nothing else
    screenshot(page, "find-place-and-dates")

    page.get_by_label("Town").fill("Florence")  # a town of Italy outside those dates
    page.get_by_role("button", name="Search").click()
    page.wait_for_url("**city=Florence*")
    assert page.locator(".empty").inner_text() == "No photo matches all of these."


def test_search_by_colour_and_by_object(site, page):
    url, layout = site
    page.goto(f"{url}/find")
    page.get_by_label("Colour").select_option("Azure")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url("**colour=Azure*")
    paths = page.locator("#results li").evaluate_all("cells => cells.map(c => c.dataset.path)")
    azure, magenta = SOLID
    assert azure in paths and magenta not in paths
    assert shown(page) == expected(layout, colour="Azure")

    page.get_by_label("Colour").select_option("")
    page.get_by_label("Object 1").select_option("cat")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url("**object=cat*")
    assert page.locator("#results li").evaluate_all("cells => cells.map(c => c.dataset.path)") == [
        "skimage/chelsea.png"]

    page.goto(f"{url}/find?colour=Redd")  # a misspelt colour in a hand-edited URL: said, not a crash
    assert "did you mean: Red" in page.locator("p.error").inner_text()


def test_the_map_shades_the_gps_photos_countries_and_a_click_opens_their_search(site, page, search_library):
    url, layout = site
    page.goto(f"{url}/places")
    default_fill = page.locator(".countries > path").first.evaluate("p => getComputedStyle(p).fill")
    countries = {row["country_10m"].split("/")[-1][:2] for row in search_library["truth"]
                 if "/" in row["country_10m"]}  # every country of the corpus' truth, at sea ones by their coast
    for code in countries:
        region = page.locator(f'a.counted[data-country="{code}"] path')
        assert region.count() == 1, code
        assert region.evaluate("p => getComputedStyle(p).fill") != default_fill, code
    counted, _ = places(layout)
    busiest = counted[0]
    assert busiest.country_code == "IT"
    fills = {code: page.locator(f'a.counted[data-country="{code}"] path').evaluate("p => getComputedStyle(p).fill")
             for code in ("IT", "KE")}
    assert fills["IT"] != fills["KE"]  # 13 photos against 1: another shade
    screenshot(page, "places")

    box = page.locator("#map").get_attribute("viewBox")
    page.locator("#map").hover()
    page.mouse.wheel(0, -400)  # zoom in where the mouse is
    assert float(page.locator("#map").get_attribute("viewBox").split()[2]) < float(box.split()[2])
    page.get_by_role("button", name="Your places").click()
    assert page.locator("#map").get_attribute("viewBox") == box

    page.mouse.click(*_inside(page, 'a.counted[data-country="IT"] path'))  # a real click, on Italy's own pixels
    page.wait_for_url("**/find?country=IT")
    assert shown(page) == expected(layout, country="IT") and len(expected(layout, country="IT")) == busiest.photos

    page.goto(f"{url}/places")
    arezzo = page.locator('.towns a[data-city="Arezzo"] circle')
    arezzo.click()
    page.wait_for_url("**/find?country=IT&city=Arezzo")
    assert shown(page) == expected(layout, country="IT", city="Arezzo")


def _inside(page, selector: str) -> tuple[float, float]:
    """A point of the page where the element is the topmost one (not under a town's dot or a button)."""
    point = page.locator(selector).evaluate("""element => {
        const box = element.getBoundingClientRect();
        for (let y = box.top + 2; y < box.bottom; y += 3)
            for (let x = box.left + 2; x < box.right; x += 3)
                if (document.elementFromPoint(x, y) === element) return [x, y];
        return null; }""")
    assert point, f"{selector} is covered everywhere"
    return point[0], point[1]


def test_the_duplicates_page_groups_the_altered_copies_and_marks_the_best(site, page):
    url, _ = site
    page.goto(f"{url}/duplicates")
    group = page.locator(".duplicate-group", has=page.locator(f'img[alt="skimage/{COPIED}"]'))
    assert group.count() == 1
    paths = group.locator(".path").all_inner_texts()
    assert set(paths) == {f"skimage/{COPIED}", "copies/half.jpg", "copies/crop.png", "copies/brighter.jpg",
                          "copies/exact.png"}
    best = group.locator(".copy.best .path").all_inner_texts()
    assert len(best) == 1 and best[0] in {f"skimage/{COPIED}", "copies/exact.png", "copies/brighter.jpg"}  # full size
    assert all(width > 0 for width in group.locator("img").evaluate_all(LOADED_WIDTHS))
    for solid in SOLID:  # a single colour is nobody's near-duplicate
        assert page.locator(f'.duplicate-group img[alt="{solid}"]').count() == 0
    screenshot(page, "duplicates")
