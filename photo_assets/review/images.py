"""Face crops and photo previews for the review pages: made from the oriented photo at a bounded size, cached in
`<data>/review_cache/` under the face's or photo's id (both are content hashes, so a cached file never goes stale).

Only photos listed in the catalog are opened, by their path relative to the library, and only when that path
resolves inside the library folder.
"""

from __future__ import annotations

import io
import threading
from pathlib import Path

from PIL import Image

from photo_assets.analysis.images import PhotoError, open_oriented
from photo_assets.review.data import View
from photo_assets.storage import DataLayout, write_atomically

FACE_SIDE = 160  # pixels of a face crop (square)
PREVIEW_SIDE = 1280  # long side of a photo preview
FACE_CONTEXT = 0.25  # margin around the box, as a share of its side, on each side
JPEG_QUALITY = 85


class ImageNotFound(LookupError):
    pass


def _jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


class ImageCache:
    def __init__(self, layout: DataLayout, library_dir: Path):
        self.root = layout.review_cache
        self.library_dir = Path(library_dir).resolve()
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def face_path(self, face_id: str) -> Path:
        return self.root / "faces" / f"{face_id}.jpg"

    def photo_path(self, photo_id: str) -> Path:
        return self.root / "photos" / f"{photo_id}.jpg"

    def _source(self, view: View, photo_id: str) -> Path:
        photo = view.photos.get(photo_id)
        if photo is None:
            raise ImageNotFound(f"no photo {photo_id}")
        path = (self.library_dir / photo.path).resolve()
        if not path.is_relative_to(self.library_dir) or not path.is_file():
            raise ImageNotFound(f"photo {photo_id} is not in the library")
        return path

    def photo(self, view: View, photo_id: str) -> Path:
        target = self.photo_path(photo_id)
        if target.exists():
            return target
        with self._lock(photo_id):
            if not target.exists():
                try:
                    image = open_oriented(self._source(view, photo_id), max_side=PREVIEW_SIDE)
                except PhotoError as error:
                    raise ImageNotFound(str(error)) from error
                write_atomically(target, _jpeg(image))
        return target

    def face(self, view: View, face_id: str) -> Path:
        """The crop of one face; the photo is decoded once for all its faces, whose crops are cached together."""
        target = self.face_path(face_id)
        if target.exists():
            return target
        box = view.boxes.get(face_id)
        if box is None:
            raise ImageNotFound(f"no face {face_id}")
        with self._lock(box.photo_id):
            if target.exists():
                return target
            photo = view.photos.get(box.photo_id)
            if photo is None or not photo.width:
                raise ImageNotFound(f"no photo for face {face_id}")
            face_ids = view.photo_boxes.get(box.photo_id, [face_id])
            sides = [max(view.boxes[f].width, view.boxes[f].height) * (1 + 2 * FACE_CONTEXT) for f in face_ids]
            # Decode just large enough that the smallest face's crop still has FACE_SIDE pixels.
            scale = min(1.0, FACE_SIDE / max(1.0, min(sides)))
            long_side = max(photo.width, photo.height)
            try:
                image = open_oriented(self._source(view, box.photo_id), max_side=max(64, round(long_side * scale)))
            except PhotoError as error:
                raise ImageNotFound(str(error)) from error
            ratio = image.width / photo.width
            for other in face_ids:
                face = view.boxes[other]
                side = max(face.width, face.height) * (1 + 2 * FACE_CONTEXT) * ratio
                centre_x, centre_y = (face.x + face.width / 2) * ratio, (face.y + face.height / 2) * ratio
                crop = image.crop(
                    (round(centre_x - side / 2), round(centre_y - side / 2),
                     round(centre_x + side / 2), round(centre_y + side / 2))
                )  # fmt: skip
                crop = crop.resize((FACE_SIDE, FACE_SIDE), Image.Resampling.BICUBIC)
                write_atomically(self.face_path(other), _jpeg(crop))
        return target
