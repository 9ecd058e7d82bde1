"""Opening photos safely: decode, EXIF orientation, metadata and GPS, with every failure turned into a PhotoError.

Everything that reads pixels goes through `open_oriented` (or `open_exif_thumbnail`, for the camera's small copy,
turned the same way), so every analysis sees the photo the way the user does (the reference detected faces on the
rotated image but cropped them from the unrotated file).
"""

from __future__ import annotations

import io
import math
import re
import struct
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
# What each EXIF orientation needs to stand upright: ImageOps.exif_transpose's table, for a thumbnail, whose own EXIF
# (if any) does not carry the photo's orientation.
UPRIGHTING_TRANSPOSES = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# The embedded thumbnail lives in IFD1: JPEG compression (6), at an offset from the TIFF header, of a length.
IFD1_COMPRESSION, THUMBNAIL_OFFSET, THUMBNAIL_LENGTH = 0x0103, 0x0201, 0x0202
JPEG_COMPRESSION = 6
TIFF_SHORT, TIFF_LONG = 3, 4
TIFF_INTEGER_FORMATS = {TIFF_SHORT: "H", TIFF_LONG: "L"}
EXIF_HEADER = b"Exif\x00\x00"
XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
# JPEG markers read while looking for the thumbnail: EXIF and XMP live in APP1 segments before the first frame header
# (SOF0-SOF15, less DHT, JPG and DAC), which carries the photo's size; a scan or the end before it means no frame.
JPEG_SOI = b"\xff\xd8"
JPEG_APP1 = 0xE1
JPEG_FRAME_MARKERS = set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
JPEG_FIRST_SEGMENT_MARKER = 0xC0
JPEG_STANDALONE_MARKERS = set(range(0xD0, 0xDB))  # restarts, SOI, EOI and the start of scan: no frame header first
# Pillow skips junk between segments (some writers overrun XMP by a byte or two); this much junk is a broken file.
JPEG_MAX_JUNK = 65_536
XMP_ORIENTATION = re.compile(rb'tiff:Orientation(="|>)([0-9])')  # Pillow's own pattern
# A thumbnail whose aspect ratio differs more than this from the photo's is letterboxed or another crop (some cameras
# squeeze 3:2 photos into 160 x 120 with black bars); 1 % still allows the rounding of a 96-pixel side.
THUMBNAIL_RATIO_TOLERANCE = 0.01
# Bytes 4-8 of a HEIF file (the type of its first box).
HEIF_SIGNATURE, HEIF_SIGNATURE_START, HEIF_SIGNATURE_END = b"ftyp", 4, 8


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
    """A rational as float; x/0 is NaN, as Pillow's IFDRational reads it, whether raw tuple or IFDRational."""
    if not isinstance(value, tuple):
        return float(value)
    numerator, denominator = float(value[0]), float(value[1])
    return numerator / denominator if denominator else math.nan


def _dms_to_degrees(dms) -> float:
    """Degrees + minutes/60 + seconds/3600 (the reference divided seconds by 6000: up to ~1 km off).

    Some cameras (Nikon D5000) write unknown seconds as 0/0 (NaN) beside valid degrees and minutes: with finite
    degrees, NaN minutes and seconds count as 0 (a town-accurate fix beats no location); NaN degrees stay NaN.
    """
    values = [_rational(part) for part in dms]
    while len(values) < 3:
        values.append(0.0)
    degrees, minutes, seconds = values[:3]
    if math.isfinite(degrees):
        minutes, seconds = (0.0 if math.isnan(part) else part for part in (minutes, seconds))
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
    except (KeyError, TypeError, ValueError, IndexError):
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
    except (KeyError, TypeError, ValueError):
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


def _orientation(value) -> int:
    """An EXIF orientation value as 1..8; anything else (absent, garbled) is 1, upright, as exif_transpose does."""
    try:
        orientation = int(value)
    except (TypeError, ValueError):
        return 1
    return orientation if 1 <= orientation <= 8 else 1


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
        orientation = _orientation(exif.get(EXIF_ORIENTATION, 1))
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


# Where each format keeps its XMP packet once Pillow has read the header: JPEG's APP1 and WebP's chunk and HEIC's
# item as "xmp", PNG's iTXt under its keyword, TIFF's tag 700 (XMLPacket).
PNG_XMP_KEY = "XML:com.adobe.xmp"
TIFF_XMP_TAG = 700


def read_embedded_xmp(path: Path) -> tuple[bytes | None, int]:
    """(the XMP packet embedded in a photo or None, its EXIF orientation), from the header alone: no pixel is
    decoded. A file that cannot be opened raises PhotoError."""
    image = _open(path)
    with image:
        try:
            orientation = _orientation(image.getexif().get(EXIF_ORIENTATION, 1))
        except Exception:  # noqa: BLE001 - a broken EXIF block: upright, as every other reader takes it
            orientation = 1
        packet = image.info.get("xmp") or image.info.get(PNG_XMP_KEY)
        if packet is None and hasattr(image, "tag_v2"):
            packet = image.tag_v2.get(TIFF_XMP_TAG)
    if isinstance(packet, str):
        packet = packet.encode()
    return (bytes(packet) if packet else None), orientation


def open_oriented(path: Path, max_side: int | None = None) -> Image.Image:
    """The photo decoded as RGB, EXIF orientation applied, optionally shrunk so its long side is <= max_side.

    For JPEGs with max_side, the decoder scales by 1/2..1/8 while decoding (draft mode): far less memory and time
    on a 12+ MP photo, and the final resize still happens here so the result is <= max_side.
    """
    image = _open(path)
    try:
        if max_side and image.format == "JPEG":
            image.draft("RGB", (max_side, max_side))
        oriented = _decode_oriented(image)
        if max_side and max(oriented.size) > max_side:
            oriented.thumbnail((max_side, max_side), Image.Resampling.BICUBIC)
        return oriented
    finally:
        image.close()


def open_reduced(path: Path, min_side: int) -> tuple[Image.Image, tuple[int, int]]:
    """(the photo as RGB, orientation applied, decoded at the smallest JPEG scale, 1/1..1/8, whose long side is still
    >= min_side; the full-size photo's oriented (width, height)). Not resized further: the caller resizes to exactly
    the size it needs, as it would from the full-size photo, at a fraction of the cost of decoding it (draft mode
    decodes a 12 MP JPEG to 1/2 scale in about half the time, and the resize then has a quarter of the pixels)."""
    image = _open(path)
    try:
        stored = image.size
        if image.format == "JPEG" and max(stored) > min_side:
            # draft picks the largest reduction keeping both sides >= the request's: ask for the long side only.
            request = (min_side, 1) if stored[0] >= stored[1] else (1, min_side)
            image.draft("RGB", request)
        drafted = image.size
        oriented = _decode_oriented(image)
        swapped = oriented.size != drafted
        return oriented, (stored[::-1] if swapped else stored)
    finally:
        image.close()


def _decode_oriented(image: Image.Image) -> Image.Image:
    """An opened image's first frame, decoded, EXIF orientation applied, as RGB; decoding errors as PhotoError."""
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
    return oriented


def open_exif_thumbnail(path: Path, min_side: int) -> Image.Image | None:
    """The JPEG thumbnail a camera embedded in the photo's EXIF, or the HEIF thumbnail a phone embedded in its HEIC,
    as RGB and oriented like the photo, if faithful.

    Faithful: a JPEG thumbnail lying inside the EXIF block, at least min_side on its short side, smaller than the photo
    and of the photo's aspect ratio within THUMBNAIL_RATIO_TOLERANCE. None when the file has no faithful thumbnail,
    or cannot be read at all: the caller decodes the photo instead, which reports what is wrong with it.
    Only the JPEG segments before the image data are read, with bounds checks: ~10x cheaper than Pillow's open and
    EXIF parse.
    """
    try:
        embedded = _read_embedded_thumbnail(path)
        if embedded is None:
            return _heif_thumbnail(path, min_side)
        jpeg, orientation, photo_size = embedded
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a thumbnail that warns is refused below or fails to load
            thumbnail = Image.open(io.BytesIO(jpeg), formats=["JPEG"])
            if thumbnail.mode not in ("RGB", "L") or not _is_faithful(thumbnail.size, photo_size, min_side):
                return None
            thumbnail.load()
    except Exception:  # noqa: BLE001 - fuzzed EXIF raises anything; the photo itself may still decode
        return None
    thumbnail = thumbnail.convert("RGB") if thumbnail.mode != "RGB" else thumbnail
    transpose = UPRIGHTING_TRANSPOSES.get(orientation)
    return thumbnail.transpose(transpose) if transpose is not None else thumbnail


def _heif_thumbnail(path: Path, min_side: int) -> Image.Image | None:
    """A HEIF's smallest embedded thumbnail of at least min_side on each side that pillow-heif finds to be a scaled
    copy of the image (its `draft`), decoded and oriented as the image would be: a 12 MP HEIC decodes in ~0.5 s, its
    320 px thumbnail in milliseconds. None when the file is no HEIF or has no such thumbnail."""
    if pillow_heif is None or not _is_heif(path):
        return None
    with Image.open(path, formats=["HEIF"]) as image:
        photo_size = image.size
        if image.draft("RGB", (min_side, min_side)) is None or not _is_faithful(image.size, photo_size, min_side):
            return None
        return _decode_oriented(image)


def _is_heif(path: Path) -> bool:
    """An ISO base media file whose first box is `ftyp`: what HEIC/HEIF files start with (so does MP4, which
    Pillow then refuses)."""
    with open(path, "rb") as handle:
        return handle.read(HEIF_SIGNATURE_END)[HEIF_SIGNATURE_START:] == HEIF_SIGNATURE


def _is_faithful(size: tuple[int, int], photo_size: tuple[int, int], min_side: int) -> bool:
    (width, height), (photo_width, photo_height) = size, photo_size
    aspect_error = abs((width / height) / (photo_width / photo_height) - 1.0)
    return (
        min(width, height) >= min_side
        and width < photo_width
        and height < photo_height
        and aspect_error <= THUMBNAIL_RATIO_TOLERANCE
    )


def _read_embedded_thumbnail(path: Path) -> tuple[bytes, int, tuple[int, int]] | None:
    """(thumbnail JPEG, EXIF orientation, photo size as stored) from the segments before a JPEG's first frame.

    None for anything unexpected: no EXIF before the frame header, a scan first, a truncated segment.
    """
    with open(path, "rb") as file:
        if file.read(2) != JPEG_SOI:
            return None
        exif, xmp = None, None
        while (header := _next_segment_header(file)) is not None:
            marker, length = header
            if marker in JPEG_FRAME_MARKERS:
                frame = file.read(5)  # precision, height, width
                if exif is None or len(frame) < 5:
                    return None
                photo_size = int.from_bytes(frame[3:5], "big"), int.from_bytes(frame[1:3], "big")
                return _thumbnail_in_exif(exif, xmp, photo_size)
            if marker < JPEG_FIRST_SEGMENT_MARKER or marker in JPEG_STANDALONE_MARKERS or length < 2:
                return None
            if marker == JPEG_APP1:
                segment = file.read(length - 2)
                if exif is None and segment.startswith(EXIF_HEADER):
                    exif = segment
                elif segment.startswith(XMP_HEADER):
                    xmp = segment[len(XMP_HEADER) :]  # the last one, as Pillow keeps it
            else:
                file.seek(length - 2, io.SEEK_CUR)
    return None


def _next_segment_header(file) -> tuple[int, int] | None:
    """The next marker and its segment length, past junk and fill bytes as Pillow skips them (up to JPEG_MAX_JUNK)."""
    previous = file.read(1)
    for _ in range(JPEG_MAX_JUNK):
        current = file.read(1)
        if not current:
            return None
        if previous == b"\xff" and current not in (b"\xff", b"\x00"):
            length = file.read(2)
            return (current[0], int.from_bytes(length, "big")) if len(length) == 2 else None
        previous = current
    return None


def _thumbnail_in_exif(
    exif: bytes, xmp: bytes | None, photo_size: tuple[int, int]
) -> tuple[bytes, int, tuple[int, int]] | None:
    # Offsets count from the TIFF header, after the one or two "Exif\0\0" headers Pillow also skips.
    tiff = exif.removeprefix(EXIF_HEADER).removeprefix(EXIF_HEADER)
    endian = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if endian is None:
        return None
    ifd0, ifd1_offset = _integer_entries(tiff, struct.unpack_from(endian + "L", tiff, 4)[0], endian)
    if not ifd1_offset:
        return None
    ifd1, _ = _integer_entries(tiff, ifd1_offset, endian)
    offset, length = ifd1.get(THUMBNAIL_OFFSET) or 0, ifd1.get(THUMBNAIL_LENGTH) or 0
    if ifd1.get(IFD1_COMPRESSION, JPEG_COMPRESSION) != JPEG_COMPRESSION or not (0 < offset and 0 < length):
        return None
    if offset + length > len(tiff):
        return None
    orientation = ifd0.get(EXIF_ORIENTATION, 1)
    if EXIF_ORIENTATION not in ifd0 and xmp and (match := XMP_ORIENTATION.search(xmp)):
        orientation = int(match[2])  # what Pillow's getexif, and so open_oriented, falls back to
    return tiff[offset : offset + length], _orientation(orientation), photo_size


def _integer_entries(tiff: bytes, offset: int, endian: str) -> tuple[dict[int, int | None], int]:
    """The TIFF IFD at offset: each tag with its value when a single SHORT or LONG (else None), and the next IFD's
    offset (0: none). Raises struct.error when the IFD runs past the data."""
    (count,) = struct.unpack_from(endian + "H", tiff, offset)
    values: dict[int, int | None] = {}
    for entry in range(offset + 2, offset + 2 + 12 * count, 12):
        tag, kind, number = struct.unpack_from(endian + "HHL", tiff, entry)
        values[tag] = None
        if number == 1 and kind in TIFF_INTEGER_FORMATS:
            (values[tag],) = struct.unpack_from(endian + TIFF_INTEGER_FORMATS[kind], tiff, entry + 8)
    (next_offset,) = struct.unpack_from(endian + "L", tiff, offset + 2 + 12 * count)
    return values, next_offset


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
