"""Faces: our batched pipeline against deepface's per-photo path, as the reference used it, on the same photos.

    .venv/bin/python bench/faces.py [--generated N] [--reference-limit N] [--calibrate]

Photos: ../shared/faces/deepface (labelled portraits, a couple, a group selfie) and N generated 12 MP JPEGs:
portraits from that set and small LFW faces (~80-140 px, as in a group photo) pasted into large, faceless,
grainy backgrounds, so where the faces are is known. The reference is `DeepFace.represent(path,
model_name="Facenet", detector_backend="mtcnn", enforce_detection=False)` one photo at a time. Each pipeline
runs in a process of its own, models loaded and warmed up before the clock starts, so its peak RSS is its own.
Prints photos/s, faces found, recall against the labels, the speed ratio against the target (>= 5x at equal or
better recall) and each peak RSS.

--calibrate measures what DetectorSettings chose instead: detection time and recall for several detection sizes
and confidence cut-offs, on the same photos, on 12 MP photos with faces of 40-120 px (where each detection size
stops finding faces) and on ../shared/faces/lfw_dev; detections touching no pasted face are counted as false.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data as skimage_data

SHARED_DIR = Path(__file__).resolve().parents[1].parent / "shared"
DEEPFACE_DIR = SHARED_DIR / "faces" / "deepface"
LFW_DIR = SHARED_DIR / "faces" / "lfw_dev"
SPEED_TARGET = 5.0
GENERATED_SIZE = (4000, 3000)  # a 12 MP phone photo
# Pasted portraits are scaled so their long side is in this range: faces of ~150-700 px.
PORTRAIT_SIDES = (500, 1600)
PORTRAITS_PER_PHOTO = (1, 3)
# Small faces as in a group photo: the middle 150 px of an LFW photo (250 x 250) hold its face, ~110 px, and no
# other face; scaled, the face is about this share of the pasted square.
LFW_CROP = 150
LFW_FACE_SHARE = 0.75
SMALL_FACES_PER_PHOTO = (0, 4)
SMALL_FACE_SIDES = (80, 140)
GRAIN_SIGMA = 6
# Faceless scikit-image samples (a cat included: a face detector should not take it for a person).
BACKGROUNDS = ("coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry", "retina")
# The reference takes minutes per 12 MP photo (it runs MTCNN on the photo with a border of half its size).
DEFAULT_REFERENCE_LIMIT = 4
CALIBRATION_SIDES = (640, 768, 1024, 1280, 1600)
CALIBRATION_CONFIDENCES = (0.8, 0.85, 0.9, 0.95, 0.97, 0.99)
# Face sizes (px of the 12 MP photo) of the size sweep: where each detection size stops finding faces.
SWEEP_FACE_SIDES = (40, 50, 60, 70, 80, 90, 100, 120)
SWEEP_PHOTOS = 6
# LFW photos are 250 x 250, centred on the labelled face.
LFW_CENTRE, LFW_CENTRE_RADIUS = 125, 30


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


# ---- photos and their labels ---------------------------------------------------------------------------------------


def labelled_portraits() -> list[str]:
    identities = json.loads((DEEPFACE_DIR / "identities.json").read_text())
    return sorted(name for names in identities.values() for name in names)


def deepface_set() -> tuple[list[Path], dict[str, list[list[int]] | int]]:
    """The corpus and its labels: 1 face per identity photo, 2 in couple.jpg (anywhere in the photo)."""
    labels: dict[str, list[list[int]] | int] = {name: 1 for name in labelled_portraits()}
    labels["couple.jpg"] = 2
    return sorted(DEEPFACE_DIR.glob("*.jpg")), labels


def _background(index: int, rng: np.random.Generator) -> Image.Image:
    sample = getattr(skimage_data, BACKGROUNDS[index % len(BACKGROUNDS)])()
    if sample.ndim == 2:
        sample = np.stack([sample] * 3, axis=-1)
    background = Image.fromarray(sample[..., :3]).resize(GENERATED_SIZE, Image.Resampling.BICUBIC)
    grain = rng.normal(0, GRAIN_SIGMA, (GENERATED_SIZE[1], GENERATED_SIZE[0], 1))
    return Image.fromarray(np.clip(np.asarray(background, np.float32) + grain, 0, 255).astype(np.uint8))


def paste_portraits(photo: Image.Image, rng: np.random.Generator, sides: tuple[int, int] = PORTRAIT_SIDES
                    ) -> list[tuple[Image.Image, int, int]]:
    """1-3 labelled portraits pasted into `photo` in columns, each at a long side drawn from `sides`; returns each
    portrait as pasted and its position."""
    portraits = labelled_portraits()
    pasted = []
    columns = int(rng.integers(PORTRAITS_PER_PHOTO[0], PORTRAITS_PER_PHOTO[1] + 1))
    cell = photo.width // columns
    for column in range(columns):
        portrait = Image.open(DEEPFACE_DIR / portraits[rng.integers(len(portraits))]).convert("RGB")
        side = int(rng.integers(*sides))
        portrait.thumbnail((min(side, cell), side), Image.Resampling.LANCZOS)
        x = column * cell + int(rng.integers(0, cell - portrait.width + 1))
        y = int(rng.integers(0, photo.height - portrait.height + 1))
        photo.paste(portrait, (x, y))
        pasted.append((portrait, x, y))
    return pasted


def _paste_small_faces(
    photo: Image.Image, face_sides: list[int], rectangles: list[list[int]], rng: np.random.Generator
) -> None:
    """LFW faces of about the given sizes, where no other pasted picture is; labels carry the face size."""
    sources = sorted(LFW_DIR.glob("*/*.jpg"))
    for face_side in face_sides:
        source = Image.open(sources[rng.integers(len(sources))]).convert("RGB")
        margin = (source.width - LFW_CROP) // 2
        side = round(face_side / LFW_FACE_SHARE)
        face = source.crop((margin, margin, margin + LFW_CROP, margin + LFW_CROP))
        face = face.resize((side, side), Image.Resampling.LANCZOS)
        for _attempt in range(100):
            x = int(rng.integers(0, GENERATED_SIZE[0] - side))
            y = int(rng.integers(0, GENERATED_SIZE[1] - side))
            if not any(_overlap([x, y, side, side], rectangle) for rectangle in rectangles):
                photo.paste(face, (x, y))
                rectangles.append([x, y, side, side, face_side])
                break


def _save(photo: Image.Image, path: Path) -> Path:
    photo.save(path, quality=90)
    return path


def generate_photos(directory: Path, count: int, seed: int = 7) -> tuple[list[Path], dict[str, list[list[int]]]]:
    """12 MP JPEGs with portraits and small faces pasted in; a label is [x, y, width, height, small face size]."""
    rng = np.random.default_rng(seed)
    paths, labels = [], {}
    for index in range(count):
        photo = _background(index, rng)
        rectangles = [[x, y, portrait.width, portrait.height, 0] for portrait, x, y in paste_portraits(photo, rng)]
        small = int(rng.integers(SMALL_FACES_PER_PHOTO[0], SMALL_FACES_PER_PHOTO[1] + 1))
        _paste_small_faces(photo, [int(rng.integers(*SMALL_FACE_SIDES)) for _ in range(small)], rectangles, rng)
        paths.append(_save(photo, directory / f"generated_{index:02d}.jpg"))
        labels[paths[-1].name] = rectangles
    return paths, labels


def size_sweep_photos(directory: Path, seed: int = 11) -> tuple[list[Path], dict[str, list[list[int]]]]:
    """12 MP JPEGs each holding one small face of every size in SWEEP_FACE_SIDES."""
    rng = np.random.default_rng(seed)
    paths, labels = [], {}
    for index in range(SWEEP_PHOTOS):
        photo, rectangles = _background(index, rng), []
        _paste_small_faces(photo, list(SWEEP_FACE_SIDES), rectangles, rng)
        paths.append(_save(photo, directory / f"sweep_{index:02d}.jpg"))
        labels[paths[-1].name] = rectangles
    return paths, labels


def recall(found: dict[str, list[list[float]]], labels: dict[str, list[list[int]] | int]) -> tuple[int, int]:
    """(labelled faces found, labelled faces): a count label needs that many faces, a rectangle one face inside."""
    hits = total = 0
    for name, label in labels.items():
        boxes = found.get(name, [])
        if isinstance(label, int):
            hits, total = hits + min(len(boxes), label), total + label
            continue
        for rectangle in label:
            total += 1
            hits += any(_inside(box, rectangle) for box in boxes)
    return hits, total


def _inside(box: list[float], rectangle: list[int]) -> bool:
    (box_x, box_y, box_width, box_height, *_), (x, y, width, height, *_) = box, rectangle
    return x <= box_x + box_width / 2 <= x + width and y <= box_y + box_height / 2 <= y + height


def _overlap(box: list[float], rectangle: list[int]) -> bool:
    (box_x, box_y, box_width, box_height, *_), (x, y, width, height, *_) = box, rectangle
    return box_x < x + width and x < box_x + box_width and box_y < y + height and y < box_y + box_height


def false_detections(found: dict[str, list[list[float]]], labels: dict[str, list[list[int]]]) -> int:
    """Detections touching no pasted picture: faces where there are none. (A face cut by the edge of a pasted
    portrait, a person in its background, is real, so touching is enough.)"""
    return sum(
        not any(_overlap(box, rectangle) for rectangle in labels[name])
        for name, boxes in found.items()
        for box in boxes
    )


def small_only(labels: dict[str, list[list[int]]], face_side: int | None = None) -> dict[str, list[list[int]]]:
    """The labels of pasted small faces: all of them, or those of one size."""
    return {
        name: [rectangle for rectangle in rectangles if rectangle[4] and face_side in (None, rectangle[4])]
        for name, rectangles in labels.items()
    }


# ---- the two pipelines, each in a process of its own ---------------------------------------------------------------


def run_ours(sets: dict[str, list[str]]) -> dict:
    from photo_assets.models import face_analyzer
    from photo_assets.settings import Settings

    start = time.perf_counter()
    analyzer = face_analyzer(Settings.from_env().models_dir)
    analyzer.load()
    load_seconds = time.perf_counter() - start
    warm_up = next(iter(sets.values()))[:1]
    list(analyzer.analyse((path, Path(path)) for path in warm_up))
    results = {}
    for set_name, paths in sets.items():
        start = time.perf_counter()
        found = {}
        for path, result in analyzer.analyse((path, Path(path)) for path in paths):
            found[Path(path).name] = [[f.x, f.y, f.width, f.height, f.confidence] for f in getattr(result, "faces", ())]
        results[set_name] = {"seconds": time.perf_counter() - start, "found": found}
    return {"load_seconds": load_seconds, "sets": results, "model_version": analyzer.model_version}


def run_deepface(sets: dict[str, list[str]]) -> dict:
    from photo_assets import models
    from photo_assets.settings import Settings

    models_dir = Settings.from_env().models_dir
    os.environ["DEEPFACE_HOME"] = str(models_dir)  # deepface's own loader finds the verified file there
    models.verify_weights(models_dir, models.FACENET)
    start = time.perf_counter()
    from deepface import DeepFace

    DeepFace.build_model("Facenet")
    DeepFace.build_model("mtcnn", task="face_detector")
    load_seconds = time.perf_counter() - start

    def represent(path: str) -> list[dict]:
        return DeepFace.represent(path, model_name="Facenet", detector_backend="mtcnn", enforce_detection=False)

    represent(next(iter(sets.values()))[0])
    results = {}
    for set_name, paths in sets.items():
        start = time.perf_counter()
        found = {}
        for path in paths:
            # With enforce_detection=False a photo without faces comes back as one "face" of confidence 0.
            faces = [face for face in represent(path) if face["face_confidence"] > 0]
            found[Path(path).name] = [
                [*(face["facial_area"][key] for key in "xywh"), face["face_confidence"]] for face in faces
            ]
        results[set_name] = {"seconds": time.perf_counter() - start, "found": found}
    return {"load_seconds": load_seconds, "sets": results}


WORKERS = {"ours": run_ours, "deepface": run_deepface}


def run_worker(pipeline: str, sets: dict[str, list[str]], work: Path) -> dict:
    request, answer = work / f"{pipeline}-request.json", work / f"{pipeline}-answer.json"
    request.write_text(json.dumps(sets))
    subprocess.run([sys.executable, __file__, "--worker", pipeline, str(request), str(answer)], check=True)
    return json.loads(answer.read_text())


def worker_main(pipeline: str, request: Path, answer: Path) -> None:
    result = WORKERS[pipeline](json.loads(request.read_text()))
    result["peak_rss_mb"] = peak_rss_mb()
    answer.write_text(json.dumps(result))


# ---- comparison ----------------------------------------------------------------------------------------------------


def compare(generated: int, reference_limit: int) -> None:
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        corpus, corpus_labels = deepface_set()
        photos, photo_labels = generate_photos(work, generated)
        print(f"photos: {len(corpus)} from {DEEPFACE_DIR}, {len(photos)} generated {GENERATED_SIZE[0]}x"
              f"{GENERATED_SIZE[1]} JPEGs with {sum(map(len, photo_labels.values()))} pasted faces")
        sets = {"deepface": [str(p) for p in corpus], "generated": [str(p) for p in photos]}
        reference_sets = {"deepface": sets["deepface"], "generated": sets["generated"][:reference_limit]}
        ours = run_worker("ours", sets, work)
        reference = run_worker("deepface", reference_sets, work)
    labels = {"deepface": corpus_labels, "generated": photo_labels}
    print(f"\nours: {ours['model_version']}; models loaded in {ours['load_seconds']:.1f} s, "
          f"deepface's in {reference['load_seconds']:.1f} s")
    for set_name in sets:
        print(f"\n== {set_name}")
        # The photos deepface ran on: where the two recalls are compared.
        common = set(reference["sets"][set_name]["found"])
        common_labels = {name: value for name, value in labels[set_name].items() if name in common}
        rates, common_hits = {}, {}
        for label, result in (("ours", ours), ("deepface", reference)):
            done = result["sets"][set_name]
            names = set(done["found"])
            set_labels = {name: value for name, value in labels[set_name].items() if name in names}
            hits, total = recall(done["found"], set_labels)
            faces = sum(map(len, done["found"].values()))
            rates[label] = len(names) / done["seconds"]
            line = (f"  {label:9s} {len(names):3d} photos in {done['seconds']:7.1f} s = {rates[label]:6.3f} photos/s; "
                    f"{faces} faces found; recall {hits}/{total}")
            if set_name == "generated":
                small_hits, small_total = recall(done["found"], small_only(set_labels))
                line += (f" (small faces {small_hits}/{small_total}); "
                         f"{false_detections(done['found'], set_labels)} false")
            print(line)
            common_hits[label], common_total = recall({name: done["found"][name] for name in common}, common_labels)
            if names != common:
                print(f"  {'':9s} on the {len(common)} photos deepface ran on: "
                      f"recall {common_hits[label]}/{common_total}")
        ratio = rates["ours"] / rates["deepface"]
        met = ratio >= SPEED_TARGET and common_hits["ours"] >= common_hits["deepface"]
        print(f"  ratio: {ratio:.1f}x; target >= {SPEED_TARGET:.0f}x at equal or better recall: "
              f"{'met' if met else 'MISSED'}")
    print(f"\npeak RSS: ours {ours['peak_rss_mb']:,.0f} MB, deepface {reference['peak_rss_mb']:,.0f} MB")


# ---- calibration of DetectorSettings -------------------------------------------------------------------------------


def calibrate(generated: int) -> None:
    from photo_assets.analysis.faces import DetectorSettings
    from photo_assets.analysis.images import open_oriented
    from photo_assets.models import face_analyzer
    from photo_assets.settings import Settings

    corpus, corpus_labels = deepface_set()
    lfw = sorted(LFW_DIR.glob("*/*.jpg"))
    with tempfile.TemporaryDirectory() as work:
        photos, photo_labels = generate_photos(Path(work), generated)
        sweep, sweep_labels = size_sweep_photos(Path(work))
        images = {path.name: open_oriented(path) for path in corpus + photos + sweep}
    print(f"{len(corpus)} corpus photos, {len(photos)} generated 12 MP photos, {len(sweep)} 12 MP photos with faces "
          f"of {SWEEP_FACE_SIDES} px, {len(lfw)} LFW photos. Recall = labelled faces found; false = detections "
          "touching no pasted picture")
    face_analyzer(Settings.from_env().models_dir).load()
    for side in CALIBRATION_SIDES:
        detector = replace(DetectorSettings(), detect_max_side=side, min_confidence=0.0)
        analyzer = face_analyzer(Settings.from_env().models_dir, detector)
        found, seconds = {}, {}
        for set_name, paths in (("corpus", corpus), ("generated", photos), ("sweep", sweep)):
            start = time.perf_counter()
            for path in paths:
                faces = analyzer.detect(images[path.name])
                found[path.name] = [[f.x, f.y, f.width, f.height, f.confidence] for f in faces]
            seconds[set_name] = (time.perf_counter() - start) / len(paths)
        print(f"\ndetect_max_side {side}: detection takes {seconds['corpus']:.2f} s per corpus photo, "
              f"{seconds['generated']:.2f} s per 12 MP photo")
        for cut in CALIBRATION_CONFIDENCES:
            kept = {name: [box for box in boxes if box[4] > cut] for name, boxes in found.items()}
            corpus_hits, corpus_total = recall(kept, corpus_labels)
            generated_found = {name: kept[name] for name in photo_labels}
            photo_hits, photo_total = recall(generated_found, photo_labels)
            sweep_found = {name: kept[name] for name in sweep_labels}
            by_size = " ".join(
                "{}/{}".format(*recall(sweep_found, small_only(sweep_labels, face_side)))
                for face_side in SWEEP_FACE_SIDES
            )
            false = false_detections(generated_found, photo_labels) + false_detections(sweep_found, sweep_labels)
            print(f"  confidence > {cut:.2f}: corpus {corpus_hits}/{corpus_total}, "
                  f"generated {photo_hits}/{photo_total}, faces of {'/'.join(map(str, SWEEP_FACE_SIDES))} px: "
                  f"{by_size}; {false} false")
    lfw_centre, lfw_other = [], []
    analyzer = face_analyzer(Settings.from_env().models_dir, replace(DetectorSettings(), min_confidence=0.0))
    for path in lfw:
        faces = analyzer.detect(open_oriented(path))
        off_centre = [np.hypot(f.x + f.width / 2 - LFW_CENTRE, f.y + f.height / 2 - LFW_CENTRE) for f in faces]
        centre = int(np.argmin(off_centre)) if faces and min(off_centre) < LFW_CENTRE_RADIUS else None
        lfw_centre.append(faces[centre].confidence if centre is not None else 0.0)
        lfw_other += [f.confidence for index, f in enumerate(faces) if index != centre]
    centre, other = np.array(lfw_centre), np.array(lfw_other)
    print(f"\nLFW ({len(lfw)} photos, their own size): labelled face found / other detections (mostly real faces "
          "in the background)")
    for cut in CALIBRATION_CONFIDENCES:
        print(f"  confidence > {cut:.2f}: {np.sum(centre > cut)}/{len(centre)} / {np.sum(other > cut)}")


def main() -> None:
    if sys.argv[1:2] == ["--worker"]:
        worker_main(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generated", type=int, default=12, help="generated 12 MP photos (default 12)")
    parser.add_argument("--reference-limit", type=int, default=DEFAULT_REFERENCE_LIMIT,
                        help=f"generated photos deepface runs on (default {DEFAULT_REFERENCE_LIMIT})")
    parser.add_argument("--calibrate", action="store_true", help="measure detection size and confidence cut-off")
    args = parser.parse_args()
    if not DEEPFACE_DIR.is_dir():
        sys.exit(f"no face corpus at {DEEPFACE_DIR}")
    if args.calibrate:
        calibrate(args.generated)
    else:
        compare(args.generated, args.reference_limit)


if __name__ == "__main__":
    main()
