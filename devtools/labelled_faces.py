"""The labelled face sets under ../shared/faces, embedded in-process by the real face pipeline (MTCNN + the
descriptor): the largest face of each labelled photo, with its identity. The tests embed FACE_SETS once per session;
bench/people_quality.py runs whole sets through `photo-assets run` instead."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from photo_assets.analysis.catalog import content_hash
from photo_assets.analysis.faces import face_id
from photo_assets.analysis.images import PhotoError
from photo_assets.models import face_analyzer
from photo_assets.settings import Settings

# The sets the tests embed in-process (their largest faces only).
FACE_SETS = ("lfw_dev", "deepface")


@dataclass
class LabelledFaces:
    """The largest face of every labelled photo of a set, embedded through the real pipeline."""

    name: str
    model: str  # the face analyser's model version: which descriptor made the embeddings
    photo_ids: np.ndarray  # str
    face_ids: np.ndarray  # str
    truth: np.ndarray  # str: the person the photo is labelled with
    embeddings: np.ndarray  # (faces, 128) the descriptor's raw output
    confidence: np.ndarray
    size: np.ndarray  # shorter box side, pixels
    eye_ratio: np.ndarray
    sharpness: np.ndarray


def labelled_photos(shared_dir: Path, name: str) -> list[tuple[Path, str]]:
    """(photo, person) for every labelled photo of a set."""
    root = shared_dir / "faces" / name
    if name == "deepface":
        identities = json.loads((root / "identities.json").read_text())
        return [(root / photo, person) for person, photos in sorted(identities.items()) for photo in sorted(photos)]
    return [(photo, folder.name) for folder in sorted(root.iterdir()) if folder.is_dir()
            for photo in sorted(folder.iterdir())]


def embed_labelled_set(shared_dir: Path, name: str) -> LabelledFaces:
    """Run the face pipeline on a set; photos where no face is found are left out (and counted on stderr)."""
    analyzer = face_analyzer(Settings.from_env().models_dir)
    photos = labelled_photos(shared_dir, name)
    person_of = {}
    inputs = []
    for path, person in photos:
        photo_id = content_hash(path)
        person_of[photo_id] = person
        inputs.append((photo_id, path))
    rows = []
    for photo_id, result in analyzer.analyse(inputs):
        if isinstance(result, PhotoError) or not result.faces:
            continue
        largest = max(range(len(result.faces)), key=lambda i: result.faces[i].width * result.faces[i].height)
        face = result.faces[largest]
        rows.append((photo_id, face_id(photo_id, face), person_of[photo_id], result.embeddings[largest],
                     face.confidence, face.size, face.eye_ratio, result.sharpness[largest]))
    missed = len(photos) - len(rows)
    if missed:
        print(f"{name}: no face found in {missed} of {len(photos)} photos", file=sys.stderr)
    columns = list(zip(*rows))
    return LabelledFaces(
        name,
        analyzer.model_version,
        np.array(columns[0], dtype=object),
        np.array(columns[1], dtype=object),
        np.array(columns[2], dtype=object),
        np.stack(columns[3]).astype(np.float32),
        np.array(columns[4], np.float32),
        np.array(columns[5], np.int32),
        np.array(columns[6], np.float32),
        np.array(columns[7], np.float32),
    )


