"""Opening photos safely: decode, EXIF orientation, metadata and GPS, with every failure turned into a PhotoError.

Everything that reads pixels goes through `open_oriented`, so every analysis sees the photo the way the user does
(the reference detected faces on the rotated image but cropped them from the unrotated file).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

try:  # HEIC/HEIF from phones; registered once so Image.open understands them.
    import pillow_heif

    pillow_heif.register_heif_opener()
except ImportError:  # pragma: no cover - pillow-heif is a declared dependency
    pillow_heif = None

# Photos larger than this are refused as decompression bombs: 200 MP covers every camera on sale (the largest
# consumer sensors are ~100-150 MP) while a 200 MP RGB decode still fits in ~600 MB.
MAX_PIXELS = 200_000_000
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
# A truncated JPEG is an error, not a silently grey-padded photo.
ImageFile.LOAD_TRUNCATED_IMAGES = False

EXIF_ORIENTATION = 0x0112
EXIF_IFD = 0x8769
GPS_IFD = 0x8825
EXIF_MAKE, EXIF_MODEL = 0x010F, 0x0110
EXIF_DATETIME, EXIF_DATETIME_ORIGINAL = 0x0132, 0x9003
GPS_LAT_REF, GPS_LAT, GPS_LON_REF, GPS_LON, GPS_ALT_REF, GPS_ALT = 1, 2, 3, 4, 5, 6
# Orientations 5-8 swap width and height.
TRANSPOSING_ORIENTATIONS = {5, 6, 7, 8}


class PhotoError(Exception):
    """A photo that cannot be analysed; `kind` is a short machine-readable reason recorded with the error."""

    def __init__(self, kind: str, message: str):
        super().__init__(f"{kind}: {message}")
        self.kind = kind


@dataclass(frozen=True)
class PhotoMetadata:
    format: str
    width: int  # after EXIF orientation
    height: int
    orientation: int
    captured_at: datetime | None
    camera_make: str | None
    camera_model: str | None
    latitude: float | None
    longitude: float | None
    altitude: float | None


def _open(path: Path) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path)
    except FileNotFoundError as error:
        raise PhotoError("missing", f"file vanished: {error.strerror}") from error
    except PermissionError as error:
        raise PhotoError("unreadable", f"permission denied: {error.strerror}") from error
    except IsADirectoryError as error:
        raise PhotoError("unreadable", "is a directory") from error
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise PhotoError("decompression_bomb", str(error)) from error
    except UnidentifiedImageError as error:
        raise PhotoError("unsupported_format", "not an image Pillow can identify") from error
    except Exception as error:  # noqa: BLE001 - fuzzed headers raise anything; all of it is a per-photo error
        raise PhotoError("corrupt", f"{type(error).__name__}: {error}") from error
    if image.width * image.height > MAX_PIXELS:
        image.close()
        raise PhotoError("decompression_bomb", f"{image.width}x{image.height} exceeds {MAX_PIXELS} pixels")
    return image


def _text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = str(value).replace("\x00", "").strip()
    return text or None


def _rational(value) -> float:
    return float(value[0]) / float(value[1]) if isinstance(value, tuple) else float(value)


def _dms_to_degrees(dms) -> float:
    """Degrees + minutes/60 + seconds/3600 (the reference divided seconds by 6000: up to ~1 km off)."""
    values = [_rational(part) for part in dms]
    while len(values) < 3:
        values.append(0.0)
    degrees, minutes, seconds = values[:3]
    return degrees + minutes / 60.0 + seconds / 3600.0


def decode_gps(gps: dict) -> tuple[float | None, float | None, float | None]:
    """(latitude, longitude, altitude) from an EXIF GPS IFD; (None, None, None) when absent, broken or (0, 0)."""
    try:
        latitude = _dms_to_degrees(gps[GPS_LAT])
        longitude = _dms_to_degrees(gps[GPS_LON])
        if _text(gps.get(GPS_LAT_REF)) in ("S", "s"):
            latitude = -latitude
        if _text(gps.get(GPS_LON_REF)) in ("W", "w"):
            longitude = -longitude
    except (KeyError, TypeError, ValueError, ZeroDivisionError, IndexError):
        return None, None, None
    if not (math.isfinite(latitude) and math.isfinite(longitude)):
        return None, None, None
    if abs(latitude) > 90 or abs(longitude) > 180 or (latitude == 0 and longitude == 0):
        return None, None, None
    altitude = None
    try:
        altitude = _rational(gps[GPS_ALT])
        if gps.get(GPS_ALT_REF) in (1, b"\x01"):
            altitude = -altitude
        if not math.isfinite(altitude):
            altitude = None
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        altitude = None
    return latitude, longitude, altitude


def _capture_time(exif_ifd: dict, exif) -> datetime | None:
    raw = _text(exif_ifd.get(EXIF_DATETIME_ORIGINAL) or exif.get(EXIF_DATETIME))
    if not raw:
        return None
    try:
        return datetime.strptime(raw[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None


def read_metadata(path: Path) -> PhotoMetadata:
    """Header and EXIF of a photo, without decoding its pixels (but verifying it decodes is `open_oriented`'s job)."""
    image = _open(path)
    with image:
        try:
            exif = image.getexif()
            gps = exif.get_ifd(GPS_IFD)
            exif_ifd = exif.get_ifd(EXIF_IFD)
        except Exception:  # noqa: BLE001 - a broken EXIF block loses the metadata, not the photo
            exif, gps, exif_ifd = {}, {}, {}
        try:
            orientation = int(exif.get(EXIF_ORIENTATION, 1))
        except (TypeError, ValueError):
            orientation = 1
        orientation = orientation if 1 <= orientation <= 8 else 1
        width, height = image.size
        if orientation in TRANSPOSING_ORIENTATIONS:
            width, height = height, width
        latitude, longitude, altitude = decode_gps(gps) if gps else (None, None, None)
        return PhotoMetadata(
            format=image.format or "UNKNOWN",
            width=width,
            height=height,
            orientation=orientation,
            captured_at=_capture_time(exif_ifd, exif),
            camera_make=_text(exif.get(EXIF_MAKE)),
            camera_model=_text(exif.get(EXIF_MODEL)),
            latitude=latitude,
            longitude=longitude,
            altitude=altitude,
        )


def open_oriented(path: Path, max_side: int | None = None) -> Image.Image:
    """The photo decoded as RGB, EXIF orientation applied, optionally shrunk so its long side is <= max_side.

    For JPEGs with max_side, the decoder scales by 1/2..1/8 while decoding (draft mode): far less memory and time
    on a 12+ MP photo, and the final resize still happens here so the result is <= max_side.
    """
    image = _open(path)
    try:
        if max_side and image.format == "JPEG":
            image.draft("RGB", (max_side, max_side))
        try:
            image.seek(0)  # GIF/animated WebP/multi-page TIFF: the first frame
            image.load()
            oriented = ImageOps.exif_transpose(image)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise PhotoError("decompression_bomb", str(error)) from error
        except OSError as error:
            raise PhotoError("corrupt", f"cannot decode: {error}") from error
        except Exception as error:  # noqa: BLE001 - fuzzed files raise anything while decoding
            raise PhotoError("corrupt", f"{type(error).__name__}: {error}") from error
        if oriented.mode != "RGB":
            oriented = _to_rgb(oriented)
        if max_side and max(oriented.size) > max_side:
            oriented.thumbnail((max_side, max_side), Image.Resampling.BICUBIC)
        return oriented
    finally:
        image.close()


def _to_rgb(image: Image.Image) -> Image.Image:
    """RGB for every mode: transparency is composited on white, 16-bit and float are scaled, palettes expanded."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float64)
        top = array.max() or 1.0
        return Image.fromarray((array / top * 255).astype(np.uint8)).convert("RGB")
    if image.mode == "F":
        array = np.nan_to_num(np.asarray(image, dtype=np.float64))
        span = (array.max() - array.min()) or 1.0
        return Image.fromarray(((array - array.min()) / span * 255).astype(np.uint8)).convert("RGB")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")
