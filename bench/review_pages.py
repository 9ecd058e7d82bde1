"""How fast the review's person page loads: one person of 200 faces (in 200 photos), target < 1 s after the first view.

    .venv/bin/python bench/review_pages.py [--faces 200] [--views 5]

Builds a throwaway data folder and library (generated 1600 x 1200 JPEGs, one face box each; the catalog, face boxes
and person_clusters tables written as the pipeline writes them), serves it with the review app (uvicorn, loopback),
and opens /people/<id> in Debian's Chromium (Playwright) — falling back to plain HTTP when no browser is installed.
Prints, each until every one of the page's pictures is decoded: the first view (the server makes and caches every
face crop); later views in the same browser with its cache turned off (every crop fetched again from the server's
cache: the figure held against the 1 s target), with its cache on (a reload), and in a brand-new browser context
(which adds the browser's own start-up of a fresh profile); and the server's HTML time alone.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

PROJECT_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_DIR))

from devtools.services import free_port  # noqa: E402
from photo_assets.analysis.people import FACE_SCHEMA, PEOPLE_SCHEMA  # noqa: E402
from photo_assets.review.app import create_app  # noqa: E402
from photo_assets.storage import DataLayout, DataStore  # noqa: E402
from photo_assets.storage.layout import FACE_DETECTIONS, PHOTOS  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
PHOTO_SIZE = (1600, 1200)
PERSON = "123456"
ALL_PICTURES_DECODED = """async () => {
  await Promise.all(Array.from(document.images).map(i => { i.loading = 'eager'; return i.decode().catch(() => 0); }));
  return performance.now();
}"""


def build(root: Path, faces: int) -> tuple[Path, Path]:
    library, data = root / "library", root / "data"
    (library / "photos").mkdir(parents=True)
    rng = np.random.default_rng(0)
    photos, boxes, face_rows = [], [], []
    base = rng.integers(0, 255, (PHOTO_SIZE[1] // 8, PHOTO_SIZE[0] // 8, 3), dtype=np.uint8)
    for index in range(faces):
        path = library / "photos" / f"photo_{index:04d}.jpg"
        pixels = np.roll(base, index, axis=1)
        Image.fromarray(pixels).resize(PHOTO_SIZE, Image.Resampling.BILINEAR).save(path, quality=85)
        photo_id = hashlib.sha256(path.read_bytes()).hexdigest()
        face_id = hashlib.sha256(f"{photo_id}/face".encode()).hexdigest()[:20]
        side = int(rng.integers(150, 400))
        photos.append({"photo_id": photo_id, "path": f"photos/{path.name}", "width": PHOTO_SIZE[0],
                       "height": PHOTO_SIZE[1], "captured_at": datetime(2020, 1, 1 + index % 28)})  # fmt: skip
        boxes.append({"face_id": face_id, "photo_id": photo_id, "x": 600, "y": 300, "width": side, "height": side})
        face_rows.append({"face_id": face_id, "photo_id": photo_id, "person_id": PERSON, "person_name": "Unknown",
                          "assigned_by": "auto", "distance": float(rng.uniform(0.3, 1.0))})  # fmt: skip
    layout = DataLayout(data)
    store = DataStore(layout)
    store.write_batch(PHOTOS, "batch", pa.Table.from_pylist(photos))
    store.write_batch(FACE_DETECTIONS, "batch", pa.Table.from_pylist(boxes))
    layout.clusters_dir.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(face_rows, FACE_SCHEMA), layout.people_faces)
    people = [{"person_id": PERSON, "name": None, "named": False, "faces": faces, "photos": faces,
               "representative_face_id": face_rows[0]["face_id"]}]  # fmt: skip
    pq.write_table(pa.Table.from_pylist(people, PEOPLE_SCHEMA), layout.people)
    return library, data


def serve(app, port: int):
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server


def browser_views(url: str, views: int) -> float:
    from playwright.sync_api import sync_playwright

    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=flags)

        def view(page) -> float:
            page.goto(url, wait_until="load")
            return page.evaluate(ALL_PICTURES_DECODED) / 1000

        context = browser.new_context(viewport={"width": 1600, "height": 1000})
        page = context.new_page()
        print(f"first view (server makes every crop):          {view(page):6.2f} s")
        reloads = [view(page) for _ in range(views)]
        session = context.new_cdp_session(page)
        session.send("Network.setCacheDisabled", {"cacheDisabled": True})
        uncached = [view(page) for _ in range(views)]
        context.close()
        fresh = []
        for _ in range(views):
            context = browser.new_context(viewport={"width": 1600, "height": 1000})
            fresh.append(view(context.new_page()))
            context.close()
        print(f"later view, brand-new browser context:         {statistics.median(fresh):6.2f} s median of {views} "
              f"(max {max(fresh):.2f})")
        print(f"later view, browser cache off (the target):    {statistics.median(uncached):6.2f} s median of {views} "
              f"(max {max(uncached):.2f})")
        print(f"later view, reload (browser cache):            {statistics.median(reloads):6.2f} s median of {views} "
              f"(max {max(reloads):.2f})")
        browser.close()
        return statistics.median(uncached)


def http_views(url: str, base: str, views: int) -> float:
    """Without a browser: the page, then each of its face crops, one after another."""
    import re

    def view() -> float:
        start = time.perf_counter()
        html = urllib.request.urlopen(url).read().decode()
        for path in re.findall(r'src="(/faces/[0-9a-f]+\.jpg)"', html):
            urllib.request.urlopen(base + path).read()
        return time.perf_counter() - start

    print(f"first view (server makes every crop):          {view():6.2f} s (HTTP, sequential)")
    times = [view() for _ in range(views)]
    print(f"later view:                                    {statistics.median(times):6.2f} s median of {views}")
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--faces", type=int, default=200)
    parser.add_argument("--views", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="review-bench-") as folder:
        library, data = build(Path(folder), args.faces)
        port = free_port()
        server = serve(create_app(data, library, port=port), port)
        base = f"http://127.0.0.1:{port}"
        url = f"{base}/people/{PERSON}"
        print(f"person page of {args.faces} faces in {args.faces} photos of {PHOTO_SIZE[0]} x {PHOTO_SIZE[1]}: {url}")
        if CHROMIUM.is_file():
            later = browser_views(url, args.views)
        else:
            print(f"(no {CHROMIUM}: timing over plain HTTP instead of a browser)")
            later = http_views(url, base, args.views)
        html = []
        for _ in range(args.views):
            start = time.perf_counter()
            urllib.request.urlopen(url).read()
            html.append(time.perf_counter() - start)
        print(f"server HTML alone:                             {statistics.median(html) * 1000:6.1f} ms median")
        print(f"target: a later view < 1 s: {'met' if later < 1 else 'NOT met'} ({later:.2f} s)")
        server.should_exit = True


if __name__ == "__main__":
    main()
