"""Face detection and embedding, stage by stage: TensorFlow against LiteRT, mtcnn's pipeline against ours.

    .venv/bin/python bench/face_networks.py [--photos N] [--faces N]

Detection, per photo, on the detection copies (long side 1,024) of ../shared/faces/deepface's photos, each path
warmed up on every photo before the clock starts:
  mtcnn + Keras    mtcnn 1.0.0's `detect_faces` as it ships (TensorFlow networks, TensorFlow resize and crops);
  mtcnn + LiteRT   the same pipeline with its three networks swapped for our LiteRT conversions;
  ours             photo_assets.analysis.face_cascade on the LiteRT networks (what a face step runs).
Embedding, per face: FaceNet-128 on Keras against its LiteRT conversion, in batches of EMBED_BATCH_SIZE; dlib's
ResNet (with its mirror) on dlib-bin against its LiteRT conversion; and the cost of cutting dlib's chips from a
reduced region and from the full one, on the photos and on them enlarged ENLARGED times.
Start-up: seconds to import what each needs, in a fresh process (TensorFlow and mtcnn; LiteRT and OpenCV).
All on this machine's cores, as a run uses them.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

SHARED_DIR = Path(__file__).resolve().parents[1].parent / "shared"
DEEPFACE_DIR = SHARED_DIR / "faces" / "deepface"
WARM_UP_ROUNDS = 1
# Photos enlarged this many times give faces of ~500-1,500 px, as a phone's portrait has.
ENLARGED = 4
IMPORTS = {
    "TensorFlow + mtcnn": "import tensorflow, mtcnn",
    "LiteRT + OpenCV": "import ai_edge_litert.interpreter, cv2",
}


def per_call_ms(function, inputs: list) -> float:
    for _ in range(WARM_UP_ROUNDS):
        for item in inputs:
            function(item)
    start = time.perf_counter()
    for item in inputs:
        function(item)
    return (time.perf_counter() - start) / len(inputs) * 1000


def import_seconds(statement: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", statement], check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=30, help="deepface photos used (default 30)")
    parser.add_argument("--faces", type=int, default=64, help="aligned faces embedded (default 64)")
    args = parser.parse_args()
    if not DEEPFACE_DIR.is_dir():
        sys.exit(f"no face corpus at {DEEPFACE_DIR}")

    from photo_assets import network_conversion
    from photo_assets.analysis import faces as faces_module
    from photo_assets.analysis.descriptors import Descriptor
    from photo_assets.analysis.images import open_oriented
    from photo_assets.models import FACENET, face_analyzer
    from photo_assets.settings import Settings

    models_dir = Settings.from_env().models_dir
    analyzer = face_analyzer(models_dir, descriptor=Descriptor.FACENET)
    settings = analyzer.settings
    options = {
        "min_face_size": settings.min_face_size, "scale_factor": settings.scale_factor,
        "threshold_pnet": settings.threshold_pnet, "threshold_rnet": settings.threshold_rnet,
        "threshold_onet": settings.threshold_onet,
    }
    paths = sorted(DEEPFACE_DIR.glob("*.jpg"))[: args.photos]
    copies = [
        np.asarray(faces_module._detection_copy(open_oriented(path), settings.detect_max_side), np.float32)
        for path in paths
    ]
    print(f"{len(copies)} photos, long side {settings.detect_max_side}; {os.cpu_count()} cores")

    network_conversion.tensorflow_for_keras()
    import tensorflow as tf
    from mtcnn import MTCNN

    keras_mtcnn = MTCNN()
    lite_stages = MTCNN().stages
    for stage, name in zip(lite_stages, faces_module.MTCNN_NETWORKS):
        network = faces_module.LiteNetwork(
            analyzer.networks.path(name), per_shape=True, batch_buckets=name != "pnet"
        )
        stage._model = lambda images, network=network: [tf.convert_to_tensor(out) for out in network(images)]
    lite_mtcnn = MTCNN(stages=lite_stages)
    cascade = faces_module._cascade(analyzer.networks)

    detection = {
        "mtcnn + Keras": per_call_ms(
            lambda image: keras_mtcnn.detect_faces(image, box_format="xyxy", output_type="numpy", **options), copies
        ),
        "mtcnn + LiteRT": per_call_ms(
            lambda image: lite_mtcnn.detect_faces(image, box_format="xyxy", output_type="numpy", **options), copies
        ),
        "ours": per_call_ms(lambda image: cascade(image, **options), copies),
    }
    print("\ndetection, ms per photo:")
    for name, value in detection.items():
        print(f"  {name:16s} {value:7.1f}  ({detection['mtcnn + Keras'] / value:.2f}x mtcnn + Keras)")

    found = [(path, analyzer.detect(open_oriented(path))) for path in paths]
    crops = np.concatenate([analyzer.aligned_crops(open_oriented(path), faces) for path, faces in found if faces])
    crops = np.resize(crops, (args.faces, *crops.shape[1:]))  # repeated up to --faces
    batches = np.array_split(crops, max(1, len(crops) // faces_module.EMBED_BATCH_SIZE))
    keras_facenet = network_conversion.keras_facenet(FACENET.path(models_dir))
    embedding = {
        "Keras": per_call_ms(lambda batch: keras_facenet(batch[..., ::-1], training=False), batches),
        "LiteRT": per_call_ms(analyzer.embed, batches),
    }
    per_batch = len(crops) / len(batches)
    print(f"\nFaceNet-128, ms per face (batches of {per_batch:.0f}):")
    for name, value in embedding.items():
        print(f"  {name:16s} {value / per_batch:7.1f}  ({embedding['Keras'] / value:.2f}x Keras)")

    dlib_descriptor(face_analyzer(models_dir), models_dir, found, args.faces)

    print("\nimports in a fresh process, s:")
    for name, statement in IMPORTS.items():
        print(f"  {name:20s} {import_seconds(statement):5.1f}")


def dlib_descriptor(analyzer, models_dir: Path, found: list, faces: int) -> None:
    """dlib's ResNet: our LiteRT conversion against dlib's own network (dlib-bin) on the same chips, each with its
    mirror image; and what cutting a chip costs, on the photos and on them enlarged (large faces), from a reduced
    region (what the faces step does) and from the full one."""
    import dlib
    from PIL import Image

    from photo_assets.analysis import faces as faces_module
    from photo_assets.analysis.images import open_oriented
    from photo_assets.models import DLIB_RESNET

    reference = dlib.face_recognition_model_v1(str(DLIB_RESNET.path(models_dir)))
    chips = np.concatenate([analyzer.descriptor_inputs(open_oriented(path), found_faces, np.zeros(0))
                            for path, found_faces in found if found_faces])
    chips = np.resize(chips, (faces, *chips.shape[1:]))
    batches = np.array_split(chips, max(1, len(chips) // faces_module.EMBED_BATCH_SIZE))
    mirrored = [np.ascontiguousarray(chip[:, ::-1]) for chip in chips]
    started = time.perf_counter()
    for chip, mirror in zip(chips, mirrored):
        reference.compute_face_descriptor(chip)
        reference.compute_face_descriptor(mirror)
    theirs = 1000 * (time.perf_counter() - started) / len(chips)
    ours = per_call_ms(analyzer.embed, batches) / (len(chips) / len(batches))
    print(f"\ndlib's ResNet with its mirror, ms per face: dlib-bin {theirs:.1f}, ours on LiteRT {ours:.1f} "
          f"({theirs / ours:.1f}x)")
    print("chips, ms per face:")
    for label, scale in (("photos as they are", 1), (f"photos enlarged {ENLARGED}x", ENLARGED)):
        images = [open_oriented(path) for path, found_faces in found if found_faces]
        images = [image.resize((image.width * scale, image.height * scale), Image.Resampling.BILINEAR)
                  for image in images]
        located = [(image, analyzer.detect(image)) for image in images]
        count = sum(len(found_faces) for _, found_faces in located)
        timings = {}
        for mode, region_scale in (("reduced region", faces_module.ALIGN_REGION_SCALE), ("full region", 10**6)):
            faces_module.ALIGN_REGION_SCALE, kept = region_scale, faces_module.ALIGN_REGION_SCALE
            started = time.perf_counter()
            for image, found_faces in located:
                faces_module.dlib_chips(image, found_faces, analyzer.networks.shape_predictor)
            timings[mode] = 1000 * (time.perf_counter() - started) / count
            faces_module.ALIGN_REGION_SCALE = kept
        print(f"  {label:22s} " + ", ".join(f"{mode} {value:.1f}" for mode, value in timings.items()))


if __name__ == "__main__":
    main()
