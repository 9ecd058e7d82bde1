"""Face regions written the way other tools write them, by exiftool (a reader and writer no one here wrote): MWG
regions and Microsoft People Tags, in a sidecar of either naming or embedded in the photo."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

SIDECAR_APPENDED, SIDECAR_REPLACED, EMBEDDED_MWG, EMBEDDED_MP = "sidecar.jpg.xmp", "sidecar.xmp", "mwg", "mp"
PLACEMENTS = (SIDECAR_APPENDED, SIDECAR_REPLACED, EMBEDDED_MWG, EMBEDDED_MP)

Box = tuple[float, float, float, float]  # normalised x, y (top-left), w, h of the photo as stored


def exiftool() -> str:
    found = shutil.which("exiftool")
    if found is None:
        raise RuntimeError("exiftool is not installed (Debian: libimage-exiftool-perl; scripts/ci_services.sh)")
    return found


def _escape(text: str) -> str:
    """A value inside exiftool's structure syntax: its special characters escaped with '|'."""
    return "".join(f"|{char}" if char in ",[]{}|=" else char for char in text)


def mwg_assignment(regions: list[tuple]) -> str:
    """MWG regions of (name, box) or (name, box, type: Face by default, Pet, Focus, BarCode); no name: none written."""
    items = ",".join(
        f"{{Area={{X={x + w / 2:.6f},Y={y + h / 2:.6f},W={w:.6f},H={h:.6f},Unit=normalized}},"
        + (f"Name={_escape(region[0])}," if region[0] else "") + f"Type={region[2] if len(region) > 2 else 'Face'}}}"
        for region in regions for x, y, w, h in [region[1]]
    )
    return f"-XMP-mwg-rs:RegionInfo={{RegionList=[{items}]}}"


def mp_assignment(regions: list[tuple[str, Box]]) -> str:
    items = ",".join(
        f"{{PersonDisplayName={_escape(name)},Rectangle={x:.6f}|, {y:.6f}|, {w:.6f}|, {h:.6f}}}"
        for name, (x, y, w, h) in regions
    )
    return f"-XMP-MP:RegionInfoMP={{Regions=[{items}]}}"


def write_regions(photo: Path, placement: str, regions: list[tuple]) -> Path:
    """Write `regions` (name, box[, MWG type]) for `photo` in one of PLACEMENTS; returns the file written."""
    if placement == SIDECAR_APPENDED:
        target, command = photo.with_name(photo.name + ".xmp"), [mwg_assignment(regions), "-o"]
    elif placement == SIDECAR_REPLACED:
        target, command = photo.with_suffix(".xmp"), [mwg_assignment(regions), "-o"]
    elif placement == EMBEDDED_MWG:
        target, command = photo, [mwg_assignment(regions), "-overwrite_original"]
    elif placement == EMBEDDED_MP:
        target, command = photo, [mp_assignment(regions), "-overwrite_original"]
    else:
        raise ValueError(f"unknown placement {placement!r}")
    if target != photo:
        target.unlink(missing_ok=True)
        command += [str(target)]
    subprocess.run([exiftool(), "-q", *command, str(photo)], check=True, capture_output=True)
    return target


def face_analyzer():
    """The project's own detector and descriptor, with their real weights (made by scripts/setup.sh)."""
    from photo_assets import models, settings
    from photo_assets.analysis.descriptors import Descriptor
    from photo_assets.analysis.faces import DetectorSettings

    return models.face_analyzer(Path(settings.DEFAULT_MODELS), DetectorSettings(), Descriptor.DLIB)


def largest_face(image):
    """The largest face MTCNN finds in a PIL image."""
    return max(face_analyzer().detect(image.convert("RGB")), key=lambda face: face.width * face.height)


def sideways_copy(source: Path, target: Path) -> tuple[int, int, int, int]:
    """`source` stored a quarter turn counter-clockwise, with no EXIF orientation (as a scan comes): the detector
    finds no face in it. Returns its largest face's box in the copy's pixels, from the upright photo: (x, y, w, h)
    upright lies at (y, W - x - w, h, w)."""
    from PIL import Image

    with Image.open(source) as image:
        face = largest_face(image)
        width = image.width
        image.transpose(Image.Transpose.ROTATE_90).save(target, quality=95)
    return face.y, width - face.x - face.width, face.height, face.width
