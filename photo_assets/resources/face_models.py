"""The face models (MTCNN + the people descriptor) as a configurable resource: loaded lazily, once per run process."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field

from photo_assets import models, settings
from photo_assets.analysis.descriptors import Descriptor
from photo_assets.analysis.faces import EMBED_BATCH_SIZE, DetectorSettings, FaceAnalyzer
from photo_assets.analysis.objects import ObjectDetector
from photo_assets.analysis.objects import model_version as object_model_version

DEFAULTS = DetectorSettings()


def scan_version(face_version: str, object_version: str) -> str:
    """A photo's scan is reusable when both its faces and its objects were found by the models in use now."""
    return f"{face_version}+{object_version}"


class FaceModels(dg.ConfigurableResource):
    """Where the weights are, the detector settings (the reference's, see DetectorSettings) and the embedding batch
    size. Changing a setting changes the faces' model version: their rows are recomputed, never mixed with the old."""

    models_dir: str = str(settings.DEFAULT_MODELS)
    descriptor: str = Field(
        default=settings.DEFAULT_FACE_DESCRIPTOR,
        description="The descriptor people are grouped by: dlib (default) or facenet "
        f"(${settings.FACE_DESCRIPTOR_ENV}).",
    )
    min_face_size: int = DEFAULTS.min_face_size
    threshold_pnet: float = DEFAULTS.threshold_pnet
    threshold_rnet: float = DEFAULTS.threshold_rnet
    threshold_onet: float = DEFAULTS.threshold_onet
    scale_factor: float = DEFAULTS.scale_factor
    min_confidence: float = DEFAULTS.min_confidence
    detect_max_side: int = DEFAULTS.detect_max_side
    embed_batch_size: int = EMBED_BATCH_SIZE

    def model_version(self) -> str:
        """The version the faces step gives its rows with these settings, without loading any network."""
        return models.expected_model_version(self._detector(), Descriptor(self.descriptor))

    def scan_version(self) -> str:
        """The version the faces step gives a photo's scan: its faces' and its objects' models together."""
        return scan_version(self.model_version(), object_model_version(models.OBJECT_WEIGHTS.sha256))

    def object_detector(self) -> ObjectDetector:
        return models.object_detector(Path(self.models_dir))

    def analyzer(self) -> FaceAnalyzer:
        return models.face_analyzer(Path(self.models_dir), self._detector(), Descriptor(self.descriptor))

    def _detector(self) -> DetectorSettings:
        return DetectorSettings(
            min_face_size=self.min_face_size,
            threshold_pnet=self.threshold_pnet,
            threshold_rnet=self.threshold_rnet,
            threshold_onet=self.threshold_onet,
            scale_factor=self.scale_factor,
            min_confidence=self.min_confidence,
            detect_max_side=self.detect_max_side,
        )
