"""The library the search tests query (tests/cli/test_find.py on the command line, tests/review/test_browse.py in
the browser), built once a session by a real `photo-assets run`: the GPS corpus, deepface portraits of two people
(renamed Alice and Bob, and one photo of both), two single-colour photos, scikit-image's photos of COCO objects and
altered copies of one of them (near-duplicates) with an exact copy at another path."""

import csv
import json
import os
import shutil
from collections import Counter
from pathlib import Path

import dagster as dg
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from PIL import Image, ImageEnhance

from devtools.library import copy_portraits
from devtools.services import photo_assets_cli, photo_assets_run
from photo_assets.assets.people import person_clusters
from photo_assets.resources import PhotoLibrary
from photo_assets.storage import DataLayout

PEOPLE = {"person_01": "Alice", "person_02": "Bob"}
PORTRAITS = slice(0, 4)
SOLID = {"solid/azure.jpg": (30, 83, 249), "solid/magenta.jpg": (233, 8, 200)}
PAIR = "together/pair.jpg"
# Real photos that ship in scikit-image's wheel, each of one COCO label.
SKIMAGE_DATA = Path(__import__("skimage").__file__).parent / "data"
# The photo the library also holds altered copies of (near-duplicates) and an exact copy of at another path.
COPIED = "coffee.png"
OBJECT_PHOTOS = {"chelsea.png": "cat", "coffee.png": "cup", "motorcycle_left.png": "motorcycle",
                 "motorcycle_right.png": "motorcycle"}


def _pair(source: Path, left: str, right: str, target: Path) -> None:
    """Two portraits side by side in one photo: both people in it."""
    images = [Image.open(source / name).convert("RGB") for name in (left, right)]
    canvas = Image.new("RGB", (sum(image.width for image in images), max(image.height for image in images)))
    canvas.paste(images[0], (0, 0))
    canvas.paste(images[1], (images[0].width, 0))
    target.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(target, quality=92)


def _copies(original: Path, folder: Path) -> None:
    """Altered copies of `original` (resized and re-encoded, cropped by 5% of each side, brightened) and an exact
    copy of it at another path."""
    folder.mkdir()
    image = Image.open(original).convert("RGB")
    width, height = image.size
    image.resize((width // 2, height // 2)).save(folder / "half.jpg", quality=50)
    image.crop((width // 20, height // 20, width - width // 20, height - height // 20)).save(folder / "crop.png")
    ImageEnhance.Brightness(image).enhance(1.2).save(folder / "brighter.jpg", quality=90)
    shutil.copyfile(original, folder / f"exact{original.suffix}")


def build_search_library(shared_dir: Path, root: Path) -> dict:
    """The library, its data folder after `photo-assets run` and two renames, and the GPS corpus' truth rows."""
    library, data, home = root / "library", root / "data", root / "home"
    corpus = shared_dir / "corpus" / "gps"
    with open(corpus / "truth.csv", newline="", encoding="utf-8") as handle:
        truth = [row for row in csv.DictReader(handle) if not row["file"].startswith("edge_cases/")]
    for row in truth:
        (library / "gps").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(corpus / row["file"], library / "gps" / row["file"])
    faces_source = shared_dir / "faces" / "deepface"
    copy_portraits(faces_source, library, list(PEOPLE), PORTRAITS)
    identities = json.loads((faces_source / "identities.json").read_text())
    _pair(faces_source, identities["person_01"][5], identities["person_02"][5], library / PAIR)
    for name, colour in SOLID.items():
        (library / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (64, 48), colour).save(library / name, quality=95)
    (library / "skimage").mkdir()
    for name in OBJECT_PHOTOS:
        shutil.copyfile(SKIMAGE_DATA / name, library / "skimage" / name)
    _copies(library / "skimage" / COPIED, library / "copies")
    result = photo_assets_run(library, data, home)
    assert result.returncode == 0, result.stdout + result.stderr

    faces = pq.read_table(DataLayout(data).people_faces).to_pylist()
    folder_of = {row["photo_id"]: row["path"].split("/")[0]
                 for row in ds.dataset(data / "photos").to_table(columns=["photo_id", "path"]).to_pylist()}
    for folder, name in PEOPLE.items():
        person = Counter(face["person_id"] for face in faces if folder_of[face["photo_id"]] == folder).most_common(1)
        renamed = photo_assets_cli({**os.environ, "DAGSTER_HOME": str(home)}, "people", "rename", person[0][0], name,
                                   "--data", str(data))
        assert renamed.returncode == 0, renamed.stdout + renamed.stderr
    resources = {"photo_library": PhotoLibrary(library_dir=str(library), data_dir=str(data))}
    with dg.instance_for_test() as instance:  # the renames, clustered
        assert dg.materialize([person_clusters], instance=instance, resources=resources).success
    return {"library": library, "data": data, "truth": truth, "corpus": corpus}
