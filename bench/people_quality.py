"""People clustering quality on the labelled face sets, through the real pipeline (MTCNN + FaceNet, ours).

    .venv/bin/python bench/people_quality.py [--cache DIR] [--no-mirror]

Embeds ../shared/faces/lfw_dev (a folder per person) and ../shared/faces/deepface (identities.json) with
photo_assets.analysis.faces, keeping the largest face of each photo (the one the label is about), then clusters
them with photo_assets.analysis.people and with every candidate measured while choosing it. For each: pairwise
precision / recall and BCubed precision / recall / F against the labels, and the number of groups.
`--cache DIR` keeps the embeddings in DIR/<set>.npz between runs (they take a minute or two to compute).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench.scoring, when run as a script

# scipy comes with scikit-image; only the exact O(n^2) linkage baselines here use it.
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import pdist

from bench.scoring import ClusteringScore, score_clustering
from photo_assets.analysis.catalog import content_hash
from photo_assets.analysis.faces import face_id
from photo_assets.analysis.images import PhotoError, open_oriented
from photo_assets.analysis.labels import LabelState
from photo_assets.analysis.people import cluster_people, normalise
from photo_assets.analysis.people.clustering import (
    LINKAGE_THRESHOLD,
    NEIGHBOUR_MAX_SQUARED,
    agglomerate,
    attach_leftovers,
)
from photo_assets.analysis.people.neighbours import NeighbourGraph, neighbour_graph
from photo_assets.models import face_analyzer
from photo_assets.settings import Settings

SHARED_DIR = Path(__file__).resolve().parents[1].parent / "shared"
FACE_SETS = ("lfw_dev", "deepface")
# The reference's rule: a face joins the person of its nearest earlier face when closer than 10 (raw FaceNet).
REFERENCE_DISTANCE = 10.0


@dataclass
class LabelledFaces:
    """The largest face of every labelled photo of a set, embedded through the real pipeline."""

    name: str
    photo_ids: np.ndarray  # str
    face_ids: np.ndarray  # str
    truth: np.ndarray  # str: the person the photo is labelled with
    embeddings: np.ndarray  # (faces, 128) raw FaceNet output
    mirrored: np.ndarray | None  # (faces, 128) embeddings of the mirrored aligned faces, when computed
    confidence: np.ndarray
    size: np.ndarray  # shorter box side, pixels
    eye_ratio: np.ndarray
    sharpness: np.ndarray

    def save(self, path: Path) -> None:
        arrays = {key: value for key, value in vars(self).items() if key != "name" and value is not None}
        np.savez(path, **{key: np.asarray(value, dtype=str) if value.dtype == object else value
                          for key, value in arrays.items()})

    @classmethod
    def load(cls, name: str, path: Path) -> "LabelledFaces":
        with np.load(path) as stored:
            fields = {key: stored[key] for key in stored.files}
        fields.setdefault("mirrored", None)
        return cls(name=name, **fields)


def labelled_photos(shared_dir: Path, name: str) -> list[tuple[Path, str]]:
    """(photo, person) for every labelled photo of a set."""
    root = shared_dir / "faces" / name
    if name == "deepface":
        identities = json.loads((root / "identities.json").read_text())
        return [(root / photo, person) for person, photos in sorted(identities.items()) for photo in sorted(photos)]
    return [(photo, folder.name) for folder in sorted(root.iterdir()) if folder.is_dir()
            for photo in sorted(folder.iterdir())]


def embed_labelled_set(shared_dir: Path, name: str, mirror: bool = False) -> LabelledFaces:
    """Run the face pipeline on a set; photos where no face is found are left out (and counted on stderr)."""
    analyzer = face_analyzer(Settings.from_env().models_dir)
    photos = labelled_photos(shared_dir, name)
    person_of = {}
    inputs = []
    for path, person in photos:
        photo_id = content_hash(path)
        person_of[photo_id] = person
        inputs.append((photo_id, path))
    paths = dict(inputs)
    rows, crops = [], []
    for photo_id, result in analyzer.analyse(inputs):
        if isinstance(result, PhotoError) or not result.faces:
            continue
        largest = max(range(len(result.faces)), key=lambda i: result.faces[i].width * result.faces[i].height)
        face = result.faces[largest]
        if mirror:
            crops.append(analyzer.aligned_crops(open_oriented(paths[photo_id]), [face])[0])
        rows.append((photo_id, face_id(photo_id, face), person_of[photo_id], result.embeddings[largest],
                     face.confidence, face.size, face.eye_ratio, result.sharpness[largest]))
    mirrored = analyzer.embed(np.stack(crops)[:, :, ::-1]) if mirror else None
    missed = len(photos) - len(rows)
    if missed:
        print(f"{name}: no face found in {missed} of {len(photos)} photos", file=sys.stderr)
    columns = list(zip(*rows))
    return LabelledFaces(
        name,
        np.array(columns[0], dtype=object),
        np.array(columns[1], dtype=object),
        np.array(columns[2], dtype=object),
        np.stack(columns[3]).astype(np.float32),
        mirrored,
        np.array(columns[4], np.float32),
        np.array(columns[5], np.int32),
        np.array(columns[6], np.float32),
        np.array(columns[7], np.float32),
    )


def load_or_embed(shared_dir: Path, name: str, cache: Path | None, mirror: bool) -> LabelledFaces:
    path = cache / f"{name}.npz" if cache else None
    if path and path.exists():
        stored = LabelledFaces.load(name, path)
        if stored.mirrored is not None or not mirror:
            return stored
    started = time.monotonic()
    faces = embed_labelled_set(shared_dir, name, mirror)
    print(f"{name}: embedded {len(faces.face_ids)} faces in {time.monotonic() - started:.0f} s", file=sys.stderr)
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        faces.save(path)
    return faces


def reference_rule(raw: np.ndarray, order: np.ndarray) -> np.ndarray:
    """The reference: faces in import order each join the person of the nearest face seen so far when the raw
    FaceNet distance is below 10, else start a new person."""
    person = np.full(len(raw), -1)
    seen: list[int] = []
    for face in order:
        if seen:
            distances = np.linalg.norm(raw[seen] - raw[face], axis=1)
            nearest = int(np.argmin(distances))
            if distances[nearest] < REFERENCE_DISTANCE:
                person[face] = person[seen[nearest]]
                seen.append(face)
                continue
        person[face] = person.max() + 1
        seen.append(face)
    return person


def reference_scores(faces: LabelledFaces) -> dict[str, ClusteringScore]:
    """The reference rule in two import orders: by content hash (arbitrary), and one person's folder after another
    (kinder to a sequential rule: each person's faces arrive together)."""
    orders = {
        "reference, nearest face < 10 raw (hash order)": np.argsort(faces.photo_ids.astype(str), kind="stable"),
        "reference, nearest face < 10 raw (folder order)": np.arange(len(faces.truth)),
    }
    return {label: score_clustering(faces.truth, reference_rule(faces.embeddings, order))
            for label, order in orders.items()}


def ours(faces: LabelledFaces, embeddings: np.ndarray | None = None, threshold: float = LINKAGE_THRESHOLD):
    """Person per face from the production clustering (no user labels)."""
    result = cluster_people(faces.face_ids, faces.photo_ids,
                            faces.embeddings if embeddings is None else embeddings, LabelState(),
                            threshold=threshold)
    person_of = dict(zip(result.faces["face_id"].to_pylist(), result.faces["person_id"].to_pylist()))
    return [person_of[face_id] for face_id in faces.face_ids]


def founding_only(vectors: np.ndarray, threshold: float, founders: np.ndarray | None = None,
                  attach: bool = False) -> np.ndarray:
    """Graph average linkage alone (or with the leftover stage), optionally founded by `founders` only."""
    graph = neighbour_graph(np.arange(len(vectors)).astype(str), vectors, None, NEIGHBOUR_MAX_SQUARED)
    founding = graph
    if founders is not None:
        both = founders[graph.first] & founders[graph.second]
        founding = NeighbourGraph(graph.first[both], graph.second[both], 0, 0)
    group = agglomerate(vectors, founding, threshold)
    return attach_leftovers(vectors, graph, group) if attach else group


def immich_like(vectors: np.ndarray, max_distance: float, min_faces: int) -> np.ndarray:
    """Immich's recognition: a face with >= min_faces faces (itself included) within cosine distance max_distance
    joins the person of its nearest such face that has one, or founds a person; the rest join the nearest person
    within reach afterwards, or stay alone."""
    distance = 1.0 - vectors @ vectors.T
    person = np.full(len(vectors), -1)
    close = distance <= max_distance
    deferred = []
    for face in range(len(vectors)):
        if close[face].sum() < min_faces:
            deferred.append(face)
            continue
        named = np.flatnonzero(close[face] & (person >= 0))
        person[face] = person[named[np.argmin(distance[face, named])]] if len(named) else person.max() + 1
    for face in deferred:
        named = np.flatnonzero(close[face] & (person >= 0))
        person[face] = person[named[np.argmin(distance[face, named])]] if len(named) else person.max() + 1
    return person


def dbscan(vectors: np.ndarray, radius: float, min_points: int) -> np.ndarray:
    """Plain DBSCAN on Euclidean distance of normalised embeddings; noise faces are groups of their own."""
    neighbours = np.linalg.norm(vectors[:, None] - vectors[None], axis=2) <= radius
    core = neighbours.sum(axis=1) >= min_points
    label = np.full(len(vectors), -1)
    for start in np.flatnonzero(core):
        if label[start] >= 0:
            continue
        label[start] = label.max() + 1
        frontier = [start]
        while frontier:
            face = frontier.pop()
            for other in np.flatnonzero(neighbours[face] & (label < 0)):
                label[other] = label[start]
                if core[other]:
                    frontier.append(other)
    noise = label < 0
    label[noise] = label.max() + 1 + np.arange(noise.sum())
    return label


def exact_average_linkage(vectors: np.ndarray, threshold: float, squared: bool) -> np.ndarray:
    tree = linkage(pdist(vectors, "sqeuclidean" if squared else "euclidean"), "average")
    return fcluster(tree, threshold, "distance")


def candidates(faces: LabelledFaces) -> dict[str, ClusteringScore]:
    vectors = normalise(faces.embeddings)
    truth = faces.truth
    rows = dict(reference_scores(faces))
    rows["Immich-like: >= 3 faces within cosine 0.5"] = score_clustering(truth, immich_like(vectors, 0.5, 3))
    rows["Immich-like: >= 3 faces within cosine 0.4"] = score_clustering(truth, immich_like(vectors, 0.4, 3))
    for radius, min_points in ((0.64, 4), (0.8, 3), (0.9, 3), (0.9, 2), (1.0, 3)):
        rows[f"DBSCAN radius {radius} min {min_points}"] = score_clustering(truth, dbscan(vectors, radius, min_points))
    for threshold in (0.8, 0.9, 1.0):
        rows[f"average linkage, exact, L2 distance {threshold}"] = score_clustering(
            truth, exact_average_linkage(vectors, threshold, squared=False))
    for threshold in (0.8, 0.85, 0.9, 0.95):
        rows[f"average linkage, exact, squared L2 {threshold}"] = score_clustering(
            truth, exact_average_linkage(vectors, threshold, squared=True))
        rows[f"ours, founding only (graph, squared L2) {threshold}"] = score_clustering(
            truth, founding_only(vectors, threshold))
    for threshold in (0.8, 0.9):
        rows[f"ours, founding {threshold} + leftovers"] = score_clustering(truth, ours(faces, threshold=threshold))
    gates = {
        "sharpness >= 20": faces.sharpness >= 20,
        "confidence >= 0.99": faces.confidence >= 0.99,
        "eye ratio >= 0.35": faces.eye_ratio >= 0.35,
    }
    for label, founders in gates.items():
        rows[f"ours, only faces with {label} found groups"] = score_clustering(
            truth, founding_only(vectors, LINKAGE_THRESHOLD, founders, attach=True))
    if faces.mirrored is not None:
        averaged = normalise(vectors + normalise(faces.mirrored))
        rows["ours + mirrored-face averaging (TTA)"] = score_clustering(truth, ours(faces, averaged))
    rows[CHOSEN] = score_clustering(truth, ours(faces))
    return rows


CHOSEN = f"OURS (chosen): founding {LINKAGE_THRESHOLD} + leftovers"


def print_table(name: str, faces: LabelledFaces, rows: dict[str, ClusteringScore]) -> None:
    print(f"\n{name}: {len(faces.face_ids)} faces, {len(set(faces.truth))} people")
    print(f"{'method':<58} {'pair P':>6} {'pair R':>6} {'B3 P':>6} {'B3 R':>6} {'B3 F':>6} {'groups':>6}")
    for label, score in rows.items():
        print(f"{label:<58} {score.pairwise_precision:6.3f} {score.pairwise_recall:6.3f} {score.bcubed_precision:6.3f} "
              f"{score.bcubed_recall:6.3f} {score.bcubed_f:6.3f} {score.groups:6d}")
    best_reference = max((score for label, score in rows.items() if label.startswith("reference")),
                         key=lambda score: score.bcubed_f)
    chosen = rows[CHOSEN]
    print(f"ours vs the reference's best order: BCubed F {chosen.bcubed_f:.3f} vs {best_reference.bcubed_f:.3f} "
          f"({chosen.bcubed_f - best_reference.bcubed_f:+.3f}); pairwise precision {chosen.pairwise_precision:.3f} "
          f"vs {best_reference.pairwise_precision:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, help="keep embeddings here between runs")
    parser.add_argument("--no-mirror", action="store_true", help="skip the mirrored-face (test-time augmentation) runs")
    args = parser.parse_args()
    for name in FACE_SETS:
        faces = load_or_embed(SHARED_DIR, name, args.cache, mirror=not args.no_mirror)
        print_table(name, faces, candidates(faces))


if __name__ == "__main__":
    main()
