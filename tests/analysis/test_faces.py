"""Faces on real photos with the real models: detection, EXIF orientation, deepface equivalence, identity, memory."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter
from skimage import data as skimage_data

from photo_assets import models, network_conversion
from photo_assets.analysis import faces as faces_module
from photo_assets.analysis.contact_sheet import CROP_SIDE, face_crop
from photo_assets.analysis.descriptors import Descriptor, descriptor_of
from photo_assets.analysis.faces import EMBEDDING_SIZE, FaceAnalyzer, PhotoFaces, face_id
from photo_assets.analysis.images import EXIF_ORIENTATION, PhotoError, open_oriented, open_reduced
from photo_assets.analysis.regions import overlap
from photo_assets.settings import Settings

MIN_AUC = 0.99
# Re-encoding turned pixels as JPEG moves MTCNN's box and landmarks by a few pixels of the detection copy: up to ~1%
# of the face's height on couple.jpg from a full decode. From the reduced (draft) decode detection reads, the left
# face of couple.jpg stored sideways lands between two boxes MTCNN hesitates between (IoU 0.90 with the upright
# photo's; a bilinear half-size copy of it gives the other box). A box in the wrong frame would not overlap at all.
ORIENTED_BOX_IOU = 0.85
LANDMARK_TOLERANCE = 0.04
# The reduced decode against the full decode it replaced (issue 12): boxes of the same faces overlap at least this.
REDUCED_DECODE_BOX_IOU = 0.9
# The same crops through the network one by one (deepface) or in a batch (us): equal but for float rounding.
DEEPFACE_EMBEDDING_TOLERANCE = 1e-3
# LiteRT's XNNPACK kernels against TensorFlow's: float rounding only. Embeddings, as a share of their largest
# component (measured: 1e-4); boxes and landmarks, in pixels of the detection copy, and confidences (measured: 1e-4).
LITERT_TOLERANCE = 1e-3
# Our cascade on LiteRT against mtcnn's on Keras, in pixels of photos up to 2,000 px (measured: 0.014 px) and in
# confidence: float32 rounding, a twentieth of a pixel at most.
CASCADE_TOLERANCE = 5e-2
# dlib's ResNet on LiteRT against dlib's own: float rounding only.
DLIB_MIN_COSINE = 0.9999
# The reference's (and deepface's) same-person threshold on raw FaceNet-128 distances.
REFERENCE_SAME_PERSON_DISTANCE = 10.0
# One face re-encoded or turned moves its embedding by ~1-2 (box jitter) from a full decode, 3.5 for couple.jpg's left
# face from the reduced decode (the box between two, above); photos of one person are ~7.5 apart.
SAME_FACE_DISTANCE = 4.0
PEAK_RSS_LIMIT_BYTES = 3 * 1024**3
# A 40 MP photo (the largest sensors in phones) with a 1200 x 800 portrait pasted in: a ~270 px face.
LARGE_PHOTO_SIZE = (7300, 5500)
PHONE_PHOTO_SIZE = (4000, 3000)
# Mean absolute difference, in 0..255 levels, between a face crop cut from the reduced decode and the same crop cut
# from the full-size photo: JPEG's scaled decode and re-encoding differ by a few levels; another region, by dozens.
CROP_MEAN_DIFFERENCE = 6.0


@pytest.fixture(scope="session")
def analyzer() -> FaceAnalyzer:
    """The default analyser: MTCNN and dlib's ResNet."""
    analyzer = models.face_analyzer(Settings.from_env().models_dir)
    analyzer.load()
    return analyzer


@pytest.fixture(scope="session")
def facenet_analyzer() -> FaceAnalyzer:
    """MTCNN and FaceNet-128, the reference design's descriptor, still selectable."""
    analyzer = models.face_analyzer(Settings.from_env().models_dir, descriptor=Descriptor.FACENET)
    analyzer.load()
    return analyzer


@pytest.fixture(scope="module")
def deepface_dir(shared_dir: Path) -> Path:
    return shared_dir / "faces" / "deepface"


@pytest.fixture(scope="module")
def identities(deepface_dir: Path) -> dict[str, list[str]]:
    return json.loads((deepface_dir / "identities.json").read_text())


@pytest.fixture(scope="module", params=list(Descriptor))
def identity_results(request, deepface_dir: Path, identities) -> dict[str, PhotoFaces]:
    """Every deepface photo analysed, with each descriptor."""
    analyzer = models.face_analyzer(Settings.from_env().models_dir, descriptor=request.param)
    names = sorted({name for photos in identities.values() for name in photos})
    results = dict(analyzer.analyse((name, deepface_dir / name) for name in names))
    assert all(isinstance(result, PhotoFaces) for result in results.values())
    return results


def _iou(face, other) -> float:
    return overlap((face.x, face.y, face.width, face.height), (other.x, other.y, other.width, other.height))


def _auc(positives: np.ndarray, negatives: np.ndarray) -> float:
    """Probability that a random same-person distance is below a random different-person one (ties count half)."""
    below = (positives[:, None] < negatives[None, :]).sum()
    ties = (positives[:, None] == negatives[None, :]).sum()
    return float((below + 0.5 * ties) / (len(positives) * len(negatives)))


def test_facenet_holds_the_fetched_weights(analyzer: FaceAnalyzer):
    """Keras loads the full-model file into deepface's architecture layer by layer, in order: every tensor arrives."""
    import h5py

    weights_path = models.verify_weights(Settings.from_env().models_dir, models.FACENET)
    network = network_conversion.keras_facenet(weights_path)
    network_weights = [weights for layer in network.layers for weights in layer.get_weights()]
    with h5py.File(weights_path, "r") as weights_file:
        group = weights_file["model_weights"]
        layers = [group[name] for name in group.attrs["layer_names"]]
        stored = [layer[name][()] for layer in layers for name in layer.attrs["weight_names"]]
    assert len(network_weights) == len(stored)
    for loaded, expected in zip(network_weights, stored):
        np.testing.assert_array_equal(loaded, expected)


def test_facenet_on_litert_gives_the_keras_networks_embeddings(facenet_analyzer: FaceAnalyzer, deepface_dir: Path):
    """The converted FaceNet the analysis runs, against deepface's Keras FaceNet holding the fetched weights, on
    aligned faces of real photos: the same embeddings within float rounding."""
    keras_facenet = network_conversion.keras_facenet(models.verify_weights(Settings.from_env().models_dir, models.FACENET))
    image = open_oriented(deepface_dir / "img1.jpg")
    crops = facenet_analyzer.aligned_crops(image, facenet_analyzer.detect(image))
    expected = keras_facenet(np.ascontiguousarray(crops[..., ::-1]), training=False).numpy()
    np.testing.assert_allclose(facenet_analyzer.embed(crops), expected, atol=LITERT_TOLERANCE * np.abs(expected).max())


def test_dlib_resnet_on_litert_gives_dlibs_own_descriptors(analyzer: FaceAnalyzer, deepface_dir: Path):
    """The converted ResNet the analysis runs, against dlib's own network (dlib-bin, the fetched weights file) on the
    same chips of real faces, each plus its mirror image: the same descriptors, cosine at least DLIB_MIN_COSINE."""
    import dlib

    reference = dlib.face_recognition_model_v1(str(models.DLIB_RESNET.path(Settings.from_env().models_dir)))
    chips = []
    for name in ("img1.jpg", "couple.jpg", "img22.jpg", "selfie-many-people.jpg"):
        image = open_oriented(deepface_dir / name)
        chips.append(analyzer.descriptor_inputs(image, analyzer.detect(image), np.zeros(0)))
    chips = np.concatenate(chips)
    assert chips.shape[1:] == (150, 150, 3) and len(chips) >= 6
    ours = analyzer.embed(chips)
    theirs = np.array([np.add(reference.compute_face_descriptor(chip),
                              reference.compute_face_descriptor(np.ascontiguousarray(chip[:, ::-1])))
                       for chip in chips])  # fmt: skip
    cosine = (ours * theirs).sum(axis=1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(theirs, axis=1)
    assert cosine.min() >= DLIB_MIN_COSINE


def test_the_descriptor_names_the_model_version(analyzer: FaceAnalyzer, facenet_analyzer: FaceAnalyzer):
    """Embeddings record the descriptor that made them: a switch re-embeds and never mixes the two."""
    assert "/dlib-resnet-" in analyzer.model_version and descriptor_of(analyzer.model_version) is Descriptor.DLIB
    assert descriptor_of(facenet_analyzer.model_version) is Descriptor.FACENET
    assert analyzer.model_version != facenet_analyzer.model_version


@pytest.mark.parametrize("damage", ["missing", "truncated", "other source"])
def test_damaged_networks_raise_the_setup_error(tmp_path: Path, damage: str):
    """A folder of networks that is not what the setup step made is refused with the setup command, never run."""
    models_dir = Settings.from_env().models_dir
    copied = tmp_path / "models"
    shutil.copytree(models_dir, copied)
    directory = models.networks_dir(copied)
    if damage == "missing":
        (directory / faces_module.NETWORK_FILES["rnet"]).unlink()
    elif damage == "truncated":
        onet = directory / faces_module.NETWORK_FILES["onet"]
        onet.write_bytes(onet.read_bytes()[:1000])
    else:
        manifest = json.loads((directory / models.NETWORKS_MANIFEST).read_text())
        manifest["source"]["tensorflow"] = "0.0.1"
        (directory / models.NETWORKS_MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(models.WeightsMissingError, match=re.escape(models.SETUP_COMMAND)):
        models.face_analyzer(copied)


def test_missing_weights_raise_the_setup_error_without_downloading(tmp_path: Path):
    script = textwrap.dedent(
        """
        import sys
        from photo_assets.models import WeightsMissingError, face_analyzer
        from photo_assets.settings import Settings
        try:
            face_analyzer(Settings.from_env().models_dir).load()
        except WeightsMissingError as error:
            print(error)
            sys.exit(0)
        sys.exit("loaded without weights")
        """
    )
    environment = {"PHOTO_ASSETS_MODELS": str(tmp_path), "PATH": ""}
    done = subprocess.run([sys.executable, "-c", script], env=environment, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert models.SETUP_COMMAND in done.stdout
    assert not any(tmp_path.rglob("*.h5"))


def test_importing_the_module_does_not_import_tensorflow():
    script = "import sys, photo_assets.analysis.faces; sys.exit('tensorflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", script]).returncode == 0


def test_analysing_photos_does_not_import_tensorflow(deepface_dir: Path):
    """Detection and embedding run on LiteRT and NumPy alone: importing TensorFlow cost every face step 2.4 s (5 s
    where bytecode is not compiled; bench/face_networks.py)."""
    script = (
        "import sys; from pathlib import Path; from photo_assets.models import face_analyzer;"
        "from photo_assets.settings import Settings;"
        "analyzer = face_analyzer(Settings.from_env().models_dir);"
        f"((_, found),) = analyzer.analyse([('couple', Path({str(deepface_dir / 'couple.jpg')!r}))]);"
        "print(len(found.faces), 'tensorflow' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-2:] == ["2", "False"]


def test_a_face_is_found_in_every_identity_photo(identity_results):
    faceless = [name for name, result in identity_results.items() if not result.faces]
    assert not faceless


def test_same_person_is_closer_than_different_people(identity_results, identities):
    # The most confident face of each photo is the labelled person's: each photo is a portrait of them.
    people, vectors = [], []
    for person, names in identities.items():
        for name in names:
            people.append(person)
            vectors.append(identity_results[name].embeddings[0])
    vectors = np.array(vectors)
    assert vectors.shape[1] == EMBEDDING_SIZE and vectors.dtype == np.float32
    distances = np.linalg.norm(vectors[:, None, :] - vectors[None, :, :], axis=-1)
    same = np.array(people)[:, None] == np.array(people)[None, :]
    upper = np.triu(np.ones_like(same), k=1)
    auc = _auc(distances[same & upper], distances[~same & upper])
    print(f"same-person vs different-person ROC AUC: {auc:.4f} over {int(upper.sum())} pairs")
    assert auc >= MIN_AUC


def test_several_faces_in_one_photo(facenet_analyzer: FaceAnalyzer, deepface_dir: Path):
    analyzer = facenet_analyzer  # the reference's same-person distance is FaceNet's
    names = ("couple.jpg", "selfie-many-people.jpg")
    results = dict(analyzer.analyse([(name, deepface_dir / name) for name in names]))
    couple, selfie = results["couple.jpg"], results["selfie-many-people.jpg"]
    assert len(couple.faces) == 2
    assert len(selfie.faces) >= 4
    assert couple.embeddings.shape == (2, EMBEDDING_SIZE)
    assert np.linalg.norm(couple.embeddings[0] - couple.embeddings[1]) > REFERENCE_SAME_PERSON_DISTANCE
    ids = [face_id(name, face) for name in names for face in results[name].faces]
    assert len(set(ids)) == len(ids)
    # Deterministic: the same photo gives the same boxes, so the same face ids, run after run.
    ((_, again),) = analyzer.analyse([("couple.jpg", deepface_dir / "couple.jpg")])
    assert [face_id("couple.jpg", face) for face in again.faces] == ids[: len(couple.faces)]


def test_quality_signals(analyzer: FaceAnalyzer, deepface_dir: Path, tmp_path: Path):
    blurred = tmp_path / "blurred.png"
    Image.open(deepface_dir / "img22.jpg").filter(ImageFilter.GaussianBlur(3)).save(blurred)
    results = dict(analyzer.analyse([("sharp", deepface_dir / "img22.jpg"), ("blurred", blurred)]))
    sharp, soft = results["sharp"], results["blurred"]
    assert sharp.faces and soft.faces
    assert soft.sharpness[0] < sharp.sharpness[0] / 2
    face = sharp.faces[0]
    assert face.size == min(face.width, face.height) > 100
    assert 0.3 < face.eye_ratio < 0.6  # a frontal face


@pytest.mark.parametrize(
    "picture",
    [
        pytest.param(lambda: Image.fromarray(skimage_data.coffee()), id="coffee"),
        pytest.param(lambda: Image.fromarray(skimage_data.chelsea()), id="cat"),
        pytest.param(
            lambda: Image.fromarray(np.linspace(0, 255, 1200 * 900 * 3).reshape(900, 1200, 3).astype(np.uint8)),
            id="gradient",
        ),
        pytest.param(lambda: Image.new("RGB", (8, 5), "white"), id="tiny"),
    ],
)
def test_photos_without_faces(analyzer: FaceAnalyzer, tmp_path: Path, picture):
    path = tmp_path / "photo.png"
    picture().save(path)
    ((_, result),) = analyzer.analyse([("photo", path)])
    assert result.faces == ()
    assert result.embeddings.shape == (0, EMBEDDING_SIZE)


@pytest.mark.parametrize("orientation, stored_turn", [(6, Image.Transpose.ROTATE_90), (8, Image.Transpose.ROTATE_270)])
def test_boxes_are_in_the_oriented_frame(
    facenet_analyzer: FaceAnalyzer, deepface_dir: Path, tmp_path: Path, orientation: int, stored_turn: Image.Transpose
):
    analyzer = facenet_analyzer  # SAME_FACE_DISTANCE is in raw FaceNet units
    upright = open_oriented(deepface_dir / "couple.jpg")
    upright_path, turned_path = tmp_path / "upright.jpg", tmp_path / "turned.jpg"
    upright.save(upright_path, quality=95)
    # Stored sideways with the tag that turns it back: the oriented view is the upright photo.
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    upright.transpose(stored_turn).save(turned_path, quality=95, exif=exif)
    assert open_oriented(turned_path).size == upright.size

    results = dict(analyzer.analyse([("upright", upright_path), ("turned", turned_path)]))
    expected, turned = results["upright"], results["turned"]
    assert (turned.width, turned.height) == upright.size
    assert len(turned.faces) == len(expected.faces) == 2
    for face, reference in zip(sorted(turned.faces, key=lambda f: f.x), sorted(expected.faces, key=lambda f: f.x)):
        # A box in the wrong frame would not overlap at all; the same frame overlaps but for MTCNN's jitter.
        assert _iou(face, reference) >= ORIENTED_BOX_IOU
        tolerance = LANDMARK_TOLERANCE * reference.height
        for name, point in face.landmarks.items():
            assert np.abs(np.subtract(point, reference.landmarks[name])).max() <= tolerance
    # The same face, whatever the frame: far closer than two photos of one person (median ~7.5 on this corpus).
    order, expected_order = np.argsort([f.x for f in turned.faces]), np.argsort([f.x for f in expected.faces])
    shift = np.linalg.norm(turned.embeddings[order] - expected.embeddings[expected_order], axis=1)
    assert shift.max() < SAME_FACE_DISTANCE


@pytest.mark.parametrize("name", ["couple.jpg", "selfie-many-people.jpg"])  # the selfie has a face on its edge
def test_alignment_and_embedding_equal_deepfaces(
    facenet_analyzer: FaceAnalyzer, deepface_dir: Path, name: str, monkeypatch: pytest.MonkeyPatch
):
    """deepface's own extract_face, resize and FaceNet forward, given our boxes, give our crops and embeddings."""
    analyzer = facenet_analyzer
    # deepface's own loader finds the same weights file where its home's layout has it (it never downloads then).
    monkeypatch.setenv("DEEPFACE_HOME", str(Settings.from_env().models_dir))
    import cv2
    from deepface.models.Detector import FacialAreaRegion
    from deepface.modules import modeling
    from deepface.modules.detection import extract_face
    from deepface.modules.preprocessing import resize_image

    image = open_oriented(deepface_dir / name)
    faces = analyzer.detect(image)
    crops = analyzer.aligned_crops(image, faces)
    ours = analyzer.embed(crops)
    # deepface's path: the BGR photo in a black border of half its size; its eyes are named as the person sees them.
    bgr = np.asarray(image)[:, :, ::-1]
    border_y, border_x = int(0.5 * bgr.shape[0]), int(0.5 * bgr.shape[1])
    bordered = cv2.copyMakeBorder(bgr, border_y, border_y, border_x, border_x, cv2.BORDER_CONSTANT, value=[0, 0, 0])
    shift = np.array([border_x, border_y])
    references = []
    for face in faces:
        region = FacialAreaRegion(
            x=face.x + border_x,
            y=face.y + border_y,
            w=face.width,
            h=face.height,
            left_eye=tuple(np.add(face.landmarks["right_eye"], shift)),
            right_eye=tuple(np.add(face.landmarks["left_eye"], shift)),
            confidence=face.confidence,
        )
        detected = extract_face(region, bordered, True, 0, border_x, border_y, "mtcnn")
        # represent() resizes the face scaled to 0..1, in BGR, and hands it to the model as it is.
        references.append(resize_image(detected.img / 255.0, (160, 160))[0])
    references = np.array(references)
    np.testing.assert_allclose(crops, references[..., ::-1], atol=1e-6)
    deepface_model = modeling.build_model(task="facial_recognition", model_name="Facenet")
    deepface_embeddings = np.array(deepface_model.forward(references)).reshape(ours.shape)
    assert np.abs(ours - deepface_embeddings).max() < DEEPFACE_EMBEDDING_TOLERANCE


def test_a_corrupt_photo_is_an_error_and_the_batch_goes_on(analyzer: FaceAnalyzer, deepface_dir: Path, tmp_path: Path):
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes((deepface_dir / "img1.jpg").read_bytes()[:20_000])
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"not a photo at all" * 100)
    photos = [
        ("first", deepface_dir / "img25.jpg"),
        ("truncated", truncated),
        ("garbage", garbage),
        ("missing", tmp_path / "missing.jpg"),
        ("last", deepface_dir / "img22.jpg"),
    ]
    results = list(analyzer.analyse(photos, batch_size=1))
    assert [photo_id for photo_id, _ in results] == [photo_id for photo_id, _ in photos]
    outcome = dict(results)
    failed = ("truncated", "garbage", "missing")
    assert all(isinstance(outcome[name], PhotoError) for name in failed)
    assert [outcome[name].kind for name in failed] == ["corrupt", "unsupported_format", "missing"]
    assert len(outcome["first"].faces) == 1 and len(outcome["last"].faces) >= 1


def test_a_40_megapixel_photo_stays_within_memory(deepface_dir: Path, tmp_path: Path):
    photo = tmp_path / "large.jpg"
    background = Image.fromarray(skimage_data.coffee()).resize(LARGE_PHOTO_SIZE, Image.Resampling.BILINEAR)
    background.paste(Image.open(deepface_dir / "img22.jpg"), (LARGE_PHOTO_SIZE[0] // 3, LARGE_PHOTO_SIZE[1] // 4))
    background.save(photo, quality=90)
    del background
    # A fresh process, so the peak measured is this photo's and not the rest of the test session's.
    script = textwrap.dedent(
        f"""
        import re
        from pathlib import Path
        from photo_assets.models import face_analyzer
        from photo_assets.settings import Settings
        ((_, result),) = face_analyzer(Settings.from_env().models_dir).analyse([("large", Path({str(photo)!r}))])
        # This process's peak: VmHWM starts anew at exec, where getrusage's ru_maxrss keeps the parent's.
        peak = int(re.search(r"VmHWM:\\s+(\\d+) kB", Path("/proc/self/status").read_text()).group(1)) * 1024
        print(len(result.faces), result.width, result.height, peak)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    found, width, height, peak = (int(value) for value in done.stdout.split()[-4:])
    print(f"40 MP photo: {found} face(s), peak RSS {peak / 1024**3:.2f} GiB")
    assert (width, height) == LARGE_PHOTO_SIZE
    assert found >= 1
    assert peak < PEAK_RSS_LIMIT_BYTES


def test_the_reduced_decode_finds_the_faces_the_full_decode_finds(analyzer: FaceAnalyzer, deepface_dir: Path):
    """Detection reads a draft-mode decode (issue 12): the same faces as from the full-size photo, boxes within
    REDUCED_DECODE_BOX_IOU, on every photo of the corpus large enough for the draft decode to apply (>= 2,048 px)."""
    large = [path for path in sorted(deepface_dir.glob("*.jpg")) if max(Image.open(path).size) >= 2048]
    assert len(large) >= 10
    for path in large:
        reduced, size = open_reduced(path, analyzer.settings.detect_max_side)
        assert max(reduced.size) < max(size)
        full = analyzer.detect(open_oriented(path))
        found = analyzer.detect(reduced, size)
        assert len(found) == len(full), path.name
        for face in full:
            assert max(_iou(face, other) for other in found) >= REDUCED_DECODE_BOX_IOU, path.name


def test_detector_gives_mtcnns_own_output(analyzer: FaceAnalyzer, deepface_dir: Path):
    """Our cascade on the LiteRT networks (issue 12) gives what mtcnn's own pipeline on its Keras networks gives,
    within float rounding, on photos with one, two and many faces, on one without, and on one too small to search."""
    from mtcnn import MTCNN

    keras = MTCNN()
    cascade = faces_module._cascade(analyzer.networks)
    names = ["img1.jpg", "couple.jpg", "selfie-many-people.jpg", "img22.jpg"]
    images = [np.asarray(open_oriented(deepface_dir / name), np.float32) for name in names]
    images.append(np.asarray(Image.fromarray(skimage_data.coffee()), np.float32))
    images.append(images[0][:40, :60])
    thresholds = {"threshold_pnet": 0.6, "threshold_rnet": 0.7, "threshold_onet": 0.7}
    options = {"min_face_size": 20, "scale_factor": 0.709, **thresholds}
    found_somewhere = 0
    for image in images:
        found = cascade(image, **options)
        expected = keras.detect_faces(image, box_format="xyxy", output_type="numpy", **options)
        # mtcnn's rows start with the image's index in its batch.
        expected = expected[:, 1:] if len(expected) else np.zeros((0, found.shape[1]))
        assert found.shape == expected.shape
        # Columns: box (x1, y1, x2, y2), confidence, landmarks.
        np.testing.assert_allclose(found, expected, atol=CASCADE_TOLERANCE)
        found_somewhere += len(found)
    assert found_somewhere >= 10


def test_each_face_gets_a_crop_cut_from_the_reduced_decode(analyzer: FaceAnalyzer, deepface_dir: Path, tmp_path: Path):
    """The small crop the people page and the contact sheets show is cut from the copy detection decoded (half scale
    on a 12 MP photo), not from another decode, and shows what the same crop from the full-size photo shows."""
    photo = tmp_path / "phone.jpg"
    background = Image.fromarray(skimage_data.coffee()).resize(PHONE_PHOTO_SIZE, Image.Resampling.BILINEAR)
    background.paste(Image.open(deepface_dir / "img1.jpg"), (1200, 600))
    background.save(photo, quality=92)
    ((_, found),) = analyzer.analyse([("phone", photo)])
    assert len(found.faces) == len(found.crops) == 1
    crop = Image.open(io.BytesIO(found.crops[0]))
    assert (crop.format, crop.size) == ("JPEG", (CROP_SIDE, CROP_SIDE))
    face = found.faces[0]
    box = (face.x, face.y, face.width, face.height)
    from_full_size = np.asarray(face_crop(open_oriented(photo), box, 1.0), np.float32)
    assert np.abs(np.asarray(crop, np.float32) - from_full_size).mean() < CROP_MEAN_DIFFERENCE
    elsewhere = np.asarray(face_crop(open_oriented(photo), (200, 200, face.width, face.height), 1.0), np.float32)
    assert np.abs(np.asarray(crop, np.float32) - elsewhere).mean() > 4 * CROP_MEAN_DIFFERENCE
