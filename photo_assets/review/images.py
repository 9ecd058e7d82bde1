"""Face crops and photo previews for the review pages. A face's crop is the one the faces step stored
(`<data>/face_crops/`); one missing (deleted, or from a data folder older than the crops) is cut from the photo as
the faces step would. Photo previews are made on first view at a bounded size and cached in `<data>/review_cache/`.
Both are named by content hashes, so a stored file never goes stale.

Only photos listed in the catalog are opened, by their path relative to the library, and only when that path
resolves inside the library folder.
"""

from __future__ import annotations

import threading
from pathlib import Path

from photo_assets.analysis.contact_sheet import (
    CROP_CONTEXT,
    CROP_SIDE,
    face_crop,
    jpeg_bytes,
)
from photo_assets.analysis.images import PhotoError, open_oriented
from photo_assets.people.view import PeopleView
from photo_assets.storage import DataLayout, write_atomically

PREVIEW_SIDE = 1280  # long side of a photo preview
# Long side of a search-page thumbnail: a grid cell is ~180 CSS px, sharp on a 2x screen, ~15 kB a file.
THUMBNAIL_SIDE = 360


class ImageNotFound(LookupError):
    pass


class ImageCache:
    def __init__(self, layout: DataLayout, library_dir: Path):
        self.layout = layout
        self.library_dir = Path(library_dir).resolve()
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def face_path(self, face_id: str) -> Path:
        return self.layout.face_crop(face_id)

    def photo_path(self, photo_id: str) -> Path:
        return self.layout.photo_preview(photo_id)

    def _source(self, view: PeopleView, photo_id: str) -> Path:
        photo = view.photos.get(photo_id)
        if photo is None:
            raise ImageNotFound(f"no photo {photo_id}")
        path = (self.library_dir / photo.path).resolve()
        if not path.is_relative_to(self.library_dir) or not path.is_file():
            raise ImageNotFound(f"photo {photo_id} is not in the library")
        return path

    def thumbnail_path(self, photo_id: str) -> Path:
        return self.layout.photo_thumbnail(photo_id)

    def photo(self, view: PeopleView, photo_id: str) -> Path:
        return self._reduced(view, photo_id, self.photo_path(photo_id), PREVIEW_SIDE)

    def thumbnail(self, view: PeopleView, photo_id: str) -> Path:
        return self._reduced(view, photo_id, self.thumbnail_path(photo_id), THUMBNAIL_SIDE)

    def _reduced(self, view: PeopleView, photo_id: str, target: Path, long_side: int) -> Path:
        """The photo at most `long_side` pixels long, upright, cached at `target`."""
        if target.exists():
            return target
        with self._lock(str(target)):
            if not target.exists():
                try:
                    image = open_oriented(self._source(view, photo_id), max_side=long_side)
                except PhotoError as error:
                    raise ImageNotFound(str(error)) from error
                write_atomically(target, jpeg_bytes(image))
        return target

    def face(self, view: PeopleView, face_id: str) -> Path:
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
            sides = [max(view.boxes[f].width, view.boxes[f].height) * (1 + 2 * CROP_CONTEXT) for f in face_ids]
            # Decode just large enough that the smallest face's crop still has CROP_SIDE pixels.
            scale = min(1.0, CROP_SIDE / max(1.0, min(sides)))
            long_side = max(photo.width, photo.height)
            try:
                image = open_oriented(self._source(view, box.photo_id), max_side=max(64, round(long_side * scale)))
            except PhotoError as error:
                raise ImageNotFound(str(error)) from error
            ratio = image.width / photo.width
            for other in face_ids:
                face = view.boxes[other]
                crop = face_crop(image, (face.x, face.y, face.width, face.height), ratio)
                write_atomically(self.face_path(other), jpeg_bytes(crop))
        return target
