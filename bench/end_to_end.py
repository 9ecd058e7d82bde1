"""End to end: a cold `photo-assets run` on N phone-like 12 MP JPEGs, against a plain full decode of the same files.

    .venv/bin/python bench/end_to_end.py [--photos N] [--compare REF ...] [--keep DIR]

Photos: N 4,000 x 3,000 JPEGs as phones write them: EXIF make, model, capture time and GPS; every fifth stored
sideways with orientation 6; half carry an EXIF thumbnail (160 x 120, in IFD1); 40% hold 1-3 portraits from
../shared/faces/deepface pasted with a long side of 300-1,100 px, the rest none. The faces pasted are those MTCNN
(this checkout's analyser) finds in each portrait alone at its pasted size, moved to where it was pasted; those
below the detector's minimum (`min_face_size` pixels of the 1,024 px detection copy: 78 px of the photo), such as a
small face in a portrait's background, are counted apart, as the analyser does not promise them.

The yardstick: a plain full Pillow decode (open + load) of every file, in this process. Then, for this checkout and
each --compare REF (a git ref extracted with `git archive`, so before and after run on the same photos in the same
load), `python -m photo_assets.cli run --library L --data D` in a subprocess, with a fresh DAGSTER_HOME (a copy of
dagster_home/dagster.yaml) and a fresh data folder. Prints photos/s, the ratio to the yardstick, seconds per step
(from the runs' STEP_START/STEP_SUCCESS events), pasted faces found (a detection with IoU >= 0.5), detections
touching no pasted portrait, and the peak RSS of the run's process tree (sampled from /proc every 0.2 s). With
--compare, it also compares outputs with the first REF: top colour equal, face boxes IoU, embeddings cosine.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # the runs' TensorFlow, and this one's, quiet

import numpy as np  # noqa: E402
from PIL import Image, TiffImagePlugin  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # devtools, when run as a script
from faces import DEEPFACE_DIR, _background, paste_portraits  # noqa: E402

from devtools.synthetic import exif_with_thumbnail  # noqa: E402
from photo_assets.analysis.regions import overlap  # noqa: E402

PROJECT_DIR = Path(__file__).resolve().parents[1]
SIZE = (4000, 3000)
FACE_SHARE = 0.4
PORTRAIT_SIDES = (300, 1100)
SIDEWAYS_EVERY = 5
THUMBNAIL_SIZE = (160, 120)
JPEG_QUALITY = 90
IOU_FOUND = 0.5
RSS_SAMPLE_SECONDS = 0.2
# EXIF tags
MAKE, MODEL, ORIENTATION, DATETIME, EXIF_IFD, GPS_IFD, DATETIME_ORIGINAL = 0x010F, 0x0110, 0x0112, 0x0132, 0x8769, 0x8825, 0x9003
CAMERAS = [("Apple", "iPhone 13"), ("samsung", "SM-G991B"), ("Google", "Pixel 7")]
PLACES = [(48.8566, 2.3522), (51.5074, -0.1278), (40.4168, -3.7038), (-33.8688, 151.2093), (35.6762, 139.6503)]


# ---- the library ---------------------------------------------------------------------------------------------------


def _dms(value: float) -> tuple:
    value = abs(value)
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    seconds = (value - degrees - minutes / 60) * 3600
    return tuple(TiffImagePlugin.IFDRational(part) for part in (degrees, minutes, round(seconds, 4)))


def _exif(index: int, orientation: int, rng: np.random.Generator) -> Image.Exif:
    exif = Image.Exif()
    make, model = CAMERAS[index % len(CAMERAS)]
    taken = (datetime(2024, 1, 1) + timedelta(hours=int(rng.integers(0, 24 * 365)))).strftime("%Y:%m:%d %H:%M:%S")
    exif[MAKE], exif[MODEL], exif[ORIENTATION], exif[DATETIME] = make, model, orientation, taken
    exif.get_ifd(EXIF_IFD)[DATETIME_ORIGINAL] = taken
    latitude, longitude = PLACES[index % len(PLACES)]
    latitude, longitude = latitude + rng.normal(0, 0.01), longitude + rng.normal(0, 0.01)
    exif.get_ifd(GPS_IFD).update(
        {1: "N" if latitude >= 0 else "S", 2: _dms(latitude), 3: "E" if longitude >= 0 else "W", 4: _dms(longitude)}
    )
    return exif


def generate(library: Path, count: int, seed: int = 12) -> dict[str, list[tuple[Image.Image, int, int]]]:
    """The photos; per file name, the portraits pasted into it (in upright, oriented pixels)."""
    rng = np.random.default_rng(seed)
    library.mkdir(parents=True, exist_ok=True)
    with_faces = set(rng.choice(count, round(count * FACE_SHARE), replace=False).tolist())
    pasted = {}
    for index in range(count):
        photo = _background(index, rng)
        name = f"IMG_{index:05d}.jpg"
        pasted[name] = paste_portraits(photo, rng, PORTRAIT_SIDES) if index in with_faces else []
        orientation = 6 if index % SIDEWAYS_EVERY == SIDEWAYS_EVERY - 1 else 1
        # Orientation 6: the sensor's frame is the upright photo turned 90 degrees anticlockwise.
        stored = photo.transpose(Image.Transpose.ROTATE_90) if orientation == 6 else photo
        exif = _exif(index, orientation, rng)
        if index % 2 == 0:
            size = THUMBNAIL_SIZE if stored.width > stored.height else THUMBNAIL_SIZE[::-1]
            data = exif_with_thumbnail(exif, stored.resize(size, Image.Resampling.BILINEAR))
        else:
            data = exif.tobytes()
        stored.save(library / name, quality=JPEG_QUALITY, exif=data)
    return pasted


def pasted_faces(pasted: dict[str, list[tuple[Image.Image, int, int]]]) -> tuple[dict, dict]:
    """The faces MTCNN finds in each pasted portrait alone, in the photo's pixels: those the analyser promises to
    find (at least `min_face_size` pixels in the photo's detection copy), and those below it (a small face in a
    portrait's background, blown up to a few dozen pixels of the photo)."""
    from photo_assets.models import face_analyzer
    from photo_assets.settings import Settings

    analyzer = face_analyzer(Settings.from_env().models_dir)
    smallest = analyzer.settings.min_face_size * max(SIZE) / analyzer.settings.detect_max_side
    findable: dict[str, list[tuple[int, int, int, int]]] = {}
    too_small: dict[str, list[tuple[int, int, int, int]]] = {}
    for name, portraits in pasted.items():
        findable[name], too_small[name] = [], []
        for portrait, x, y in portraits:
            for face in analyzer.detect(portrait):
                box = (x + face.x, y + face.y, face.width, face.height)
                (findable if max(face.width, face.height) >= smallest else too_small)[name].append(box)
    return findable, too_small


# ---- measuring -----------------------------------------------------------------------------------------------------


def yardstick(paths: list[Path]) -> float:
    """Seconds for a plain full decode of every file."""
    start = time.perf_counter()
    for path in paths:
        with Image.open(path) as image:
            image.load()
    return time.perf_counter() - start


def _tree_rss(root: int) -> int:
    """Resident bytes of a process and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            with open(f"/proc/{pid}/statm") as statm:
                total += int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            pass
    return total


def models_for(code: Path, work: Path, label: str) -> Path:
    """A models folder the checkout at `code` accepts: this checkout's own, or for another ref, its setup step run
    on a copy of the weights already fetched (another release converts other networks, and checks its manifest)."""
    if code == PROJECT_DIR:
        return (PROJECT_DIR / "models").resolve()
    models = work / f"models_{label}"
    shutil.copytree(PROJECT_DIR / "models", models, ignore=shutil.ignore_patterns("networks"))
    env = dict(os.environ, PYTHONPATH=str(code), PHOTO_ASSETS_MODELS=str(models))
    subprocess.run([sys.executable, "-m", "photo_assets.models", "fetch"], cwd=code, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return models


def run_pipeline(code: Path, library: Path, work: Path, label: str) -> dict:
    """A cold `photo-assets run` of the checkout at `code`: seconds, peak tree RSS, data folder, Dagster home."""
    home, data = work / f"dagster_home_{label}", work / f"data_{label}"
    home.mkdir()
    shutil.copy(PROJECT_DIR / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    env = dict(os.environ, PYTHONPATH=str(code), DAGSTER_HOME=str(home),
               PHOTO_ASSETS_MODELS=str(models_for(code, work, label)),
               PHOTO_ASSETS_GEODATA=str(PROJECT_DIR / "geodata"))
    command = [sys.executable, "-m", "photo_assets.cli", "run", "--library", str(library), "--data", str(data)]
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=code, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak, done = [0], threading.Event()

    def sample() -> None:
        while not done.wait(RSS_SAMPLE_SECONDS):
            peak[0] = max(peak[0], _tree_rss(process.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output = process.stdout.read()
    process.wait()
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    if process.returncode:
        print(output)
        raise SystemExit(f"{label}: photo-assets run failed ({process.returncode})")
    return {"label": label, "seconds": seconds, "peak_rss": peak[0], "data": data, "home": home, "output": output}


def step_seconds(home: Path) -> dict[str, float]:
    """Seconds per step, summed over the runs in a Dagster home (STEP_START to STEP_SUCCESS/FAILURE)."""
    import dagster as dg
    from dagster._core.instance.ref import InstanceRef

    instance = dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))
    totals: dict[str, float] = {}
    for run in instance.get_runs():
        started = {}
        for entry in instance.all_logs(run.run_id):
            event = entry.dagster_event
            if event is None or event.step_key is None:
                continue
            if event.event_type_value == "STEP_START":
                started[event.step_key] = entry.timestamp
            elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE") and event.step_key in started:
                totals[event.step_key] = totals.get(event.step_key, 0.0) + entry.timestamp - started[event.step_key]
    instance.dispose()
    return totals


def _table(data: Path, asset: str):
    import pyarrow.parquet as pq

    files = sorted((data / asset).glob("*.parquet"))
    return pq.read_table(files) if files else None


def found_boxes(data: Path, names: dict[str, str]) -> dict[str, list[tuple]]:
    """Per file name, each detection's (x, y, width, height) and embedding."""
    detections, embeddings = _table(data, "face_detections"), _table(data, "face_embeddings")
    vectors = {}
    if embeddings is not None:
        vectors = dict(zip(embeddings["face_id"].to_pylist(), embeddings["embedding"].to_pylist()))
    found: dict[str, list[tuple]] = {name: [] for name in names.values()}
    for row in detections.to_pylist() if detections is not None else []:
        found[names[row["photo_id"]]].append(
            ((row["x"], row["y"], row["width"], row["height"]), np.asarray(vectors.get(row["face_id"]), np.float32))
        )
    return found


def top_colours(data: Path, names: dict[str, str]) -> dict[str, str]:
    table = _table(data, "color_histograms")
    if table is None:
        return {}
    return {names[row["photo_id"]]: row["color"] for row in table.to_pylist() if row["rank"] == 1}


def score(found: dict[str, list[tuple]], truth: dict[str, list[tuple]], pasted) -> tuple[list, int, int]:
    """(pasted faces missed as (photo, box), pasted faces, detections touching no pasted portrait)."""
    missed = [
        (name, face) for name, faces in truth.items() for face in faces
        if not any(overlap(box, face) >= IOU_FOUND for box, _ in found.get(name, []))
    ]
    stray = sum(
        not any(overlap(box, (x, y, p.width, p.height)) > 0 for p, x, y in pasted[name])
        for name, boxes in found.items()
        for box, _ in boxes
    )
    return missed, sum(map(len, truth.values())), stray


def compare_outputs(base: dict, other: dict, base_colours: dict, other_colours: dict) -> str:
    ious, cosines, unmatched = [], [], 0
    for name, boxes in base.items():
        for box, vector in boxes:
            best = max(other.get(name, []), key=lambda item: overlap(box, item[0]), default=None)
            if best is None or overlap(box, best[0]) < IOU_FOUND:
                unmatched += 1
                continue
            ious.append(overlap(box, best[0]))
            cosines.append(float(vector @ best[1] / (np.linalg.norm(vector) * np.linalg.norm(best[1]))))
    same_colour = sum(base_colours[name] == other_colours.get(name) for name in base_colours)
    text = f"top colour equal {same_colour}/{len(base_colours)}; "
    if ious:
        text += (f"faces matched {len(ious)} (unmatched {unmatched}), box IoU min {min(ious):.3f} mean "
                 f"{np.mean(ious):.3f}, embedding cosine min {min(cosines):.5f} mean {np.mean(cosines):.5f}")
    return text


def extract(ref: str, work: Path, repository: Path) -> Path:
    target = work / f"code_{ref.replace('/', '_')}"
    target.mkdir()
    archive = subprocess.run(["git", "-C", str(repository), "archive", ref], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=200, help="photos generated (default 200)")
    parser.add_argument("--compare", action="append", default=[], metavar="REF",
                        help="also run this git ref's code (e.g. main), before this checkout's")
    parser.add_argument("--repository", type=Path, default=PROJECT_DIR, help="where --compare refs come from")
    parser.add_argument("--keep", type=Path, help="keep the library and outputs in this folder")
    args = parser.parse_args()
    if not DEEPFACE_DIR.is_dir():
        sys.exit(f"no face corpus at {DEEPFACE_DIR}")
    work = Path(tempfile.mkdtemp(prefix="end_to_end_")) if args.keep is None else args.keep
    work.mkdir(parents=True, exist_ok=True)
    try:
        library = work / "library"
        start = time.perf_counter()
        pasted = generate(library, args.photos)
        paths = sorted(library.glob("*.jpg"))
        names = {hashlib.sha256(path.read_bytes()).hexdigest(): path.name for path in paths}
        print(f"{len(paths)} photos of {SIZE[0]}x{SIZE[1]} generated in {time.perf_counter() - start:.0f} s "
              f"({sum(bool(p) for p in pasted.values())} with faces, every {SIDEWAYS_EVERY}th sideways, "
              f"half with an EXIF thumbnail)")
        yard = yardstick(paths)
        print(f"yardstick: full decode {yard:.1f} s = {len(paths) / yard:.2f} photos/s")
        results = []
        for ref in args.compare:
            results.append(run_pipeline(extract(ref, work, args.repository), library, work, ref))
        results.append(run_pipeline(PROJECT_DIR, library, work, "this-checkout"))
        yard_after = yardstick(paths)
        print(f"yardstick again after the runs: {yard_after:.1f} s (load drift {yard_after / yard:.2f}x)")
        truth, too_small = pasted_faces(pasted)
        outputs = {}
        for result in results:
            found = found_boxes(result["data"], names)
            colours = top_colours(result["data"], names)
            outputs[result["label"]] = found, colours
            missed, total, stray = score(found, truth, pasted)
            small_missed, small_total, _ = score(found, too_small, pasted)
            rate = len(paths) / result["seconds"]
            steps = step_seconds(result["home"])
            print(f"\n== {result['label']}: {result['seconds']:.1f} s = {rate:.2f} photos/s, "
                  f"{result['seconds'] / yard:.1f}x the yardstick; pasted faces found {total - len(missed)}/{total}, "
                  f"{stray} detections elsewhere; peak RSS {result['peak_rss'] / 2**30:.2f} GB")
            print(f"   faces in the portraits below the detector's minimum size: {small_total - len(small_missed)}/"
                  f"{small_total} found")
            print("   steps: " + ", ".join(f"{key} {value:.1f} s" for key, value in sorted(steps.items())))
            for name, (x, y, width, height) in missed + small_missed:
                print(f"   missed: {name} face at {x},{y}, {width}x{height} px ({max(width, height) / max(SIZE):.1%} "
                      "of the photo's long side)")
            last = result["output"].strip().splitlines()
            print("   " + "\n   ".join(last[-4:]))
        if len(results) > 1:
            base_found, base_colours = outputs[results[0]["label"]]
            for result in results[1:]:
                found, colours = outputs[result["label"]]
                print(f"\n{result['label']} against {results[0]['label']}: "
                      f"{compare_outputs(base_found, found, base_colours, colours)}")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
