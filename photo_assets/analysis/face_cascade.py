"""MTCNN's cascade around its three networks, in NumPy and OpenCV: mtcnn 1.0.0's own pipeline, step for step.

P-Net scans an image pyramid for 12 x 12 windows that may hold a face; R-Net re-scores their 24 x 24 crops, O-Net
their 48 x 48 crops and adds five landmarks; non-maximum suppression thins the boxes after each stage. mtcnn runs
this with TensorFlow operations (`tf.image.resize`, `tf.image.crop_and_resize`) and NumPy, and importing TensorFlow
for them costs a photo-assets run 2.4 s before its first photo (bench/face_networks.py times the imports and
both pipelines). Here the same arithmetic runs on OpenCV's area resize (TensorFlow's AREA
method: equal within float rounding) and a NumPy bilinear crop that samples where `crop_and_resize` samples, so the
boxes, landmarks and confidences are mtcnn's own within float rounding (tests/analysis/test_faces.py compares them
with mtcnn's Keras pipeline). Its non-maximum suppression is mtcnn's too, which is not the textbook one: a box is
dropped when it overlaps any higher-scored box, kept or not.

The networks are callables taking a float32 batch (n, h, w, 3) and returning their outputs as NumPy arrays, in the
network's order: P-Net (box offsets, scores), R-Net (box offsets, scores), O-Net (box offsets, landmarks, scores).
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

Network = Callable[[np.ndarray], list[np.ndarray]]

# P-Net sees 12 x 12 windows, one every 2 pixels of a pyramid level; the pyramid stops where a level is smaller.
PNET_WINDOW = 12
PNET_STRIDE = 2
RNET_SIDE = 24
ONET_SIDE = 48
# mtcnn's suppression thresholds: within one pyramid level, across levels, after R-Net, after O-Net (its boxes are
# compared by their overlap over the smaller box, so a box inside another goes).
NMS_PNET_LEVEL = 0.5
NMS_PNET_ACROSS = 0.7
NMS_RNET = 0.7
NMS_ONET = 0.7
# Boxes whose overlaps are computed at once: bounds the IoU block's memory (1,024 x n float64) on a busy photo.
NMS_BLOCK = 1024
# Pixel values as the networks were trained on them: (value - 127.5) / 128.
PIXEL_CENTRE = 127.5
PIXEL_SCALE = 128.0
BOX_COLUMNS = 5  # x1, y1, x2, y2, score


def pyramid_scales(width: int, height: int, min_face_size: int, scale_factor: float) -> np.ndarray:
    """mtcnn's `build_scale_pyramid`: the first level maps min_face_size onto P-Net's window; its count is mtcnn's
    own formula (which ignores that first shrink, so the smallest level may be under a window: it finds nothing)."""
    count = round(-((np.log(min(width, height) / PNET_WINDOW) / np.log(scale_factor)) + 1))
    return PNET_WINDOW / min_face_size * scale_factor ** np.arange(count)


def detect(
    pnet: Network,
    rnet: Network,
    onet: Network,
    image: np.ndarray,
    *,
    min_face_size: int,
    scale_factor: float,
    threshold_pnet: float,
    threshold_rnet: float,
    threshold_onet: float,
) -> np.ndarray:
    """Faces in an (h, w, 3) RGB image of 0..255 values: rows of x1, y1, x2, y2, confidence, the five landmarks'
    xs, then their ys (left eye, right eye, nose, mouth left, mouth right), best first; boxes kept inside the image
    as mtcnn's `fit_to_image` keeps them, landmarks not."""
    height, width = image.shape[:2]
    normalized = (np.asarray(image, np.float32) - PIXEL_CENTRE) / PIXEL_SCALE
    boxes = _proposals(normalized, pnet, min_face_size, scale_factor, threshold_pnet)
    if len(boxes):
        boxes = _refined(normalized, _square(boxes), rnet, threshold_rnet)
    if not len(boxes):
        return np.zeros((0, BOX_COLUMNS + 10), np.float32)
    square = _square(boxes)
    offsets, landmarks, scores = onet(_crops(normalized, square, ONET_SIDE))
    sizes = _sides(square)
    landmarks = np.concatenate(
        [sizes[:, :1] * landmarks[:, :5] + square[:, :1] - 1, sizes[:, 1:2] * landmarks[:, 5:] + square[:, 1:2] - 1],
        axis=1,
    )
    rows = np.concatenate([_adjusted(square, offsets, scores), landmarks], axis=1)
    rows = _suppressed(_best_first(rows[rows[:, 4] > threshold_onet]), NMS_ONET, over_smaller=True)
    rows[:, [0, 2]] = np.clip(rows[:, [0, 2]], 0, width - 1)
    rows[:, [1, 3]] = np.clip(rows[:, [1, 3]], 0, height - 1)
    return rows


def _proposals(
    normalized: np.ndarray, pnet: Network, min_face_size: int, scale_factor: float, threshold: float
) -> np.ndarray:
    """P-Net's candidate boxes over the pyramid, in the image's pixels."""
    height, width = normalized.shape[:2]
    levels = []
    for scale in pyramid_scales(width, height, min_face_size, scale_factor):
        # Each level is shrunk from the full image, as mtcnn does (TensorFlow truncates the scaled sides).
        size = (int(width * scale), int(height * scale))
        level = cv2.resize(normalized, size, interpolation=cv2.INTER_AREA)
        offsets, scores = pnet(level[None])
        levels.append(_suppressed(_windows(offsets[0], scores[0, :, :, 1], threshold, scale), NMS_PNET_LEVEL))
    boxes = np.concatenate(levels) if levels else np.zeros((0, BOX_COLUMNS))
    return _suppressed(_best_first(boxes), NMS_PNET_ACROSS)


def _windows(offsets: np.ndarray, scores: np.ndarray, threshold: float, scale: float) -> np.ndarray:
    """mtcnn's `generate_bounding_box` and `upscale_bboxes`: each window scoring above threshold, moved by its
    offsets, in the full image's pixels, best first."""
    ys, xs = np.nonzero(scores > threshold)
    left, top = xs * PNET_STRIDE + 1, ys * PNET_STRIDE + 1
    span = PNET_WINDOW - 1  # mtcnn's window runs from stride * i + 1 to stride * i + 12
    moved = offsets[ys, xs] * span
    boxes = np.stack(
        [left + moved[:, 0], top + moved[:, 1], left + span + moved[:, 2], top + span + moved[:, 3]], axis=1
    )
    return _best_first(np.concatenate([boxes / scale, scores[ys, xs][:, None]], axis=1))


def _refined(normalized: np.ndarray, square: np.ndarray, rnet: Network, threshold: float) -> np.ndarray:
    offsets, scores = rnet(_crops(normalized, square, RNET_SIDE))
    boxes = _adjusted(square, offsets, scores)
    return _suppressed(_best_first(boxes[boxes[:, 4] > threshold]), NMS_RNET)


def _adjusted(square: np.ndarray, offsets: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """mtcnn's `replace_confidence` and `adjust_bboxes`: the network's score, the box moved by its offsets."""
    return np.concatenate([square[:, :4] + offsets * np.tile(_sides(square), 2), scores[:, 1:]], axis=1)


def _sides(square: np.ndarray) -> np.ndarray:
    """(width, height) of each box as mtcnn measures them for its offsets and landmarks: in pixels, both ends in."""
    return square[:, 2:4] - square[:, 0:2] + 1


def _best_first(rows: np.ndarray) -> np.ndarray:
    # mtcnn's own order (`sort_by_scores`), ties included: an unstable ascending sort, reversed.
    return rows[np.argsort(rows[:, 4])[::-1]]


def _suppressed(rows: np.ndarray, threshold: float, over_smaller: bool = False) -> np.ndarray:
    """Rows (best first) that overlap no earlier row by more than threshold: IoU, or the intersection over the
    smaller box's area. An earlier row counts whether it was kept or not, as in mtcnn's `nms`."""
    boxes = rows[:, :4].astype(np.float64)
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    dropped = np.zeros(len(rows), bool)
    for start in range(0, len(rows), NMS_BLOCK):
        block = boxes[start : start + NMS_BLOCK]
        later = slice(start + 1, None)  # a row is only ever dropped by an earlier one
        corner_low = np.maximum(block[:, None, :2], boxes[None, later, :2])
        corner_high = np.minimum(block[:, None, 2:], boxes[None, later, 2:])
        extent = np.maximum(0, corner_high - corner_low)
        overlap = extent[..., 0] * extent[..., 1]
        block_areas, later_areas = areas[start : start + NMS_BLOCK, None], areas[None, later]
        if over_smaller:
            ratio = overlap / np.minimum(block_areas, later_areas)
        else:
            ratio = overlap / (block_areas + later_areas - overlap)
        rank = np.arange(start, start + len(block))[:, None]
        dropped[later] |= ((ratio > threshold) & (np.arange(start + 1, len(rows))[None, :] > rank)).any(axis=0)
    return rows[~dropped]


def _square(rows: np.ndarray) -> np.ndarray:
    """mtcnn's `resize_to_square`: each box grown to a square about its centre, on its longer side."""
    square = rows.copy()
    width, height = rows[:, 2] - rows[:, 0], rows[:, 3] - rows[:, 1]
    side = np.maximum(width, height)
    square[:, 0] += width * 0.5 - side * 0.5
    square[:, 1] += height * 0.5 - side * 0.5
    square[:, 2] = square[:, 0] + side
    square[:, 3] = square[:, 1] + side
    return square


def _crops(normalized: np.ndarray, boxes: np.ndarray, side: int) -> np.ndarray:
    """(n, side, side, 3) bilinear crops of the boxes, sampled where TensorFlow's `crop_and_resize` samples for the
    box mtcnn hands it (its corners divided by the image's size) and 0 beyond the image, as it extrapolates."""
    height, width = normalized.shape[:2]
    steps = np.arange(side, dtype=np.float32) / (side - 1)
    # crop_and_resize's coordinates: corner / size * (size - 1), then side - 1 equal steps between the corners.
    x1, y1, x2, y2 = (boxes[:, :4].astype(np.float32) / np.float32([width, height, width, height])).T
    xs = (x1 * (width - 1))[:, None] + ((x2 - x1) * (width - 1))[:, None] * steps
    ys = (y1 * (height - 1))[:, None] + ((y2 - y1) * (height - 1))[:, None] * steps
    left, top = np.floor(xs), np.floor(ys)
    x_weight, y_weight = (xs - left)[:, None, :, None], (ys - top)[:, :, None, None]
    # The four neighbours of each sample, gathered from the flattened image (faster than 2-D fancy indexing).
    pixels = normalized.reshape(-1, 3)
    columns = [np.clip(index, 0, width - 1).astype(np.intp)[:, None, :] for index in (left, np.ceil(xs))]
    rows = [np.clip(index, 0, height - 1).astype(np.intp)[:, :, None] * width for index in (top, np.ceil(ys))]
    (upper_left, upper_right), (lower_left, lower_right) = (
        [np.take(pixels, row + column, axis=0) for column in columns] for row in rows
    )
    upper = upper_left + (upper_right - upper_left) * x_weight
    crops = upper + (lower_left + (lower_right - lower_left) * x_weight - upper) * y_weight
    outside = ((xs < 0) | (xs > width - 1))[:, None, :] | ((ys < 0) | (ys > height - 1))[:, :, None]
    crops[outside] = 0
    return crops
