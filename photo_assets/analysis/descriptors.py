"""Which descriptor turns a face into the vector people are grouped by (docs/analysis.md, Faces and People). The
face step records it in every embedding's model version; the people step reads it back from there and uses the
thresholds measured for it."""

from __future__ import annotations

from enum import StrEnum

# How the FaceNet model versions name their network (photo_assets.analysis.faces.model_version).
FACENET_MARK = "/facenet128-"


class Descriptor(StrEnum):
    # dlib's ResNet on 150 px chips aligned by dlib's 5-point landmarks, its descriptor summed with its mirror
    # image's: on lfw_train, plain average linkage at pairwise precision ~0.99 recalls 0.799 of people with it, 0.510
    # with FaceNet-128 (bench/people_quality.py).
    DLIB = "dlib"
    # FaceNet-128 on deepface's eye-levelled 160 px crops: the reference design's model.
    FACENET = "facenet"


def descriptor_of(model: str) -> Descriptor:
    """The descriptor a model version (face_embeddings' `model`) was made with."""
    return Descriptor.FACENET if FACENET_MARK in model else Descriptor.DLIB
