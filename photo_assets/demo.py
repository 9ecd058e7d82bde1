"""The demo library: real sample photos that scikit-image ships in its wheel, with real EXIF GPS written into some,
so a new user sees colours, places and faces in the UI within minutes of the first command."""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image

from photo_assets import settings
from photo_assets.analysis.images import EXIF_ORIENTATION, GPS_IFD

# (sample file in skimage/data, name in the library, (latitude, longitude) where such a photo could be taken)
DEMO_PHOTOS = [
    ("astronaut.png", "people/astronaut.jpg", (29.5593, -95.0900)),  # Johnson Space Center, Houston
    ("rocket.jpg", "trips/florida/rocket.jpg", (28.5729, -80.6490)),  # Kennedy Space Center
    ("coffee.png", "trips/rome/coffee.jpg", (41.8986, 12.4769)),  # Rome
    ("chelsea.png", "home/chelsea.jpg", (51.4875, -0.1687)),  # Chelsea, London
    ("motorcycle_left.png", "trips/reunion/motorcycle.jpg", (-20.8789, 55.4481)),  # Saint-Denis, Réunion (France)
    ("hubble_deep_field.jpg", "space/hubble_deep_field.jpg", None),
    ("color.png", "misc/colour_wheel.png", None),
    ("camera.png", "people/cameraman.png", None),
]
# One photo stored sideways with EXIF orientation 6, as phones do: analyses must see it upright.
ROTATED_DEMO = ("astronaut.png", "people/astronaut_sideways.jpg")
ORIENTATION_ROTATE_90_CW = 6


def _degrees_to_dms(value: float) -> tuple[float, float, float]:
    value = abs(value)
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    seconds = round((value - degrees - minutes / 60) * 3600, 4)
    return (float(degrees), float(minutes), seconds)


def _exif(gps: tuple[float, float] | None, orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "scikit-image", "sample data"
    exif[EXIF_ORIENTATION] = orientation
    if gps:
        latitude, longitude = gps
        exif.get_ifd(GPS_IFD).update(
            {1: "N" if latitude >= 0 else "S", 2: _degrees_to_dms(latitude),
             3: "E" if longitude >= 0 else "W", 4: _degrees_to_dms(longitude)}
        )
    return exif


def build_demo_library(target: Path) -> Path:
    """Write the demo photos under `target` (idempotent: existing files are left alone)."""
    import skimage

    samples = Path(skimage.__file__).parent / "data"
    for sample, name, gps in DEMO_PHOTOS:
        destination = target / name
        if destination.exists():
            continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        image = Image.open(samples / sample).convert("RGB")
        if destination.suffix == ".jpg":
            image.save(destination, quality=92, exif=_exif(gps))
        else:
            image.save(destination)
    sample, name = ROTATED_DEMO
    destination = target / name
    if not destination.exists():
        upright = Image.open(samples / sample).convert("RGB")
        # Orientation 6 means "rotate 90° clockwise to view": store the pixels turned the other way.
        upright.transpose(Image.Transpose.ROTATE_90).save(destination, quality=92, exif=_exif(None, ORIENTATION_ROTATE_90_CW))
    broken = target / "misc" / "broken_download.jpg"
    if not broken.exists():
        broken.write_bytes((target / DEMO_PHOTOS[1][1]).read_bytes()[:4000])  # a truncated JPEG: shows an error row
    return target


def main() -> None:
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else settings.DEFAULT_LIBRARY
    print(f"demo library ready: {build_demo_library(target)}")


if __name__ == "__main__":
    main()
