"""Photos as cameras write them, for the benchmarks and tests: EXIF carrying a JPEG thumbnail in IFD1."""

from __future__ import annotations

import io
import struct

from PIL import Image

from photo_assets.analysis.images import (
    EXIF_HEADER,
    IFD1_COMPRESSION,
    JPEG_COMPRESSION,
    THUMBNAIL_LENGTH,
    THUMBNAIL_OFFSET,
    TIFF_LONG,
    TIFF_SHORT,
)

# Cameras use middling JPEG quality for thumbnails so the whole EXIF block stays small.
THUMBNAIL_QUALITY = 85


def exif_with_thumbnail(exif: Image.Exif, thumbnail: Image.Image) -> bytes:
    """`exif` as bytes for `Image.save(exif=...)`, carrying `thumbnail` as a JPEG in IFD1, as cameras write it.

    Pillow writes IFD0 and its sub-IFDs only; this links an IFD1 (compression, offset, length) after them and
    appends the thumbnail's JPEG. (Pillow's JPEG save refuses EXIF larger than one APP1 segment, 65,533 bytes.)
    """
    encoded = io.BytesIO()
    thumbnail.convert("RGB").save(encoded, "JPEG", quality=THUMBNAIL_QUALITY)
    jpeg = encoded.getvalue()
    tiff = exif.tobytes().removeprefix(EXIF_HEADER)
    endian = "<" if tiff[:2] == b"II" else ">"
    (ifd0_offset,) = struct.unpack_from(endian + "L", tiff, 4)
    (ifd0_entries,) = struct.unpack_from(endian + "H", tiff, ifd0_offset)
    next_ifd_at = ifd0_offset + 2 + 12 * ifd0_entries
    tiff += b"\x00" * (len(tiff) % 2)  # IFDs start on a word boundary
    ifd1_offset = len(tiff)
    entries = [(THUMBNAIL_OFFSET, ifd1_offset + 2 + 12 * 3 + 4), (THUMBNAIL_LENGTH, len(jpeg))]
    ifd1 = struct.pack(endian + "H", 1 + len(entries))
    ifd1 += struct.pack(endian + "HHLH2x", IFD1_COMPRESSION, TIFF_SHORT, 1, JPEG_COMPRESSION)
    ifd1 += b"".join(struct.pack(endian + "HHLL", tag, TIFF_LONG, 1, value) for tag, value in entries)
    ifd1 += struct.pack(endian + "L", 0)  # no IFD2
    linked = tiff[:next_ifd_at] + struct.pack(endian + "L", ifd1_offset) + tiff[next_ifd_at + 4 :]
    return EXIF_HEADER + linked + ifd1 + jpeg
