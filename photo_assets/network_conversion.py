"""Setup time only: the five face networks converted into LiteRT flatbuffers with TensorFlow's converter (`python -m
photo_assets.models fetch` runs it once): MTCNN's three and FaceNet-128 from their Keras weights, dlib's ResNet from
dlib's own file (photo_assets.dlib_resnet). The analysis runs the flatbuffers on
LiteRT (photo_assets.analysis.faces) and never imports TensorFlow; this module is the one that does."""

from __future__ import annotations

import functools
import logging
import tempfile
from pathlib import Path

from photo_assets.analysis.faces import (
    DLIB_CHIP_SIDE,
    EMBEDDING_SIZE,
    FACENET_INPUT_SIDE,
    LITE_SIGNATURE,
    MTCNN_NETWORKS,
)

# Each MTCNN stage's input side, in the order of its stages: P-Net takes any size (a pyramid level), R-Net and O-Net
# fixed crops.
MTCNN_INPUT_SIDES = (None, 24, 48)


@functools.cache
def tensorflow_for_keras() -> None:
    """Keras 2 (tf-keras) for deepface's models, and a quiet TensorFlow. Importing deepface's entry module first is
    what selects Keras 2: it sets that up before TensorFlow is first imported, and mtcnn imports TensorFlow too."""
    import deepface.DeepFace  # noqa: F401
    import tensorflow as tf

    tf.get_logger().setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)


def convert_networks(facenet_weights: Path, dlib_resnet_weights: Path) -> dict[str, bytes]:
    """The LiteRT flatbuffer of each network (keys of NETWORK_FILES), converted with TensorFlow's converter from the
    weights MTCNN ships in its wheel, the FaceNet-128 weights file and dlib's ResNet file: what the setup step
    writes."""
    tensorflow_for_keras()
    from mtcnn import MTCNN

    from photo_assets.dlib_resnet import build_tf_module, read_dlib_net

    networks = {
        "facenet": _converted(keras_facenet(facenet_weights), FACENET_INPUT_SIDE),
        "dlib_resnet": _converted(build_tf_module(read_dlib_net(dlib_resnet_weights)), DLIB_CHIP_SIDE),
    }
    for stage, name, side in zip(MTCNN().stages, MTCNN_NETWORKS, MTCNN_INPUT_SIDES):
        networks[name] = _converted(stage._model, side)
    return networks


def _converted(model, side: int | None) -> bytes:
    """`model` saved as a SavedModel whose one signature takes float32 images of side x side (any size when None) and
    names its outputs output_0, output_1, ... in the model's order; then converted, its weights frozen in."""
    import tensorflow as tf

    def outputs(images):
        results = model(images, training=False)
        results = results if isinstance(results, (list, tuple)) else [results]
        return {f"output_{index}": result for index, result in enumerate(results)}

    signature = tf.function(outputs, input_signature=[tf.TensorSpec([None, side, side, 3], tf.float32, name="images")])
    with tempfile.TemporaryDirectory() as saved:
        tf.saved_model.save(model, saved, signatures={LITE_SIGNATURE: signature.get_concrete_function()})
        return tf.lite.TFLiteConverter.from_saved_model(saved).convert()


@functools.cache
def keras_facenet(weights_path: Path):
    """deepface's FaceNet-128 architecture with the weights file loaded into it (never a download)."""
    tensorflow_for_keras()
    from deepface.models.facial_recognition.tf.Facenet import InceptionResNetV1

    model = InceptionResNetV1(dimension=EMBEDDING_SIZE)
    model.load_weights(str(weights_path))
    return model
