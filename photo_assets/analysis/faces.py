"""Faces: MTCNN detection, then a descriptor per face (dlib's ResNet by default, FaceNet-128 selectable), batched
across photos (docs/analysis.md, Faces).

Detection runs on the orientation-corrected photo shrunk so its long side is at most `detect_max_side`; boxes and
landmarks are scaled back to full-size oriented pixels. That copy is resized from a JPEG decoded at reduced scale
(draft mode: 1/2 on a 12 MP photo), not from the full-size photo: ~75 ms instead of ~195 ms on 12 MP,
boxes within IoU 0.95 of the full decode's and the same AUC on the deepface test set. Only photos with faces are
then decoded at full size, for their crops. Decoding runs in a thread beside the detector (Pillow releases the GIL
while it decodes and resizes): the next photos' reduced decodes, and the full decode of a photo with faces, which is
aligned once the next photo's faces are found. `min_face_size` counts pixels of that shrunk copy, so the
smallest face found grows with the photo: at 1,024 it is ~50 px on a 12 MP photo (4,000 px long side) and ~90 px
on 40 MP (7,300 px), as `bench/faces.py --calibrate` measures. Smaller faces are lost on purpose: FaceNet sees
160 x 160 pixels, and a face blown up from a few dozen pixels says little about whose face it is.

Alignment and embedding are deepface 0.0.103's own (`DeepFace.represent(model_name="Facenet",
detector_backend="mtcnn")`): a crop with half the box added on every side, rotated about its centre so the eyes
are level, the box cut back out, scaled to fit 160 x 160 and padded with black, channels as deepface feeds them
(BGR, 0..1, no further normalisation). The crop comes from the full-size oriented photo, never from a reduced copy:
aligned from the half-scale decode, faces of 320-640 px embed at cosine 0.995-0.997 to the full-size ones, not the
0.999 that would keep today's embeddings. Each face also gets a small JPEG crop (contact_sheet.face_crop), cut from
the reduced decode, for the people page and the contact sheets.

The four networks (MTCNN's P-Net, R-Net and O-Net, FaceNet-128) run on LiteRT's interpreter, the TensorFlow Lite
runtime with its XNNPACK kernels, from flatbuffers the setup step converts from the very same weights
(`convert_networks`): outputs equal to the Keras networks' within float rounding (tests/analysis/test_faces.py), in
less than half their time on 2 cores (bench/face_networks.py times both, per face and per photo). MTCNN's cascade
around them (pyramid, proposals, non-maximum suppression) is face_cascade's port of mtcnn's own pipeline, boxes and
landmarks equal to mtcnn's within float rounding: a face step imports no TensorFlow, which cost 2.4 s at every start
(5 s where bytecode is not compiled). Embeddings go through the network in batches across faces and photos.
deepface, OpenCV and LiteRT are imported by the first analyser that needs them, so importing this module stays
cheap; TensorFlow and mtcnn only by the setup step's conversion. The networks' folder is an argument: the setup step
makes and verifies it.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.metadata
import json
import math
import os
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from photo_assets.analysis.contact_sheet import face_crop, jpeg_bytes
from photo_assets.analysis.descriptors import FACENET_MARK, Descriptor
from photo_assets.analysis.images import PhotoError, open_oriented, open_reduced

# Bump when anything here changes what a face's box or embedding would be (alignment, resize, channel order). Running
# the same weights on LiteRT instead of TensorFlow does not: boxes and embeddings agree within float rounding.
ALGORITHM_VERSION = "faces-v2-reduced-decode"
# The converted networks, named as the setup step writes them into the networks' folder.
NETWORK_FILES = {
    "pnet": "mtcnn-pnet.tflite",
    "rnet": "mtcnn-rnet.tflite",
    "onet": "mtcnn-onet.tflite",
    "facenet": "facenet128.tflite",
    "dlib_resnet": "dlib-resnet.tflite",
}
# dlib's 5-point landmark predictor, copied beside the networks by the setup step (dlib reads it itself).
SHAPE_PREDICTOR_FILE = "dlib-shape-predictor-5.dat"
# dlib's chips, as its face recognition example makes them: 150 px, a quarter of the face's size around it.
DLIB_CHIP_SIDE = 150
DLIB_CHIP_PADDING = 0.25
# For dlib's ResNet, a face is chipped (and levelled for its sharpness) from a region of the photo reduced (Pillow's
# box filter, by a whole factor) until the face is at most this many times the chip: the cost grows with the
# region's pixels (faces of photos enlarged 4x: 367 ms a chip, 19 ms reduced; bench/face_networks.py), while the
# result is 150-160 px. FaceNet's crops stay deepface's own, from the full region.
ALIGN_REGION_SCALE = 2
# Around a face, this many box sides of the photo are handed to dlib: its chip (the face and a quarter around it,
# turned level) always lies inside, so the result is the full photo's, at the cost of a small crop.
DLIB_REGION_MARGIN = 1.0
MTCNN_NETWORKS = ("pnet", "rnet", "onet")  # in the order of mtcnn's stages
LITE_SIGNATURE = "serving_default"
# R-Net and O-Net crops per run: the largest batch an interpreter is kept for (R-Net's tensors for 256 crops take
# ~30 MB); more crops go in several runs, at no measurable cost.
LITE_MAX_BATCH = 256
# Interpreters kept per network, the least recently used dropped first: three photo sizes' pyramids (~35 MB each at
# the largest level), or all nine batch sizes of R-Net and O-Net.
LITE_INTERPRETERS = 36
# Both cores for each network: the decode thread runs while the main thread is in Python, between network calls.
LITE_THREADS = os.cpu_count() or 1
FACENET_INPUT_SIDE = 160
EMBEDDING_SIZE = 128
# A face drawn by hand or read from another tool's region has no landmarks: its eyes, nose and mouth are taken where
# they sit in an upright face's box (fractions of its width and height), eyes level. dlib's chips find their own
# landmarks in the box; FaceNet's crop and the sharpness measure are then cut from the box unturned.
# A face given from outside the detector (drawn, or another tool's region) smaller than this (pixels, either side)
# is too little of a face to embed: it is refused, or the region names no face.
MIN_GIVEN_FACE_SIDE = 16
BOX_LANDMARKS = {
    "left_eye": (0.3, 0.4), "right_eye": (0.7, 0.4), "nose": (0.5, 0.6),
    "mouth_left": (0.35, 0.8), "mouth_right": (0.65, 0.8),
}
# Larger batches gain nothing on 2 cores and cost memory (a 160 x 160 x 3 float32 face is 300 KB).
EMBED_BATCH_SIZE = 32
LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
# Sharpness is measured inside the face, away from the black corners rotation and padding add to the crop.
SHARPNESS_MARGIN = FACENET_INPUT_SIDE // 4
# The detection copy is first shrunk by an integer box filter down to at most this multiple of its target, then
# resampled bicubically: nearly the quality of a bicubic resize of the full photo at a quarter of its cost.
REDUCING_GAP = 2
# Photos decoded ahead of the detector: enough that the detector never waits for a decode, and each holds its reduced
# decode (9 MB for 12 MP).
DECODE_AHEAD = 2


@dataclass(frozen=True)
class DetectorSettings:
    """Everything that decides which faces are found; hashed into `FaceAnalyzer.model_version`.

    Stage thresholds, scale factor and minimum face size are the reference's; `bench/faces.py --calibrate` measured
    the other two. The reference kept faces above 0.99 confidence, but mtcnn 1.0.0 scores faces lower than the
    release it ran: at 0.99 it misses 40% of the labelled portraits of the deepface test set and 8% of the faces
    of the LFW development set. Above 0.85 it misses none of either, nor of the faces pasted into generated 12 MP
    photos, and finds nothing away from them.
    """

    min_face_size: int = 20  # pixels of the detection copy, not of the photo
    threshold_pnet: float = 0.6
    threshold_rnet: float = 0.7
    threshold_onet: float = 0.7
    scale_factor: float = 0.709
    min_confidence: float = 0.85
    # On a 12 MP photo, 1,024 finds every face from 50 px up, 768 from 70 px, 1,280 from 40 px; detection time grows
    # with the pixels (~1.8x from 768 to 1,024). Below 50 px FaceNet gets too little of a face to recognise it.
    detect_max_side: int = 1024

    def digest(self) -> str:
        """A short stable hash of the settings, for data versioning."""
        text = json.dumps(dataclasses.asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Face:
    """One detected face in full-size, orientation-corrected pixels.

    Landmarks keep MTCNN's names, which are the viewer's: "left_eye" is the eye on the left of the image (the
    person's right eye). deepface names them the other way round.
    """

    x: int
    y: int
    width: int
    height: int
    confidence: float
    landmarks: dict[str, tuple[float, float]] = field(hash=False)

    @property
    def size(self) -> int:
        """The shorter side of the box: the resolution the face really has."""
        return min(self.width, self.height)

    @property
    def eye_distance(self) -> float:
        (left_x, left_y), (right_x, right_y) = self.landmarks["left_eye"], self.landmarks["right_eye"]
        return math.hypot(right_x - left_x, right_y - left_y)

    @property
    def eye_ratio(self) -> float:
        """Eye distance over box width: ~0.4-0.5 for a frontal face, falling towards 0 as the head turns to profile."""
        return self.eye_distance / self.width if self.width else 0.0


@dataclass(frozen=True)
class PhotoFaces:
    """The faces of one photo, with one embedding and one sharpness figure per face, in the same order."""

    width: int  # of the oriented photo, the frame the boxes are in
    height: int
    faces: tuple[Face, ...]
    embeddings: np.ndarray  # (len(faces), 128) float32, the descriptor's raw output (not normalised)
    sharpness: np.ndarray  # (len(faces),) float32: variance of the Laplacian inside the eye-levelled 160 px face
    crops: tuple[bytes, ...] = ()  # a JPEG of each face with some context around it (contact_sheet.face_crop)


@dataclass(frozen=True)
class _Decoded:
    """A photo as the detector takes it: decoded at reduced scale, and shrunk to the detection copy."""

    reduced: Image.Image  # oriented, at the JPEG scale open_reduced picked
    full_size: tuple[int, int]  # the oriented photo's size at full scale
    detection_copy: Image.Image

    @property
    def scale(self) -> float:
        return self.reduced.width / self.full_size[0]


@dataclass(frozen=True)
class _Detected:
    """A photo whose faces are found, waiting for its full-size decode (None when it has no faces) to be aligned."""

    decoded: _Decoded
    faces: list[Face]
    full_decode: Future[Image.Image] | None


def face_in_box(x: int, y: int, width: int, height: int) -> Face:
    """A face at a box given from outside the detector (drawn by the user, or another tool's region)."""
    landmarks = {name: (x + fx * width, y + fy * height) for name, (fx, fy) in BOX_LANDMARKS.items()}
    return Face(x, y, width, height, float("nan"), landmarks)


def face_id(photo_id: str, face: Face) -> str:
    """A stable id for a face: the photo's content hash and the box, so a re-run finds the same face again."""
    key = f"{photo_id}/{face.x},{face.y},{face.width},{face.height}"
    return hashlib.sha256(key.encode()).hexdigest()[:20]


@dataclass(frozen=True)
class FaceNetworks:
    """The folder of the converted networks (NETWORK_FILES) and the landmark predictor, the descriptor in use, and
    the sha256 of the weights file its network was converted from, which names it in the model version (MTCNN's
    weights are named by mtcnn's version)."""

    directory: Path
    weights_sha256: str
    descriptor: Descriptor = Descriptor.DLIB

    def path(self, network: str) -> Path:
        return self.directory / NETWORK_FILES[network]

    @property
    def shape_predictor(self) -> Path:
        return self.directory / SHAPE_PREDICTOR_FILE


def model_version(settings: DetectorSettings, descriptor: Descriptor, weights_sha256: str) -> str:
    """Names everything that shapes the output: detector and its settings, the descriptor and its weights, the
    alignment (deepface's for FaceNet, dlib's for dlib's ResNet)."""
    detector = f"{ALGORITHM_VERSION}/mtcnn-{importlib.metadata.version('mtcnn')}-{settings.digest()}"
    if descriptor is Descriptor.FACENET:
        return f"{detector}{FACENET_MARK}{weights_sha256[:12]}/deepface-{importlib.metadata.version('deepface')}"
    return f"{detector}/dlib-resnet-{weights_sha256[:12]}-mirrored/dlib-{importlib.metadata.version('dlib-bin')}"


class LiteNetwork:
    """One converted network on LiteRT's interpreter, its outputs in the order of the network it was converted from.

    An interpreter re-allocates its tensors for every new input shape, which costs about half a run of a small
    network; P-Net meets a new shape at every pyramid level, R-Net and O-Net a new number of crops at every photo.
    With `per_shape`, each shape gets an interpreter of its own, kept while it is among the LITE_INTERPRETERS last
    used: P-Net's shapes repeat from photo to photo (a library's photos come in a few sizes, each a pyramid of about
    eleven shapes), and a library of many sizes only costs the occasional allocation. With `batch_buckets` a batch
    goes in chunks of at most LITE_MAX_BATCH, each padded to the next power of two, so a few interpreters of bounded
    memory serve every number of crops (an interpreter keeps its tensors: one sized for the 8,000 crops P-Net may
    propose on a busy photo would hold GBs).
    FaceNet keeps one interpreter, resized when the batch size changes: its runs dwarf the allocation, and each
    interpreter holds its own copy of 90 MB of weights.
    """

    def __init__(self, path: Path, per_shape: bool = False, batch_buckets: bool = False, threads: int = LITE_THREADS):
        self._path = str(path)
        self._per_shape = per_shape
        self._batch_buckets = batch_buckets
        self._threads = threads
        self._runners: OrderedDict[tuple[int, ...] | None, tuple] = OrderedDict()

    def _runner(self, shape: tuple[int, ...]):
        key = shape if self._per_shape else None
        if key in self._runners:
            self._runners.move_to_end(key)
        else:
            if len(self._runners) >= LITE_INTERPRETERS:
                self._runners.popitem(last=False)
            from ai_edge_litert.interpreter import Interpreter

            interpreter = Interpreter(model_path=self._path, num_threads=self._threads)
            signature = interpreter.get_signature_list()[LITE_SIGNATURE]
            (input_name,) = signature["inputs"]
            # The converter names the outputs output_0, output_1, ... in the network's own order.
            outputs = sorted(signature["outputs"], key=lambda name: int(name.rpartition("_")[2]))
            self._runners[key] = (interpreter.get_signature_runner(LITE_SIGNATURE), input_name, outputs)
        return self._runners[key]

    def __call__(self, images) -> list[np.ndarray]:
        images = np.asarray(images, np.float32)
        if self._batch_buckets and len(images) > LITE_MAX_BATCH:
            chunks = [self(images[start : start + LITE_MAX_BATCH]) for start in range(0, len(images), LITE_MAX_BATCH)]
            return [np.concatenate(outputs) for outputs in zip(*chunks)]
        count = len(images)
        # XNNPACK cannot shape a batch of none: a blank image gives the outputs' shapes.
        padded = max(1, 1 << (count - 1).bit_length()) if self._batch_buckets else max(1, count)
        if padded != count:
            images = np.concatenate([images, np.zeros((padded - count, *images.shape[1:]), np.float32)])
        run, input_name, outputs = self._runner(images.shape)
        results = run(**{input_name: images})
        return [results[name][:count] for name in outputs]


@functools.cache
def _cascade(networks: FaceNetworks):
    """MTCNN's detection (face_cascade.detect) on the LiteRT conversions of its three networks."""
    from photo_assets.analysis import face_cascade

    # R-Net and O-Net take crops in batches of any size; P-Net one pyramid level of one photo at a time.
    return functools.partial(
        face_cascade.detect,
        *(LiteNetwork(networks.path(name), per_shape=True, batch_buckets=name != "pnet") for name in MTCNN_NETWORKS),
    )


@functools.cache
def _descriptor_network(path: Path) -> LiteNetwork:
    return LiteNetwork(path)


@functools.cache
def _shape_predictor(path: Path):
    import dlib

    return dlib.shape_predictor(str(path))


def dlib_chips(image: Image.Image, faces: list[Face], shape_predictor: Path) -> np.ndarray:
    """(n, 150, 150, 3) uint8 RGB: each face as dlib's face recognition takes it, its 5-point landmarks found in the
    detector's box and the chip cut level by `dlib.get_face_chip`. Only a region around the face is handed to dlib
    (beyond the photo, black, as dlib fills it)."""
    import dlib

    predictor = _shape_predictor(shape_predictor)
    chips = np.zeros((len(faces), DLIB_CHIP_SIDE, DLIB_CHIP_SIDE, 3), np.uint8)
    for index, face in enumerate(faces):
        margin = round(DLIB_REGION_MARGIN * max(face.width, face.height))
        region, factor = _reduced_region(image, face, margin, margin, DLIB_CHIP_SIDE)
        left, top = margin // factor, margin // factor
        box = dlib.rectangle(left, top, left + face.width // factor - 1, top + face.height // factor - 1)
        pixels = np.asarray(region.convert("RGB"))
        chips[index] = dlib.get_face_chip(pixels, predictor(pixels, box), size=DLIB_CHIP_SIDE,
                                          padding=DLIB_CHIP_PADDING)
    return chips


def _reduced_region(image: Image.Image, face: Face, margin_x: int, margin_y: int, side: int | None):
    """The face's box with the margins around it (black beyond the photo), reduced by the whole factor that brings
    the face to at most ALIGN_REGION_SCALE times `side` (None: not reduced); returns the region and the factor."""
    box = (face.x - margin_x, face.y - margin_y, face.x + face.width + margin_x, face.y + face.height + margin_y)
    factor = 1 if side is None else max(1, max(face.width, face.height) // (ALIGN_REGION_SCALE * side))
    if factor == 1:
        return image.crop(box), 1
    # Only the part inside the photo is reduced (a large face's margins reach far beyond it), then placed on black.
    inside = (max(box[0], 0), max(box[1], 0), min(box[2], image.width), min(box[3], image.height))
    region = Image.new(image.mode, (-(-(box[2] - box[0]) // factor), -(-(box[3] - box[1]) // factor)))
    if inside[0] < inside[2] and inside[1] < inside[3]:
        region.paste(image.reduce(factor, inside), ((inside[0] - box[0]) // factor, (inside[1] - box[1]) // factor))
    return region, factor


def _detection_size(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    """The detection copy's size for a photo of `size`: long side at most max_side, each side rounded."""
    width, height = size
    if max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _detection_copy(image: Image.Image, max_side: int, full_size: tuple[int, int] | None = None) -> Image.Image:
    """`image` (the photo, or a reduced decode of it whose full size is `full_size`) at the detection copy's size."""
    size = _detection_size(full_size or image.size, max_side)
    if image.size == size:
        return image
    return image.resize(size, Image.Resampling.BICUBIC, reducing_gap=REDUCING_GAP)


def _sharpness(face: np.ndarray) -> float:
    import cv2

    grey = cv2.cvtColor(face, cv2.COLOR_RGB2GRAY)
    inner = grey[SHARPNESS_MARGIN:-SHARPNESS_MARGIN, SHARPNESS_MARGIN:-SHARPNESS_MARGIN]
    return float(cv2.Laplacian(inner * 255.0, cv2.CV_32F).var())


class FaceAnalyzer:
    """Detects, aligns and embeds faces; models load on first use and are shared by every analyser in a process."""

    def __init__(self, networks: FaceNetworks, settings: DetectorSettings = DetectorSettings()):
        self.networks = networks
        self.settings = settings

    @property
    def descriptor(self) -> Descriptor:
        return self.networks.descriptor

    @property
    def model_version(self) -> str:
        return model_version(self.settings, self.descriptor, self.networks.weights_sha256)

    def load(self) -> None:
        """Load the networks now rather than on the first photo."""
        self._network()
        if self.descriptor is Descriptor.DLIB:
            _shape_predictor(self.networks.shape_predictor)
        _cascade(self.networks)

    def _network(self) -> LiteNetwork:
        network = "dlib_resnet" if self.descriptor is Descriptor.DLIB else "facenet"
        return _descriptor_network(self.networks.path(network))

    def detect(self, image: Image.Image, full_size: tuple[int, int] | None = None) -> list[Face]:
        """Faces of an oriented RGB photo above `min_confidence`, most confident first, in the photo's pixels.

        `image` is the photo, or a reduced decode of it (`open_reduced`) when `full_size` gives the photo's size:
        either way the detection copy has the same size, and boxes come back in the full-size photo's pixels.
        """
        small = _detection_copy(image, self.settings.detect_max_side, full_size)
        return self._detect_in_copy(small, full_size or image.size)

    def _detect_in_copy(self, small: Image.Image, full_size: tuple[int, int]) -> list[Face]:
        settings = self.settings
        full_width, full_height = full_size
        if min(small.size) < settings.min_face_size:
            return []
        rows = _cascade(self.networks)(
            np.asarray(small, np.float32),
            min_face_size=settings.min_face_size,
            threshold_pnet=settings.threshold_pnet,
            threshold_rnet=settings.threshold_rnet,
            threshold_onet=settings.threshold_onet,
            scale_factor=settings.scale_factor,
        )
        scale_x, scale_y = full_width / small.width, full_height / small.height
        faces = []
        # Columns: x1, y1, x2, y2, confidence, the five landmark xs, then the five ys.
        for row in rows[rows[:, 4] > settings.min_confidence]:
            x1, y1, x2, y2 = row[0] * scale_x, row[1] * scale_y, row[2] * scale_x, row[3] * scale_y
            landmarks = {
                name: (float(row[5 + index] * scale_x), float(row[10 + index] * scale_y))
                for index, name in enumerate(LANDMARK_NAMES)
            }
            x, y = round(x1), round(y1)
            faces.append(Face(x, y, round(x2) - x, round(y2) - y, float(row[4]), landmarks))
        return sorted(faces, key=lambda face: -face.confidence)

    def aligned_crops(self, image: Image.Image, faces: list[Face], reduce_regions: bool = False) -> np.ndarray:
        """(n, 160, 160, 3) float32 RGB in 0..1: each face aligned and cropped exactly as deepface does it (with
        `reduce_regions`, from a region reduced first: the same but for resampling, far faster for large faces)."""
        from deepface.modules.detection import align_img_wrt_eyes, project_facial_area
        from deepface.modules.preprocessing import resize_image

        crops = np.zeros((len(faces), FACENET_INPUT_SIDE, FACENET_INPUT_SIDE, 3), np.float32)
        for index, face in enumerate(faces):
            # deepface's extract_sub_image: half the box on each side so the rotation keeps the face; Pillow fills
            # what lies beyond the photo with black, as deepface's border does.
            margin_x, margin_y = int(0.5 * face.width), int(0.5 * face.height)
            region, factor = _reduced_region(image, face, margin_x, margin_y,
                                             FACENET_INPUT_SIDE if reduce_regions else None)
            # deepface's eyes are the person's: its left eye is MTCNN's "right_eye". Only the angle between them
            # counts, which the reduction keeps.
            rotated, angle = align_img_wrt_eyes(
                np.asarray(region), left_eye=face.landmarks["right_eye"], right_eye=face.landmarks["left_eye"]
            )
            box = (margin_x, margin_y, margin_x + face.width, margin_y + face.height)
            left, top, right, bottom = project_facial_area(
                tuple(value // factor for value in box), angle, rotated.shape[:2]
            )
            aligned = rotated[top:bottom, left:right] / 255.0
            if aligned.size:
                crops[index] = resize_image(aligned, (FACENET_INPUT_SIDE, FACENET_INPUT_SIDE))[0]
        return crops

    def descriptor_inputs(self, image: Image.Image, faces: list[Face], aligned: np.ndarray) -> np.ndarray:
        """What the descriptor's network takes for these faces: the eye-levelled crops (FaceNet) or dlib's chips."""
        if self.descriptor is Descriptor.FACENET:
            return aligned
        return dlib_chips(image, faces, self.networks.shape_predictor)

    def _no_inputs(self) -> np.ndarray:
        side = FACENET_INPUT_SIDE if self.descriptor is Descriptor.FACENET else DLIB_CHIP_SIDE
        return np.zeros((0, side, side, 3), np.float32)

    def embed(self, inputs: np.ndarray, batch_size: int = EMBED_BATCH_SIZE) -> np.ndarray:
        """(n, 128) float32 raw descriptors of `descriptor_inputs`, fed to the network in batches of equal size."""
        if not len(inputs):
            return np.zeros((0, EMBEDDING_SIZE), np.float32)
        network = self._network()
        # Equal batches: 33 faces go as 17 + 16, not as 32 and a lone face at the full cost of a batch.
        batches = np.array_split(inputs, math.ceil(len(inputs) / batch_size))
        if self.descriptor is Descriptor.FACENET:
            # deepface hands FaceNet BGR in 0..1 (its faces come from OpenCV); the thresholds published for it, the
            # reference's included, were measured on that input, so it is what we feed.
            return np.concatenate([network(np.ascontiguousarray(b[..., ::-1]))[0] for b in batches]).astype(np.float32)
        # dlib's chips and their mirror images in one run; the descriptor is the sum of the two (RGB in 0..255).
        return np.concatenate([self._mirrored(network, batch) for batch in batches]).astype(np.float32)

    @staticmethod
    def _mirrored(network: LiteNetwork, chips: np.ndarray) -> np.ndarray:
        (both,) = network(np.concatenate([chips, chips[:, :, ::-1]]).astype(np.float32))
        return both[: len(chips)] + both[len(chips) :]

    def faces_in_boxes(self, path: Path, faces: list[Face]) -> PhotoFaces | PhotoError:
        """Faces at boxes given (face_in_box), embedded as found faces are, with their sharpness and crops."""
        try:
            image = open_oriented(path)
        except PhotoError as error:
            return error
        aligned = self.aligned_crops(image, faces, reduce_regions=self.descriptor is Descriptor.DLIB)
        embeddings = self.embed(self.descriptor_inputs(image, faces, aligned))
        sharpness = np.array([_sharpness(crop) for crop in aligned], np.float32)
        crops = tuple(jpeg_bytes(face_crop(image, (face.x, face.y, face.width, face.height), 1.0)) for face in faces)
        return PhotoFaces(image.width, image.height, tuple(faces), embeddings, sharpness, crops)

    def analyse(
        self, photos: Iterable[tuple[str, Path]], batch_size: int = EMBED_BATCH_SIZE,
        on_decoded: Callable[[str, Image.Image, tuple[int, int]], None] | None = None,
    ) -> Iterator[tuple[str, PhotoFaces | PhotoError]]:
        """(photo_id, PhotoFaces or PhotoError) for each photo, in order; one bad photo never stops the rest.

        One photo is decoded at a time and dropped once its faces are cut out, so memory holds one photo plus the
        aligned faces waiting for a batch: `batch_size` of them, and the faces of the photo that filled the batch.
        `on_decoded(photo_id, reduced decode, full size)` is handed each photo's reduced decode in the decode thread,
        right after the decode (another analysis, objects, shares it instead of making its own, and its work
        overlaps the face detector's); it is called for one photo at a time, in order.
        """
        pending: list[tuple[str, PhotoFaces | PhotoError]] = []
        crops: list[np.ndarray] = []
        for photo_id, found, photo_crops in self._scanned(photos, on_decoded):
            pending.append((photo_id, found))
            crops.append(photo_crops)
            if sum(map(len, crops)) >= batch_size:
                yield from self._with_embeddings(pending, crops, batch_size)
                pending, crops = [], []
        yield from self._with_embeddings(pending, crops, batch_size)

    def _scanned(
        self, photos: Iterable[tuple[str, Path]], on_decoded=None
    ) -> Iterator[tuple[str, PhotoFaces | PhotoError, np.ndarray]]:
        """(photo_id, its faces with embeddings still empty or its error, their aligned crops), in order. A photo is
        aligned after the next one's faces are found, so that its full-size decode has run meanwhile."""
        with ThreadPoolExecutor(1, thread_name_prefix="photo-decode") as decoder:
            previous = None
            for photo_id, path, decode in self._decoded_ahead(photos, decoder, on_decoded):
                current = (photo_id, self._detected(path, decode, decoder))
                if previous:
                    yield self._aligned(*previous)
                previous = current
            if previous:
                yield self._aligned(*previous)

    def _decoded_ahead(
        self, photos: Iterable[tuple[str, Path]], decoder: ThreadPoolExecutor, on_decoded=None
    ) -> Iterator[tuple[str, Path, Future[_Decoded]]]:
        """(photo_id, path, its reduced decode) in order, with up to DECODE_AHEAD more photos decoding meanwhile."""
        waiting: deque = deque()
        for photo_id, path in photos:
            waiting.append((photo_id, path, decoder.submit(self._decode, path, photo_id, on_decoded)))
            if len(waiting) > DECODE_AHEAD:
                yield waiting.popleft()
        yield from waiting

    def _decode(self, path: Path, photo_id: str = "", on_decoded=None) -> _Decoded:
        reduced, full_size = open_reduced(path, self.settings.detect_max_side)
        if on_decoded is not None:
            on_decoded(photo_id, reduced, full_size)
        return _Decoded(reduced, full_size, _detection_copy(reduced, self.settings.detect_max_side, full_size))

    def _detected(self, path: Path, decode: Future[_Decoded], decoder: ThreadPoolExecutor) -> _Detected | PhotoError:
        """The photo's faces, its full-size decode started if it has any."""
        try:
            decoded = decode.result()
        except PhotoError as error:
            return error
        faces = self._detect_in_copy(decoded.detection_copy, decoded.full_size)
        return _Detected(decoded, faces, decoder.submit(open_oriented, path) if faces else None)

    def _aligned(
        self, photo_id: str, detected: _Detected | PhotoError
    ) -> tuple[str, PhotoFaces | PhotoError, np.ndarray]:
        crops = aligned = self._no_inputs()
        if isinstance(detected, PhotoError):
            return photo_id, detected, crops
        decoded, faces = detected.decoded, detected.faces
        width, height = decoded.full_size
        if detected.full_decode:
            try:
                image = detected.full_decode.result()
            except PhotoError as error:
                return photo_id, error, crops
            if image.size != (width, height):  # cannot happen for a file that did not change meanwhile
                return photo_id, PhotoError("corrupt", f"decoded as {image.size}, expected {(width, height)}"), crops
            aligned = self.aligned_crops(image, faces, reduce_regions=self.descriptor is Descriptor.DLIB)
            crops = self.descriptor_inputs(image, faces, aligned)
        sharpness = np.array([_sharpness(crop) for crop in aligned], np.float32)
        thumbnails = tuple(
            jpeg_bytes(face_crop(decoded.reduced, (face.x, face.y, face.width, face.height), decoded.scale))
            for face in faces
        )
        empty = np.zeros((0, EMBEDDING_SIZE), np.float32)
        return photo_id, PhotoFaces(width, height, tuple(faces), empty, sharpness, thumbnails), crops

    def _with_embeddings(
        self, pending: list[tuple[str, PhotoFaces | PhotoError]], crops: list[np.ndarray], batch_size: int
    ) -> Iterator[tuple[str, PhotoFaces | PhotoError]]:
        embeddings = self.embed(np.concatenate(crops) if crops else np.zeros((0,)), batch_size)
        start = 0
        for photo_id, result in pending:
            if isinstance(result, PhotoFaces):
                count = len(result.faces)
                result = dataclasses.replace(result, embeddings=embeddings[start : start + count])
                start += count
            yield photo_id, result
