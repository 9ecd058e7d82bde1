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


# -- the object detector: a TF.js graph model, read with TensorFlow alone -------------------------------------------

OBJECT_INPUT = "tower_0/images"
OBJECT_DETECTIONS = "tower_0/detections"
# Constants the freezer baked in for a 512 x 512 input, replaced by values computed from the input's shape so one
# flatbuffer takes any input whose sides are multiples of 32: the three up-sampling sizes (the input's side over
# 16, 8 and 4), the heat map's width (turns a flat top-k index into x, y) and the gather's reshape ([16384, 4]).
OBJECT_UPSAMPLING = {
    "tower_0/CenternetHead/c5_upsample/up_sampling2d/mul": 16,
    "tower_0/CenternetHead/c4_upsample/up_sampling2d_1/mul": 8,
    "tower_0/CenternetHead/c3_upsample/up_sampling2d_2/mul": 4,
}
OBJECT_HEATMAP_WIDTH = "tower_0/strided_slice_6"
OBJECT_GATHER_SHAPE = "tower_0/BatchGather/concat"
HEATMAP_STRIDE = 4
TFJS_FUSED_OPS = {"_FusedConv2D": "Conv2D", "FusedDepthwiseConv2dNative": "DepthwiseConv2dNative"}


def tfjs_weights(model: dict, weights: bytes) -> dict:
    """The weights manifest's tensors by name, float16-stored ones widened back to float32 (numpy arrays)."""
    import numpy as np

    values, offset = {}, 0
    for group in model["weightsManifest"]:
        for spec in group["weights"]:
            shape = [int(size) for size in spec["shape"]]
            count = int(np.prod(shape)) if shape else 1
            stored = np.dtype(spec.get("quantization", {}).get("dtype", spec["dtype"]))
            data = np.frombuffer(weights, stored, count, offset)
            offset += data.nbytes
            values[spec["name"]] = data.astype(spec["dtype"]).reshape(shape)
    if offset != len(weights):
        raise ValueError(f"the weights file holds {len(weights)} bytes, its manifest describes {offset}")
    return values


def _standard_nodes(node: dict) -> list[dict]:
    """A TF.js fused convolution as TensorFlow's own nodes: the convolution, BiasAdd, and the activation if any; the
    last keeps the node's name, so its consumers stay wired."""
    import base64

    attr = node["attr"]
    fused = [base64.b64decode(text).decode() for text in attr["fused_ops"]["list"]["s"]]
    if fused[0] != "BiasAdd" or len(fused) > 2 or (len(fused) == 2 and fused[1] not in ("Relu", "Relu6")):
        raise NotImplementedError(f"{node['name']}: fused ops {fused}")
    name, (image, kernel, bias) = node["name"], node["input"][:3]
    kept = ("T", "strides", "padding", "data_format", "dilations", "explicit_paddings", "use_cudnn_on_gpu")
    convolution = {"name": f"{name}/_conv", "op": TFJS_FUSED_OPS[node["op"]], "input": [image, kernel],
                   "attr": {key: attr[key] for key in kept if key in attr}}
    if convolution["op"] != "Conv2D":
        convolution["attr"].pop("use_cudnn_on_gpu", None)
    biased = {"name": name if len(fused) == 1 else f"{name}/_bias", "op": "BiasAdd",
              "input": [convolution["name"], bias], "attr": {"T": attr["T"]}}
    if "data_format" in attr:
        biased["attr"]["data_format"] = attr["data_format"]
    nodes = [convolution, biased]
    if len(fused) == 2:
        nodes.append({"name": name, "op": fused[1], "input": [biased["name"]], "attr": {"T": attr["T"]}})
    return nodes


def convert_object_network(model_path: Path, weights_path: Path) -> bytes:
    """The object detector's LiteRT flatbuffer from its TF.js files: input float32 [1, H, W, 3] (RGB 0..255, sides
    multiples of 32), one output [1, 100, 6] (x1, y1, x2, y2 in input pixels, score, class)."""
    import json

    import tensorflow as tf
    from google.protobuf import json_format

    model = json.loads(Path(model_path).read_text())
    values = tfjs_weights(model, Path(weights_path).read_bytes())
    nodes = [standard for node in model["modelTopology"]["node"]
             for standard in (_standard_nodes(node) if node["op"] in TFJS_FUSED_OPS else [node])]
    graph = json_format.ParseDict({"node": nodes}, tf.compat.v1.GraphDef())
    for node in graph.node:
        if node.op == "Const":
            node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(values[node.name]))
        elif node.op == "Placeholder":
            node.attr["shape"].shape.CopyFrom(tf.TensorShape([1, None, None, 3]).as_proto())

    def detections(images):
        sides = tf.shape(images)[1:3]
        mapping = {f"{OBJECT_INPUT}:0": images, f"{OBJECT_HEATMAP_WIDTH}:0": sides[1] // HEATMAP_STRIDE,
                   f"{OBJECT_GATHER_SHAPE}:0": tf.constant([-1, 4], tf.int32)}
        mapping |= {f"{name}:0": sides // divisor for name, divisor in OBJECT_UPSAMPLING.items()}
        (found,) = tf.graph_util.import_graph_def(graph, input_map=mapping, return_elements=[f"{OBJECT_DETECTIONS}:0"],
                                                  name="")
        return {"output_0": found}

    module = tf.Module()
    module.detections = tf.function(detections, input_signature=[tf.TensorSpec([1, None, None, 3], tf.float32,
                                                                                name="images")])
    with tempfile.TemporaryDirectory() as saved:
        tf.saved_model.save(module, saved, signatures={LITE_SIGNATURE: module.detections.get_concrete_function()})
        return tf.lite.TFLiteConverter.from_saved_model(saved).convert()
