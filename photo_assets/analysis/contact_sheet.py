"""Contact sheets: small PNG grids of face thumbnails, so a user sees at a glance what was found (or merged)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

from photo_assets.analysis.images import PhotoError, open_oriented

THUMBNAIL_SIDE = 96
# Context around the face in a thumbnail: the box is drawn, so the user sees what the detector saw.
CONTEXT = 0.4
BOX_COLOUR = (255, 64, 64)
BACKGROUND = (32, 32, 32)
# Decode at this size at most: a contact sheet never needs more, and 40 MP photos stay cheap.
DECODE_SIDE = 1024


@dataclass(frozen=True)
class FaceTile:
    path: Path
    box: tuple[float, float, float, float]  # x, y, width, height in full-size oriented pixels
    photo_size: tuple[int, int]  # full-size oriented width, height


def _thumbnail(tile: FaceTile) -> Image.Image:
    try:
        image = open_oriented(tile.path, max_side=DECODE_SIDE)
    except PhotoError:
        return Image.new("RGB", (THUMBNAIL_SIDE, THUMBNAIL_SIDE), BACKGROUND)
    scale = image.width / tile.photo_size[0]
    x, y, width, height = (value * scale for value in tile.box)
    side = max(width, height) * (1 + 2 * CONTEXT)
    left, top = x + width / 2 - side / 2, y + height / 2 - side / 2
    crop = image.crop((round(left), round(top), round(left + side), round(top + side)))
    ratio = THUMBNAIL_SIDE / max(1.0, side)
    crop = crop.resize((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.BICUBIC)
    ImageDraw.Draw(crop).rectangle(
        ((x - left) * ratio, (y - top) * ratio, (x - left + width) * ratio, (y - top + height) * ratio),
        outline=BOX_COLOUR,
        width=2,
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
