"""People quality as a user would meet it, on the labelled face sets, through the real pipeline.

    .venv/bin/python bench/people_quality.py [--descriptor dlib|facenet] [--work DIR] [--sets lfw_train lfw_dev deepface]
        [--previous REV]

For each set under ../shared/faces, `photo-assets run` analyses the whole set (every face of every photo) into
DIR/<set>/data (kept between runs: delete it to measure again from scratch). The largest face of each photo carries
the folder's identity (deepface: identities.json); every other face goes through clustering unlabelled. Printed per
set, for person_clusters as the pipeline wrote it and, from the same embeddings, for the previous release's method
(REV, run from a temporary git worktree of it) and plain average linkage: pairwise precision, BCubed recall (over
identities seen more than once), persons mixing 3+ identities, the largest person and its purity, unsorted faces by
reason, and precision / recall after a simulated user clicks down the merge suggestions (one click per identity
seen more than once).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # devtools, when run as a script

# scipy comes with scikit-image; only the exact O(n^2) linkage baselines here use it.
from scipy.cluster.hierarchy import fcluster, linkage  # noqa: E402
from scipy.spatial.distance import pdist  # noqa: E402

from devtools.scoring import HEADER, Quality, quality, row  # noqa: E402
from photo_assets.analysis.descriptors import Descriptor  # noqa: E402
from photo_assets.analysis.people import normalise  # noqa: E402
from photo_assets.settings import DEFAULT_DAGSTER_HOME, FACE_DESCRIPTOR_ENV  # noqa: E402
from photo_assets.storage import DataLayout, DataStore  # noqa: E402
from photo_assets.storage.layout import FACE_DETECTIONS, FACE_EMBEDDINGS, PHOTOS  # noqa: E402
from photo_assets.storage.people import load_people_faces, load_suggestions  # noqa: E402

PROJECT_DIR = Path(__file__).resolve().parents[1]
SHARED_DIR = PROJECT_DIR.parent / "shared"
BENCH_SETS = ("lfw_train", "lfw_dev", "deepface")
# The last commit whose person_clusters used the previous method (average linkage at 0.85 + leftovers, no gate).
PREVIOUS_METHOD_REV = "c95dba1"
# Plain average linkage over L2-normalised embeddings, the yardstick, at the distances where it reaches pairwise
# precision 0.99 on lfw_train's central faces (and FaceNet's earlier yardstick, 0.75).
PLAIN_LINKAGE_DISTANCES = {Descriptor.DLIB: (0.321,), Descriptor.FACENET: (0.716, 0.75)}
# Runs the previous release's clustering on the embeddings given as a .npz file; prints its persons as JSON.
PREVIOUS_METHOD_SCRIPT = """
import json, sys
import numpy as np
from photo_assets.analysis.people import cluster_people
from photo_assets.labels import LabelState
stored = np.load(sys.argv[1], allow_pickle=False)
result = cluster_people(stored["face_ids"], stored["photo_ids"], stored["embeddings"], LabelState())
print(json.dumps(dict(zip(result.faces["face_id"].to_pylist(), result.faces["person_id"].to_pylist()))))
"""


@dataclass
class PipelineFaces:
    """Every face `photo-assets run` found in a set, with the labels of the largest faces and what person_clusters
    made of them."""

    face_ids: np.ndarray
    photo_ids: np.ndarray
    embeddings: np.ndarray  # raw FaceNet output
    truth: np.ndarray  # identity, or None for a background face
    person: np.ndarray  # person_clusters' person, or None (unsorted or not a face)
    reasons: np.ndarray  # person_clusters' unsorted_reason
    suggestions: list[tuple[str, str]]  # person_clusters' suggestions, best first


def analyse_set(name: str, work: Path) -> DataLayout:
    """The set through `photo-assets run`, once: a data folder already holding people is reused."""
    layout = DataLayout(work / name / "data")
    if load_people_faces(layout) is None:
        home = work / name / "dagster_home"
        home.mkdir(parents=True, exist_ok=True)
        (home / "dagster.yaml").write_bytes((DEFAULT_DAGSTER_HOME / "dagster.yaml").read_bytes())
        command = [sys.executable, "-m", "photo_assets.cli", "run", "--library", str(SHARED_DIR / "faces" / name),
                   "--data", str(layout.root)]
        subprocess.run(command, env=os.environ | {"DAGSTER_HOME": str(home)}, check=True)
    return layout


def identity_of_photos(name: str, layout: DataLayout) -> dict[str, str]:
    photos = DataStore(layout).read_all(PHOTOS, columns=["photo_id", "path"]).to_pylist()
    if name == "deepface":
        identities = json.loads((SHARED_DIR / "faces" / name / "identities.json").read_text())
        person_of_file = {photo: person for person, files in identities.items() for photo in files}
        return {row["photo_id"]: person_of_file.get(Path(row["path"]).name) for row in photos}
    return {row["photo_id"]: row["path"].split("/")[0] for row in photos}


def load_pipeline_faces(name: str, layout: DataLayout) -> PipelineFaces:
    store = DataStore(layout)
    embeddings = store.read_all(FACE_EMBEDDINGS, columns=["face_id", "photo_id", "embedding"])
    boxes = store.read_all(FACE_DETECTIONS, columns=["face_id", "width", "height"]).to_pylist()
    area = {box["face_id"]: box["width"] * box["height"] for box in boxes}
    face_ids = np.array(embeddings["face_id"].to_pylist(), dtype=object)
    photo_ids = np.array(embeddings["photo_id"].to_pylist(), dtype=object)
    largest: dict[str, str] = {}
    for face, photo in zip(face_ids.tolist(), photo_ids.tolist()):
        if photo not in largest or (area[face], largest[photo]) > (area[largest[photo]], face):
            largest[photo] = face
    identity = identity_of_photos(name, layout)
    truth = np.array([identity.get(photo) if largest[photo] == face else None
                      for face, photo in zip(face_ids.tolist(), photo_ids.tolist())], dtype=object)
    clustered = load_people_faces(layout)
    person_of = dict(zip(clustered["face_id"].to_pylist(), clustered["person_id"].to_pylist()))
    reason_of = dict(zip(clustered["face_id"].to_pylist(), clustered["unsorted_reason"].to_pylist()))
    suggestions = load_suggestions(layout)
    return PipelineFaces(
        face_ids, photo_ids,
        embeddings["embedding"].combine_chunks().flatten().to_numpy().reshape(len(face_ids), -1),
        truth,
        np.array([person_of.get(face) for face in face_ids.tolist()], dtype=object),
        np.array([reason_of.get(face) for face in face_ids.tolist()], dtype=object),
        list(zip(suggestions["person_id"].to_pylist(), suggestions["other_person_id"].to_pylist())),
    )


def previous_method(faces: PipelineFaces, revision: str) -> np.ndarray | None:
    """The previous release's persons for the same embeddings, run from a temporary worktree of `revision`; None
    when git or the revision is not there."""
    with tempfile.TemporaryDirectory() as work:
        tree = Path(work) / "previous"
        added = subprocess.run(["git", "-C", str(PROJECT_DIR), "worktree", "add", "--detach", str(tree), revision],
                               capture_output=True, text=True)
        if added.returncode:
            print(f"previous method skipped: {added.stderr.strip()}", file=sys.stderr)
            return None
        try:
            np.savez(Path(work) / "faces.npz", face_ids=faces.face_ids.astype(str),
                     photo_ids=faces.photo_ids.astype(str), embeddings=faces.embeddings)
            done = subprocess.run([sys.executable, "-c", PREVIOUS_METHOD_SCRIPT, str(Path(work) / "faces.npz")],
                                  env=os.environ | {"PYTHONPATH": str(tree)}, capture_output=True, text=True,
                                  check=True, cwd=tree)
        finally:
            subprocess.run(["git", "-C", str(PROJECT_DIR), "worktree", "remove", "--force", str(tree)],
                           capture_output=True)
    person_of = json.loads(done.stdout.strip().splitlines()[-1])
    return np.array([person_of.get(face) for face in faces.face_ids.tolist()], dtype=object)


def plain_linkage(faces: PipelineFaces, distance: float) -> np.ndarray:
    """Average linkage over every face's L2-normalised embedding, cut at `distance` (exact, O(n^2))."""
    groups = fcluster(linkage(pdist(normalise(faces.embeddings)), "average"), distance, "distance")
    return groups.astype(str).astype(object)


def report(name: str, faces: PipelineFaces, results: dict[str, Quality]) -> None:
    labelled = int(sum(identity is not None for identity in faces.truth.tolist()))
    print(f"\n{name}: {len(faces.face_ids)} faces, {labelled} labelled")
    print(HEADER)
    for label, result in results.items():
        print(row(label, result))
    ours = results["person_clusters (this release)"]
    reasons = ", ".join(f"{reason} {count} ({labelled_count} labelled)"
                        for reason, (count, labelled_count) in ours.unsorted_by_reason.items())
    print(f"unsorted by reason: {reasons or 'none'}; {ours.clicks} clicks, {ours.accepted} yes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--descriptor", default=Descriptor.DLIB, choices=list(Descriptor))
    parser.add_argument("--work", type=Path, default=None,
                        help="where each set's data folder is kept (default: bench-data/people-<descriptor>)")
    parser.add_argument("--sets", nargs="+", default=list(BENCH_SETS), choices=BENCH_SETS)
    parser.add_argument("--previous", default=PREVIOUS_METHOD_REV, help="the revision of the previous method")
    args = parser.parse_args()
    descriptor = Descriptor(args.descriptor)
    os.environ[FACE_DESCRIPTOR_ENV] = descriptor.value  # the runs analyse with this descriptor
    work = args.work or PROJECT_DIR / "bench-data" / f"people-{descriptor}"
    for name in args.sets:
        layout = analyse_set(name, work)
        faces = load_pipeline_faces(name, layout)
        results = {"person_clusters (this release)": quality(faces.truth, faces.person, faces.photo_ids,
                                                             faces.reasons, faces.suggestions)}
        # The previous method's threshold is FaceNet's: on another descriptor's vectors it means nothing.
        previous = previous_method(faces, args.previous) if descriptor is Descriptor.FACENET else None
        if previous is not None:
            results[f"previous release ({args.previous})"] = quality(faces.truth, previous)
        for distance in PLAIN_LINKAGE_DISTANCES[descriptor]:
            results[f"plain average linkage at {distance}"] = quality(faces.truth, plain_linkage(faces, distance))
        report(name, faces, results)


if __name__ == "__main__":
    main()
