"""Near-duplicates: altered copies of real photos are one shot, photos of one person are not; the index finds pairs
for new photos only and keeps the groups found before."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image, ImageEnhance, ImageOps

from photo_assets.analysis.duplicates import MAX_DISTANCE, fingerprints, group_shots, shot_distance

SIDE = 256  # the colour step's small copy


def _small(image: Image.Image) -> Image.Image:
    image = ImageOps.exif_transpose(image).convert("RGB")
    image.thumbnail((SIDE, SIDE), Image.Resampling.BICUBIC)
    return image


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def _copies(image: Image.Image) -> dict[str, Image.Image]:
    width, height = image.size
    return {
        "half": image.resize((width // 2, height // 2), Image.Resampling.LANCZOS),
        "jpeg 40": _jpeg(image, 40),
        "crop 5%": image.crop((width // 20, height // 20, width - width // 20, height - height // 20)),
        "crop 10%": image.crop((width // 10, height // 10, width - width // 10, height - height // 10)),
        "brighter": ImageEnhance.Brightness(image).enhance(1.2),
    }


@pytest.fixture(scope="module")
def originals(shared_dir: Path) -> dict[str, Image.Image]:
    names = ["img1.jpg", "img12.jpg", "img26.jpg", "img48.jpg", "couple.jpg"]
    return {name: Image.open(shared_dir / "faces" / "deepface" / name).convert("RGB") for name in names}


def test_altered_copies_are_one_shot(originals):
    for name, image in originals.items():
        own = fingerprints(_small(image))
        for alteration, copy in _copies(image).items():
            assert shot_distance(own, fingerprints(_small(copy))) <= MAX_DISTANCE, (name, alteration)


def test_photos_of_one_person_are_not_one_shot(shared_dir: Path):
    folders = [folder for folder in sorted((shared_dir / "faces" / "lfw_train").iterdir())
               if folder.is_dir() and len(list(folder.glob("*.jpg"))) >= 4][:20]
    for folder in folders:
        hashes = [fingerprints(_small(Image.open(path))) for path in sorted(folder.glob("*.jpg"))]
        ids = [str(number) for number in range(len(hashes))]
        assert group_shots(ids, hashes, ids, {}) == {}, folder.name


def test_new_photos_are_looked_up_and_earlier_groups_kept(originals):
    image = originals["img1.jpg"]
    copies = _copies(image)
    hashes = {"a-original": fingerprints(_small(image)), "b-half": fingerprints(_small(copies["half"])),
              "c-other": fingerprints(_small(originals["img26.jpg"])),
              "d-crop": fingerprints(_small(copies["crop 5%"]))}
    ids = list(hashes)
    first = group_shots(ids[:3], [hashes[i] for i in ids[:3]], ids[:3], {})
    assert first == {"a-original": "a-original", "b-half": "a-original"}
    # Only the new photo is looked up; the earlier pair stands even if it is not looked up again.
    second = group_shots(ids, [hashes[i] for i in ids], ["d-crop"], first)
    assert second == {"a-original": "a-original", "b-half": "a-original", "d-crop": "a-original"}
    assert group_shots(ids, [hashes[i] for i in ids], [], {}) == {}  # nothing new, nothing before: no lookups


def test_flat_photos_have_no_hashes_and_are_nobodys_duplicate():
    """A single colour, a blank frame or a 1 px file has no shot to tell it by: two of them are not one shot."""
    flat = [Image.new("RGB", (64, 48), (30, 83, 249)), Image.new("RGB", (64, 48), (233, 8, 200)),
            Image.new("RGB", (1, 1), (140, 170, 250)), Image.new("RGB", (256, 192), (0, 0, 0))]
    assert [fingerprints(image) for image in flat] == [()] * len(flat)
    gradient = Image.linear_gradient("L").convert("RGB")  # little structure, but some: a real hash
    assert len(fingerprints(gradient)) == 3
