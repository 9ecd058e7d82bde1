"""How the object detector's score threshold was chosen: every detection above a low floor on photos whose content
is known, then a sweep of thresholds, and the detector's time a photo.

    .venv/bin/python bench/objects.py [--shared ../shared] [--floor 0.1] [--threshold 0.35] [--side 512]

Photos: scikit-image's own (in its wheel: a cat, a cup, an astronaut, motorcycles, a horse, and things that are none
of COCO's 80 labels: a rocket, galaxies, coins, brick, grass), ../shared/corpus/gps (streets, a car, a bus, boats,
a bench, landscapes) and ../shared/faces/deepface (people; a tie where one shows). Truth is per photo: labels that
must be found, labels arguably there (not counted either way); anything else found is a wrong label. Photos are
decoded as the faces step does (open_reduced to the detector's 1,024 px) and found in the full photo's pixels.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # devtools and bench, when run as a script

from photo_assets import models  # noqa: E402
from photo_assets.analysis.faces import DetectorSettings  # noqa: E402
from photo_assets.analysis.images import open_reduced  # noqa: E402
from photo_assets.analysis.objects import INPUT_SIDE, MIN_SCORE  # noqa: E402
from photo_assets.settings import Settings  # noqa: E402

SKIMAGE = Path(__import__("skimage").__file__).parent / "data"
# photo (folder/name: skimage/, gps/ under ../shared/corpus/gps) -> (labels shown, labels arguably there)
TRUTH: dict[str, tuple[set[str], set[str]]] = {
    "skimage/astronaut.png": ({"person"}, {"airplane"}),  # the shuttle in the corner
    "skimage/chelsea.png": ({"cat"}, set()),
    "skimage/coffee.png": ({"cup"}, {"spoon", "bowl", "dining table"}),  # saucer, spoon, table top
    "skimage/motorcycle_left.png": ({"motorcycle"}, {"bicycle"}),
    "skimage/motorcycle_right.png": ({"motorcycle"}, {"bicycle"}),
    "skimage/horse.png": ({"horse"}, set()),  # a black silhouette
    "skimage/camera.png": ({"person"}, set()),
    "skimage/rocket.jpg": (set(), {"airplane"}),
    "skimage/hubble_deep_field.jpg": (set(), set()),
    "skimage/coins.png": (set(), set()),
    "skimage/brick.png": (set(), set()),
    "skimage/grass.png": (set(), set()),
    "gps/ianare__jpg__Kodak_CX7530.jpg": (set(), {"bird"}),  # a lizard
    "gps/ianare__jpg__gps__DSCN0010.jpg": (set(), {"potted plant"}),
    "gps/ianare__jpg__gps__DSCN0012.jpg": (set(), {"bench"}),
    "gps/ianare__jpg__gps__DSCN0021.jpg": ({"bench"}, {"potted plant"}),
    "gps/ianare__jpg__gps__DSCN0025.jpg": ({"person"}, {"car", "traffic light", "stop sign"}),
    "gps/ianare__jpg__gps__DSCN0027.jpg": (set(), {"person", "fire hydrant", "car"}),
    "gps/ianare__jpg__gps__DSCN0029.jpg": ({"car"}, {"person", "potted plant", "motorcycle"}),
    "gps/ianare__jpg__gps__DSCN0038.jpg": (set(), {"person", "car"}),
    "gps/ianare__jpg__gps__DSCN0040.jpg": (set(), {"person", "car"}),
    "gps/ianare__jpg__gps__DSCN0042.jpg": (set(), {"person", "car", "traffic light", "stop sign"}),
    "gps/ianare__jpg__hdr__iphone_hdr_NO.jpg": (set(), {"potted plant", "vase"}),
    "gps/ianare__jpg__mobile__HMD_Nokia_8.3_5G.jpg": ({"boat"}, set()),
    "gps/mei__jpg__Apple_iPhone_4.jpg": (set(), {"dining table", "book"}),  # a bill on a table
    "gps/mei__jpg__Apple_iPhone_5.jpg": (set(), {"potted plant", "vase"}),
    "gps/mei__jpg__FujiFilm_FinePixS1Pro_(1).jpg": (set(), set()),  # antennas
    "gps/mei__jpg__FujiFilm_FinePixS1Pro_(2).jpg": (set(), set()),  # hay bales
    "gps/mei__jpg__FujiFilm_FinePixS1Pro_(4).jpg": (set(), {"person"}),  # Angel of the North
    "gps/mei__jpg__FujiFilm_FinePixS1Pro_(5).jpg": ({"bus"}, {"car", "truck", "person", "clock"}),  # a clock on the building
    "gps/mei__jpg__FujiFilm_FinePixS2Pro.jpg": (set(), set()),  # Eiffel tower
    "gps/mei__jpg__HTC_Desire.jpg": ({"car"}, set()),
    "gps/mei__jpg__Nikon_D5000.jpg": (set(), {"train"}),  # railway tracks
    "gps/mei__jpg__Olympus_FE230-X790.jpg": (set(), set()),  # snowy slope
    "gps/mei__jpg__Oppo_R7_Plus.jpg": (set(), set()),  # cairn
    "gps/mei__jpg__Panasonic_DMC-LX3_(Lumix).jpg": (set(), {"person"}),  # monument
    "gps/mei__jpg__Samsung_SM-N900A_(Galaxy_Note_3).jpg": (set(), {"person", "boat", "umbrella", "chair"}),
    "gps/mei__jpg__Sony_DSC-HX5V_(2).jpg": (set(), {"stop sign"}),  # street sign
}
# deepface's photos: people, and a tie where one shows.
TIES = {"couple.jpg", "img21.jpg", "img29.jpg"}


def people_photo(name: str) -> tuple[set[str], set[str]]:
    return ({"person", "tie"} if name in TIES else {"person"}), {"tie", "handbag", "cell phone"}




def photo_path(key: str, shared: Path) -> Path:
    folder, name = key.split("/", 1)
    return SKIMAGE / name if folder == "skimage" else shared / "corpus" / "gps" / name


def truth(shared: Path) -> dict[Path, tuple[set[str], set[str]]]:
    known = {photo_path(key, shared): labels for key, labels in TRUTH.items()}
    for path in sorted((shared / "faces" / "deepface").glob("*.jpg")):
        known[path] = people_photo(path.name)
    return known


def sweep(found: dict, known: dict, thresholds) -> list[tuple[float, int, int, int, int]]:
    """(threshold, labels found, labels missed, wrong labels, photos with a wrong label), per photo and label."""
    rows = []
    for threshold in thresholds:
        hits = misses = wrong = wrong_photos = 0
        for path, boxes in found.items():
            shown, allowed = known[path]
            labels = {box.label for box in boxes if box.score >= threshold}
            hits, misses = hits + len(shown & labels), misses + len(shown - labels)
            extra = labels - shown - allowed
            wrong, wrong_photos = wrong + len(extra), wrong_photos + bool(extra)
        rows.append((threshold, hits, misses, wrong, wrong_photos))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    parser.add_argument("--floor", type=float, default=0.1)
    parser.add_argument("--threshold", type=float, default=MIN_SCORE)
    parser.add_argument("--side", type=int, default=INPUT_SIDE, help="the long side the photo is fitted to")
    args = parser.parse_args()
    detector = replace(models.object_detector(Settings.from_env().models_dir), side=args.side)
    known, found, seconds = truth(args.shared), {}, []
    side = DetectorSettings().detect_max_side
    for path in known:
        image, full_size = open_reduced(path, side)
        started = time.perf_counter()
        found[path] = detector.detect(image, full_size, min_score=args.floor)
        seconds.append(time.perf_counter() - started)
    for path, boxes in found.items():
        shown, allowed = known[path]
        marks = [("+" if box.label in shown else "~" if box.label in allowed else "X") + f"{box.label} {box.score:.2f}"
                 for box in boxes]
        missing = sorted(shown - {box.label for box in boxes if box.score >= args.threshold})
        print(f"{path.name[:46]:46s} want {sorted(shown) or '-'}; found {', '.join(marks) or '-'}"
              + (f"; MISSED at {args.threshold}: {missing}" if missing else ""))
    pairs = sum(len(shown) for shown, _ in known.values())
    print(f"\nthreshold  found  missed  wrong  photos-wrong   ({pairs} labels shown in {len(known)} photos)")
    for threshold, hits, misses, wrong, wrong_photos in sweep(found, known, np.arange(0.10, 0.61, 0.05)):
        print(f"  {threshold:.2f}     {hits:4d}  {misses:6d}  {wrong:5d}  {wrong_photos:12d}")
    print(f"\ndetector: median {1000 * float(np.median(seconds[1:])):.1f} ms a photo (input {detector.model_version})")


if __name__ == "__main__":
    main()
