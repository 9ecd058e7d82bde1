"""Face crops and contact sheets. A face crop is a small square JPEG around one face, cut by the faces step from the
copy of the photo it already decoded for detection, and kept under the data folder: the people page and every
contact sheet (small PNG grids, so a user sees at a glance what was found or merged) read it instead of decoding the
photo again."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

CROP_SIDE = 160  # pixels of a face crop (square): the people page's face tiles
# Margin around the box, as a share of its long side, on each side: hair and chin, so the face is recognisable.
CROP_CONTEXT = 0.25
CROP_JPEG_QUALITY = 85
THUMBNAIL_SIDE = 96  # of a face on a contact sheet
BOX_COLOUR = (255, 64, 64)
BACKGROUND = (32, 32, 32)


def face_crop(image: Image.Image, box: tuple[float, float, float, float], scale: float) -> Image.Image:
    """The CROP_SIDE square around `box` (x, y, width, height in full-size pixels) cut from `image`, a copy of the
    photo `scale` times its full size. Pillow fills what lies beyond the photo with black."""
    x, y, width, height = (value * scale for value in box)
    side = max(width, height) * (1 + 2 * CROP_CONTEXT)
    left, top = x + width / 2 - side / 2, y + height / 2 - side / 2
    crop = image.crop((round(left), round(top), round(left + side), round(top + side)))
    return crop.resize((CROP_SIDE, CROP_SIDE), Image.Resampling.BICUBIC)


def jpeg_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=CROP_JPEG_QUALITY)
    return buffer.getvalue()


@dataclass(frozen=True)
class FaceTile:
    crop: Path | bytes  # the stored crop (face_crop), or its JPEG bytes; a grey tile stands in while it does not exist
    # x, y, width, height in full-size oriented pixels of what the crop is centred on; None: the crop is a whole photo
    box: tuple[float, float, float, float] | None = None


def _thumbnail(tile: FaceTile) -> Image.Image:
    try:
        with Image.open(io.BytesIO(tile.crop) if isinstance(tile.crop, bytes) else tile.crop) as stored:
            crop = stored.convert("RGB").resize((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.BICUBIC)
    except OSError:
        return Image.new("RGB", (THUMBNAIL_SIDE, THUMBNAIL_SIDE), BACKGROUND)
    if tile.box is None:
        return crop
    # The box is drawn, so the user sees what the detector saw: centred in the crop, its long side a fixed share.
    _, _, width, height = tile.box
    ratio = THUMBNAIL_SIDE / (max(width, height) * (1 + 2 * CROP_CONTEXT) or 1.0)
    left, top = (THUMBNAIL_SIDE - width * ratio) / 2, (THUMBNAIL_SIDE - height * ratio) / 2
    ImageDraw.Draw(crop).rectangle(
        (left, top, left + width * ratio, top + height * ratio), outline=BOX_COLOUR, width=2
    )
    return crop


def contact_sheet(rows: Sequence[Sequence[FaceTile]], labels: Sequence[str] | None = None) -> Image.Image:
    """One row of thumbnails per entry of `rows`, with an optional label drawn at the start of each row."""
    label_width = 150 if labels else 0
    columns = max((len(row) for row in rows), default=1)
    sheet = Image.new("RGB", (label_width + columns * THUMBNAIL_SIDE, max(1, len(rows)) * THUMBNAIL_SIDE), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    for row_index, row in enumerate(rows):
        top = row_index * THUMBNAIL_SIDE
        if labels:
            draw.text((6, top + THUMBNAIL_SIDE // 2 - 6), labels[row_index][:22], fill=(235, 235, 235))
        for column, tile in enumerate(row):
            sheet.paste(_thumbnail(tile), (label_width + column * THUMBNAIL_SIDE, top))
    return sheet


def grid(tiles: Sequence[FaceTile], columns: int = 8) -> Image.Image:
    return contact_sheet([tiles[start : start + columns] for start in range(0, len(tiles), columns)])
