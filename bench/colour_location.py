"""Colour histogram and location against straightforward transcriptions of the reference, in one process.

    .venv/bin/python bench/colour_location.py [--quick] [--synthetic N] [--reference-points N]

Photos: ../shared/corpus/gps (when present) plus N synthetic 12 MP JPEGs with GPS, written to a temp dir; most carry
a camera-style EXIF thumbnail, some none or a letterboxed one (they take the reduced-decode path).
Prints throughput of ours and of the reference, per path histogram_for_path took (EXIF thumbnail or reduced decode),
their ratio against the targets (colour >= 100x the per-pixel reference, location >= 1,000x the per-city loop),
whether the answers are identical (also on every ../shared/corpus/mixed photo that decodes), and the peak RSS.
`--quick` (~2 min) times 24 synthetic photos and 20 reference points.
Also prints, per `country_source`, the share of GeoNames places whose country comes out as GeoNames' own code, each
place left out of its own town lookup (`--places-only`: that section alone, ~15 s).
"""

from __future__ import annotations

import argparse
import colorsys
import math
import operator
import resource
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import shapely
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # devtools, when run as a script

from devtools.synthetic import exif_with_thumbnail  # noqa: E402
from photo_assets.analysis.colours import (
    DECODE_MIN_SIDE,
    MIN_SHARE,
    PALETTE,
    SAMPLE_SIZE,
    THUMBNAIL_MIN_SIDE,
    colour_histogram,
    histogram_for_path,
)
from photo_assets.analysis.images import (
    EXIF_ORIENTATION,
    GPS_IFD,
    PhotoError,
    open_exif_thumbnail,
    open_oriented,
    read_metadata,
)
from photo_assets.analysis.location import EARTH_RADIUS_M, TOWN_RADIUS_M, GeoIndex

GEODATA_DIR = Path(__file__).resolve().parents[1] / "geodata"

SHARED_DIR = Path(__file__).resolve().parents[1].parent / "shared"
SYNTHETIC_SIZE = (4000, 3000)  # a 12 MP phone photo
SYNTHETIC_WIDE_SIZE = (4240, 2832)  # a 12 MP 3:2 camera photo, whose 4:3 thumbnail is letterboxed
# The thumbnail cameras and phones embed, and how often each kind of synthetic photo occurs (out of KIND_CYCLE): one
# in ten has no faithful thumbnail (none, or a letterboxed one); phones store some photos sideways.
CAMERA_THUMBNAIL_SIZE = (160, 120)
KIND_CYCLE = 20
NO_THUMBNAIL_KINDS, LETTERBOXED_KINDS, SIDEWAYS_KINDS = {19}, {9}, {4, 14}
ORIENTATION_ROTATE_90_CW = 6
# Smooth colour fields plus grain: JPEGs of realistic size (~3 MB) and decode cost. A photo is a few dominant colours
# (sky, ground, subject), not 48 random ones, which would make near ties between the top two colours ~5x more common
# than in the corpora (the colour section prints both).
SYNTHETIC_CELLS = (6, 8)
SCENE_COLOURS = 3
SCENE_JITTER = 32
GRAIN_TILE = 512
GRAIN_AMPLITUDE = 12
# Synthetic GPS points: most near a GeoNames place (a town photo), some anywhere (sea, wilderness).
NEAR_PLACE_SHARE = 0.85
NEAR_PLACE_SPREAD_DEG = 0.08
COLOUR_TARGET = 100
LOCATION_TARGET = 1_000
# The location answer is timed over this many repetitions of the photos' points: one batch of ~250 is too short
# to time, and libraries are located in batches of thousands.
LOCATION_BATCH = 100_000
QUICK_SYNTHETIC, QUICK_REFERENCE_POINTS = 24, 20
VOTES = SAMPLE_SIZE[0] * SAMPLE_SIZE[1]
# The two sources histogram_for_path reads, and near ties: top two colours this few votes (~1 %) apart are decided
# by a pixel or two, so any shortcut, even 1-2 grey levels off, may swap them.
THUMBNAIL, REDUCED = "faithful EXIF thumbnail", "reduced decode"
NEAR_TIE_VOTES = 12


@dataclass
class Rate:
    items: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.items / self.seconds if self.seconds else math.inf


def report(label: str, ours: Rate, reference: Rate, unit: str, target: float) -> None:
    ratio = ours.per_second / reference.per_second
    verdict = "meets" if ratio >= target else "MISSES"
    print(
        f"  {label}: ours {ours.per_second:,.1f} {unit}/s, reference {reference.per_second:,.2f} {unit}/s, "
        f"ratio {ratio:,.0f}x ({verdict} the {target:,}x target)"
    )


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


# ---------------------------------------------------------------------------------------------------- photos


def corpus_photos() -> list[Path]:
    corpus = SHARED_DIR / "corpus" / "gps"
    if not corpus.is_dir():
        print(f"(no corpus at {corpus}: synthetic photos only)")
        return []
    return sorted(corpus.rglob("*.jpg"))


def _dms(value: float) -> tuple[Fraction, Fraction, Fraction]:
    value = abs(value)
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    seconds = (value - degrees - minutes / 60) * 3600
    return Fraction(degrees), Fraction(minutes), Fraction(round(seconds * 10_000), 10_000)


def synthetic_points(geo_index: GeoIndex, count: int, rng: np.random.Generator) -> np.ndarray:
    near = int(count * NEAR_PLACE_SHARE)
    places = geo_index.cities.sample(near, random_state=int(rng.integers(1 << 31)))
    latitudes = np.clip(places["latitude"].to_numpy() + rng.uniform(-1, 1, near) * NEAR_PLACE_SPREAD_DEG, -89, 89)
    longitudes = (places["longitude"].to_numpy() + rng.uniform(-1, 1, near) * NEAR_PLACE_SPREAD_DEG + 180) % 360 - 180
    anywhere_lat = np.degrees(np.arcsin(rng.uniform(-1, 1, count - near)))  # uniform over the sphere
    anywhere_lon = rng.uniform(-180, 180, count - near)
    return np.column_stack((np.r_[latitudes, anywhere_lat], np.r_[longitudes, anywhere_lon]))


def make_synthetic_photos(directory: Path, points: np.ndarray, rng: np.random.Generator) -> list[Path]:
    width, height = (max(sides) for sides in zip(SYNTHETIC_SIZE, SYNTHETIC_WIDE_SIZE))
    grain = rng.integers(-GRAIN_AMPLITUDE, GRAIN_AMPLITUDE + 1, (GRAIN_TILE, GRAIN_TILE, 3), dtype=np.int16)
    grain = np.tile(grain, (math.ceil(height / GRAIN_TILE), math.ceil(width / GRAIN_TILE), 1))
    paths = []
    for number, (latitude, longitude) in enumerate(points):
        kind = number % KIND_CYCLE
        size = SYNTHETIC_WIDE_SIZE if kind in LETTERBOXED_KINDS else SYNTHETIC_SIZE
        smooth = np.asarray(scene_cells(rng).resize(size, Image.Resampling.BICUBIC), dtype=np.int16)
        noise = np.roll(grain, number * 37, axis=1)[: size[1], : size[0]]
        image = Image.fromarray(np.clip(smooth + noise, 0, 255).astype(np.uint8))
        exif = Image.Exif()
        exif[GPS_IFD] = {
            1: "N" if latitude >= 0 else "S", 2: _dms(latitude), 3: "E" if longitude >= 0 else "W", 4: _dms(longitude)
        }
        if kind in SIDEWAYS_KINDS:  # stored as the sensor saw it; the thumbnail too, as cameras write it
            image = image.transpose(Image.Transpose.ROTATE_90)
            exif[EXIF_ORIENTATION] = ORIENTATION_ROTATE_90_CW
        path = directory / f"synthetic_{number:04d}.jpg"
        if kind in NO_THUMBNAIL_KINDS:
            image.save(path, quality=90, exif=exif)
        else:
            image.save(path, quality=90, exif=exif_with_thumbnail(exif, camera_thumbnail(image)))
        paths.append(path)
    return paths


def scene_cells(rng: np.random.Generator) -> Image.Image:
    """A coarse grid of cells, each one of a few scene colours (in random proportions) with some variation."""
    colours = rng.integers(0, 256, (SCENE_COLOURS, 3))
    chosen = rng.choice(SCENE_COLOURS, size=SYNTHETIC_CELLS, p=rng.dirichlet(np.ones(SCENE_COLOURS)))
    jitter = rng.integers(-SCENE_JITTER, SCENE_JITTER + 1, (*SYNTHETIC_CELLS, 3))
    return Image.fromarray(np.clip(colours[chosen] + jitter, 0, 255).astype(np.uint8))


def camera_thumbnail(image: Image.Image) -> Image.Image:
    """160 x 120 (or 120 x 160) from the photo itself, letterboxed when the photo is not 4:3, as cameras make it."""
    size = CAMERA_THUMBNAIL_SIZE if image.width >= image.height else CAMERA_THUMBNAIL_SIZE[::-1]
    fitted = image.copy()
    fitted.thumbnail(size, Image.Resampling.BICUBIC)
    thumbnail = Image.new("RGB", size)
    thumbnail.paste(fitted, ((size[0] - fitted.width) // 2, (size[1] - fitted.height) // 2))
    return thumbnail


# ---------------------------------------------------------------------------------------------------- colour

PALETTE_HSV_REFERENCE = {name: colorsys.rgb_to_hsv(*(c / 255 for c in rgb)) for name, rgb in PALETTE.items()}


def reference_votes(sample: Image.Image) -> list[tuple[str, float]]:
    """The reference's per-pixel loop (with SPEC's circular hue fix, so the answers are comparable)."""
    counts = dict.fromkeys(PALETTE_HSV_REFERENCE, 0)
    pixels = np.asarray(sample).reshape(-1, 3).tolist()
    for red, green, blue in pixels:
        hue, saturation, value = colorsys.rgb_to_hsv(red / 255, green / 255, blue / 255)
        best_name, best_score = None, -1.0
        for name, (palette_hue, palette_saturation, palette_value) in PALETTE_HSV_REFERENCE.items():
            hue_distance = abs(hue - palette_hue)
            hue_distance = min(hue_distance, 1 - hue_distance)
            score = (1 - hue_distance) * (1 - 0.5 * abs(saturation - palette_saturation)) * (
                1 - 0.25 * abs(value - palette_value)
            )
            if score > best_score:
                best_name, best_score = name, score
        counts[best_name] += 1
    shares = [(name, count / len(pixels)) for name, count in counts.items() if count / len(pixels) >= MIN_SHARE]
    return sorted(shares, key=lambda share: -share[1])


def reference_histogram(image: Image.Image) -> list[tuple[str, float]]:
    return reference_votes(image.resize(SAMPLE_SIZE, Image.Resampling.BICUBIC))


def source_sample(path: Path) -> tuple[str, Image.Image]:
    """Which source histogram_for_path reads for this photo, and the 32 x 32 sample it votes on."""
    thumbnail = open_exif_thumbnail(path, THUMBNAIL_MIN_SIDE)
    if thumbnail is not None:
        return THUMBNAIL, thumbnail.resize(SAMPLE_SIZE, Image.Resampling.BICUBIC)
    return REDUCED, open_oriented(path, max_side=DECODE_MIN_SIDE).resize(SAMPLE_SIZE, Image.Resampling.BICUBIC)


@dataclass
class ColourResult:
    """One photo: histogram_for_path's answer against the reference's on the fully decoded photo."""

    name: str
    photo_set: str
    source: str
    ours: list[tuple[str, float]]
    reference: list[tuple[str, float]]
    grey_level_error: np.ndarray  # |source's 32 x 32 sample - the full decode's|
    ours_seconds: float = 0.0
    reference_seconds: float = 0.0

    @property
    def same_top(self) -> bool:
        return self.ours[0][0] == self.reference[0][0]


def colour_result(path: Path, photo_set: str, ours: list[tuple[str, float]], reference: list[tuple[str, float]],
                  full_sample: Image.Image) -> ColourResult:
    source, sample = source_sample(path)
    error = np.abs(np.asarray(sample, float) - np.asarray(full_sample, float))
    return ColourResult(path.name, photo_set, source, ours, reference, error)


def agreement(results: list[ColourResult]) -> str:
    top_errors, distances = [], []
    for result in results:
        ours, reference = dict(result.ours), dict(result.reference)
        top = result.reference[0][0]
        top_errors.append(abs(ours.get(top, 0.0) - reference[top]))
        distances.append(sum(abs(ours.get(c, 0.0) - reference.get(c, 0.0)) for c in {*ours, *reference}))
    errors = np.stack([result.grey_level_error for result in results])
    return (
        f"same top colour {sum(result.same_top for result in results)}/{len(results)}; top colour's share off by "
        f"mean {np.mean(top_errors):.3f}, max {np.max(top_errors):.3f}; L1 distance of the histograms mean "
        f"{np.mean(distances):.3f}, max {np.max(distances):.3f}; 32x32 sample vs the full decode's: mean "
        f"{errors.mean():.2f}, 99th percentile {np.percentile(errors, 99):.0f}, max {errors.max():.0f} grey levels"
    )


def print_agreement(results: list[ColourResult], indent: str) -> None:
    """Agreement per source and overall, each photo whose top colour differs, and how often the reference itself is a
    near tie (the photos where any shortcut, even a 1-2 grey level one, may flip the top colour)."""
    for source in (THUMBNAIL, REDUCED):
        chosen = [result for result in results if result.source == source]
        if chosen:
            print(f"{indent}{source} ({len(chosen)} photos): {agreement(chosen)}")
    print(f"{indent}all: {agreement(results)}")
    for result in results:
        if not result.same_top:
            print(f"{indent}  differs ({result.source}): {result.name}: ours {_top_two(result.ours)}, reference "
                  f"{_top_two(result.reference)} ({_top_gap_votes(result.reference):.0f} votes apart)")
    gaps = np.array([_top_gap_votes(result.reference) for result in results])
    near_ties = [result for result in results if _top_gap_votes(result.reference) < NEAR_TIE_VOTES]
    print(f"{indent}reference's top two colours: median {np.median(gaps):.0f} votes apart; a near tie (under "
          f"{NEAR_TIE_VOTES}) for {len(near_ties)} photos ({len(near_ties) / len(results):.0%}), "
          f"of which ours has the same top colour for {sum(result.same_top for result in near_ties)}")


def _top_two(histogram: list[tuple[str, float]]) -> str:
    return ", ".join(f"{name} {share:.3f}" for name, share in histogram[:2])


def _top_gap_votes(histogram: list[tuple[str, float]]) -> float:
    return round((histogram[0][1] - (histogram[1][1] if len(histogram) > 1 else 0.0)) * VOTES)


def colour_section(photos: dict[Path, str]) -> None:
    """Each side in its own pass, as each would run through a library: ours (histogram_for_path on every file), then
    the reference (full decode, resize, per-pixel loop), then both once more on the very same 32x32 samples."""
    print(f"\n== colour: {len(photos)} photos")
    ours = {}
    for path in photos:
        start = time.perf_counter()
        try:
            answer = histogram_for_path(path)
        except PhotoError:
            continue  # the reference's decode reports it below
        ours[path] = answer, time.perf_counter() - start

    image_ours = image_reference = 0.0
    results, samples = [], []
    for path, photo_set in photos.items():
        try:
            start = time.perf_counter()
            full = open_oriented(path)  # the reference decodes every pixel
            decode_seconds = time.perf_counter() - start
        except PhotoError as error:
            print(f"  skipped {path.name}: {error}")
            continue
        start = time.perf_counter()
        reference = reference_histogram(full)
        reference_seconds = time.perf_counter() - start
        image_reference += reference_seconds
        start = time.perf_counter()
        colour_histogram(full)
        image_ours += time.perf_counter() - start
        samples.append(full.resize(SAMPLE_SIZE, Image.Resampling.BICUBIC))
        del full
        answer, ours_seconds = ours[path]
        result = colour_result(path, photo_set, answer, reference, samples[-1])
        result.ours_seconds, result.reference_seconds = ours_seconds, decode_seconds + reference_seconds
        results.append(result)

    start = time.perf_counter()
    same_sample_ours = [colour_histogram(sample) for sample in samples]
    votes_ours = time.perf_counter() - start
    start = time.perf_counter()
    same_sample_reference = [reference_votes(sample) for sample in samples]
    votes_reference = time.perf_counter() - start
    identical_votes = sum(map(operator.eq, same_sample_ours, same_sample_reference))

    count = len(results)
    report("votes on the 32x32 sample", Rate(count, votes_ours), Rate(count, votes_reference), "photos", COLOUR_TARGET)
    print(f"    identical shares on the same sample: {identical_votes}/{count}")
    report("from a decoded full-size photo (the bicubic resize of every pixel dominates both)",
           Rate(count, image_ours), Rate(count, image_reference), "photos", COLOUR_TARGET)
    print("  from the file (histogram_for_path vs full decode + the reference's resize and loop), by source:")
    for source in (THUMBNAIL, REDUCED, "all"):
        chosen = [result for result in results if source in (result.source, "all")]
        if chosen:
            report(f"  {source} ({len(chosen)} photos)", Rate(len(chosen), sum(r.ours_seconds for r in chosen)),
                   Rate(len(chosen), sum(r.reference_seconds for r in chosen)), "photos", COLOUR_TARGET)
    for photo_set in dict.fromkeys(photos.values()):
        print(f"  agreement on {photo_set}:")
        print_agreement([result for result in results if result.photo_set == photo_set], "    ")
    print(f"  peak RSS so far: {peak_rss_mb():,.0f} MB")


def mixed_agreement_section() -> None:
    """Every photo of ../shared/corpus/mixed that decodes: histogram_for_path against the reference on a full decode."""
    corpus = SHARED_DIR / "corpus" / "mixed"
    if not corpus.is_dir():
        print(f"\n(no corpus at {corpus}: no agreement on it)")
        return
    files = sorted(path for path in corpus.rglob("*") if path.is_file())
    results = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fuzzed files' EXIF warnings, in their hundreds
        for path in files:
            try:
                sample = open_oriented(path).resize(SAMPLE_SIZE, Image.Resampling.BICUBIC)
            except PhotoError:
                continue  # the catalog records it as an error; there is no histogram to compare
            results.append(colour_result(path, "corpus/mixed", histogram_for_path(path), reference_votes(sample),
                                         sample))
    print(f"\n== colour agreement on ../shared/corpus/mixed: {len(results)} of {len(files)} files decode")
    print_agreement(results, "  ")


# -------------------------------------------------------------------------------------------------- location


class ReferenceLocator:
    """The reference's loops: every country polygon tested one by one, every city measured in pure Python.

    Town: the spec's nearest place within 10 km (the reference took the most populous), so answers compare.
    """

    def __init__(self, geo_index: GeoIndex):
        self.countries = list(zip(geo_index.countries["country_code"], geo_index.countries.geometry.values))
        cities = geo_index.cities
        self.cities = list(zip(cities["name"], cities["latitude"].tolist(), cities["longitude"].tolist()))

    def locate(self, latitude: float, longitude: float) -> tuple[str | None, str | None]:
        point = shapely.Point(longitude, latitude)
        country = next((code for code, polygon in self.countries if polygon.contains(point)), None)
        town, town_distance = None, TOWN_RADIUS_M
        phi1, lam1 = math.radians(latitude), math.radians(longitude)
        for name, city_latitude, city_longitude in self.cities:
            phi2, lam2 = math.radians(city_latitude), math.radians(city_longitude)
            a = math.sin((phi2 - phi1) / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin((lam2 - lam1) / 2) ** 2
            distance = 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(a, 1.0)))
            if distance <= town_distance:
                town, town_distance = name, distance
        return country, town


def location_section(photos: list[Path], geo_index: GeoIndex, reference_points: int) -> None:
    start = time.perf_counter()
    coordinates = [(meta.latitude, meta.longitude) for meta in map(_metadata_or_none, photos) if meta]
    coordinates = np.array([point for point in coordinates if point[0] is not None], dtype=float)
    print(f"\n== location: {len(coordinates)} photos with GPS (metadata read in {time.perf_counter() - start:.1f} s)")
    latitudes, longitudes = coordinates[:, 0], coordinates[:, 1]

    repeats = math.ceil(LOCATION_BATCH / len(coordinates))
    batch_lat, batch_lon = np.tile(latitudes, repeats), np.tile(longitudes, repeats)
    start = time.perf_counter()
    ours = geo_index.locate(batch_lat, batch_lon).iloc[: len(coordinates)]
    ours_rate = Rate(len(batch_lat), time.perf_counter() - start)
    start = time.perf_counter()
    small = geo_index.locate(latitudes, longitudes)
    print(f"  ours on one batch of {len(coordinates)}: {time.perf_counter() - start:.3f} s; "
          f"on {len(batch_lat):,} points: {ours_rate.per_second:,.0f} points/s")
    assert small.equals(ours.reset_index(drop=True))

    reference = ReferenceLocator(geo_index)
    checked = min(reference_points, len(coordinates))
    start = time.perf_counter()
    answers = [reference.locate(latitude, longitude) for latitude, longitude in coordinates[:checked]]
    reference_rate = Rate(checked, time.perf_counter() - start)
    report(f"country + town ({checked} points through the reference loops)", ours_rate, reference_rate, "points",
           LOCATION_TARGET)

    same_country = same_town = by_fallback = 0
    for (country, town), (_, row) in zip(answers, ours.iloc[:checked].iterrows()):
        ours_country = None if row.isna()["country_code"] else row["country_code"]
        ours_town = None if row.isna()["city"] else row["city"]
        if country is None and ours_country is not None and not row.isna()["country_fallback_m"]:
            by_fallback += 1  # at sea or on a beach: the coast fallback the reference lacks
        else:
            same_country += ours_country == country
        same_town += ours_town == town
    print(f"  identical country: {same_country}/{checked - by_fallback} "
          f"(+{by_fallback} found only by the coast fallback); identical town: {same_town}/{checked}")
    print(f"  peak RSS so far: {peak_rss_mb():,.0f} MB")


def places_section(geo_index: GeoIndex) -> None:
    """Every GeoNames place located at its own coordinates, left out of its own lookup: right = GeoNames' code."""
    cities = geo_index.cities
    start = time.perf_counter()
    found = geo_index.locate(
        cities["latitude"].to_numpy(), cities["longitude"].to_numpy(), skip_places=np.arange(len(cities))
    )
    seconds = time.perf_counter() - start
    right = (found["country_code"] == cities["country_code"]).fillna(False).to_numpy(dtype=bool)
    source = found["country_source"].fillna("none").to_numpy(dtype=object)
    print(f"\n== country of the {len(cities):,} GeoNames places, each left out of its own lookup "
          f"({seconds:.1f} s)")
    for name in ("polygon", "coast", "nearest_place", "none"):
        chosen = source == name
        if chosen.any():
            print(f"  {name:>13}: {chosen.sum():>7,} places, {right[chosen].mean():7.2%} right")
    print(f"  {'all':>13}: {len(cities):>7,} places, {right.mean():7.2%} right")
    wrong = found[~right & (source != "none")].assign(geonames=cities["country_code"][~right & (source != "none")])
    pairs = (wrong["geonames"] + " -> " + wrong["country_code"].astype(str)).value_counts().head(8)
    print("  most common disagreements (GeoNames -> ours): " + ", ".join(f"{k} {v}" for k, v in pairs.items()))


def _metadata_or_none(path: Path):
    try:
        return read_metadata(path)
    except PhotoError:
        return None


# ------------------------------------------------------------------------------------------------------ main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--synthetic", type=int, default=200, help="synthetic 12 MP JPEGs to generate")
    parser.add_argument("--reference-points", type=int, default=80, help="points run through the slow reference")
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_SYNTHETIC} synthetic photos and {QUICK_REFERENCE_POINTS} reference points")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--places-only", action="store_true", help="only the GeoNames places' country section")
    args = parser.parse_args()
    if args.quick:
        args.synthetic, args.reference_points = QUICK_SYNTHETIC, QUICK_REFERENCE_POINTS
    rng = np.random.default_rng(args.seed)

    start = time.perf_counter()
    geo_index = GeoIndex.load(GEODATA_DIR)
    print(f"GeoIndex.load: {time.perf_counter() - start:.2f} s")
    places_section(geo_index)
    if args.places_only:
        return
    with tempfile.TemporaryDirectory(prefix="bench_colour_location_") as work:
        start = time.perf_counter()
        synthetic = make_synthetic_photos(Path(work), synthetic_points(geo_index, args.synthetic, rng), rng)
        print(f"generated {len(synthetic)} synthetic {SYNTHETIC_SIZE[0]}x{SYNTHETIC_SIZE[1]} JPEGs "
              f"in {time.perf_counter() - start:.0f} s")
        photos = {path: "corpus/gps" for path in corpus_photos()} | {path: "synthetic" for path in synthetic}

        colour_section(photos)
        mixed_agreement_section()
        location_section(list(photos), geo_index, args.reference_points)
        # The lead's Dagster-overhead section goes here, on the same `photos`.

    print(f"\npeak RSS: {peak_rss_mb():,.0f} MB")


if __name__ == "__main__":
    main()
