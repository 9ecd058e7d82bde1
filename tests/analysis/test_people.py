"""People: quality floors on the labelled face sets through the real pipeline, the quality gate, merge suggestions,
the face index, hybrid matching, stable unknown-person numbers, and the user's edits surviving every kind of re-run."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from devtools.labelled_faces import FACE_SETS, LabelledFaces
from devtools.scoring import quality
from photo_assets.analysis.labels import LabelState, RejectReason
from photo_assets.analysis.people import (
    ASSIGNED_BY_USER,
    PeopleResult,
    build_index,
    cluster_people,
    neighbours,
    normalise,
)
from photo_assets.analysis.people.neighbours import neighbour_table
from photo_assets.analysis.people.quality import quality_gate
from photo_assets.analysis.people.suggestions import NAMED_FIRST_SCORE
from photo_assets.analysis.people.thresholds import thresholds_for
from photo_assets.storage import DataLayout, LabelLog
from photo_assets.storage.people import load_index, save_index

# Floors held on sets the method was not tuned on (dlib's ResNet, the default descriptor): cautious grouping
# (pairwise precision, BCubed recall, no person mixing 3 identities), then the recall one click per suggestion buys,
# at the same precision. Measured: lfw_dev P 1.000, R 0.864, R after clicks 0.995; deepface 1.000, 0.973, 1.000.
MIN_PAIRWISE_PRECISION = 0.99
MIN_BCUBED_RECALL = 0.80
MIN_RECALL_AFTER_CLICKS = 0.95
# The survival scenarios start from this many lfw_dev faces and add the rest later.
FIRST_IMPORT = 300


def gate(faces: LabelledFaces, rows: np.ndarray, embeddings: np.ndarray | None = None) -> np.ndarray:
    vectors = faces.embeddings if embeddings is None else embeddings
    return quality_gate(faces.size[rows], faces.size[rows], faces.eye_ratio[rows], faces.sharpness[rows], vectors[rows],
                        thresholds_for(faces.model).min_raw_norm)


def run(faces: LabelledFaces, rows: np.ndarray, labels: LabelState, previous: pa.Table | None = None,
        embeddings: np.ndarray | None = None, index=None) -> PeopleResult:
    vectors = faces.embeddings if embeddings is None else embeddings
    return cluster_people(faces.face_ids[rows], faces.photo_ids[rows], vectors[rows], labels, previous, index,
                          reasons=gate(faces, rows, embeddings), thresholds=thresholds_for(faces.model))


def person_of(result: PeopleResult) -> dict[str, str | None]:
    return dict(zip(result.faces["face_id"].to_pylist(), result.faces["person_id"].to_pylist()))


def members(result: PeopleResult, person_id: str) -> list[str]:
    return result.faces.filter(pc.equal(result.faces["person_id"], person_id))["face_id"].to_pylist()


# -- quality -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FACE_SETS)
def test_clustering_meets_the_quality_floor(face_sets, name: str):
    faces = face_sets[name]
    result = run(faces, np.arange(len(faces.face_ids)), LabelState())
    person = person_of(result)
    suggestions = zip(result.suggestions["person_id"].to_pylist(), result.suggestions["other_person_id"].to_pylist())
    score = quality(faces.truth, [person[face] for face in faces.face_ids.tolist()], faces.photo_ids,
                    suggestions=list(suggestions))
    print(name, score)
    assert score.pairwise_precision >= MIN_PAIRWISE_PRECISION
    assert score.bcubed_recall >= MIN_BCUBED_RECALL
    assert score.mixed == 0
    assert score.precision_after_clicks >= MIN_PAIRWISE_PRECISION
    assert score.recall_after_clicks >= MIN_RECALL_AFTER_CLICKS


def test_every_face_gets_a_person_or_a_reason_and_the_tables_agree(lfw):
    result = run(lfw, np.arange(len(lfw.face_ids)), LabelState())
    assert result.faces.num_rows == len(lfw.face_ids)
    unsorted = result.faces.filter(pc.is_null(result.faces["person_id"]))
    assert unsorted["unsorted_reason"].null_count == 0  # a face without a person says why
    result = dataclasses.replace(result, faces=result.faces.filter(pc.is_valid(result.faces["person_id"])))
    assert all(name.startswith("Unknown person ") for name in result.people["name"].to_pylist())
    assert all(len(person_id) == 6 and person_id.isdigit() for person_id in result.people["person_id"].to_pylist())
    assert sum(result.people["faces"].to_pylist()) == result.faces.num_rows
    counts = result.faces.group_by("person_id").aggregate([("face_id", "count")])
    assert dict(zip(counts["person_id"].to_pylist(), counts["face_id_count"].to_pylist())) == dict(
        zip(result.people["person_id"].to_pylist(), result.people["faces"].to_pylist())
    )
    for person_id, representative in zip(result.people["person_id"].to_pylist(),
                                          result.people["representative_face_id"].to_pylist()):
        assert representative in members(result, person_id)


# -- index and hybrid matching -----------------------------------------------------------------------------------


def test_index_saves_atomically_loads_back_and_keeps_one_previous_build(lfw, tmp_path: Path):
    index = build_index(lfw.face_ids, lfw.embeddings)
    assert index.info["faces"] == len(lfw.face_ids)
    assert index.info["recall_at_10"] >= 0.9
    layout = DataLayout(tmp_path)
    for _ in range(3):
        save_index(index, layout)
    folder = layout.index_dir
    assert len(list(folder.glob("index-*.ann"))) == 2 and len(list(folder.glob("faces-*.parquet"))) == 2
    assert not list(folder.glob(".*tmp"))
    loaded = load_index(layout)
    assert loaded.face_ids.tolist() == lfw.face_ids.tolist()
    assert np.array_equal(loaded.neighbours, index.neighbours)
    assert np.array_equal(loaded.fingerprints, index.fingerprints)
    query = normalise(lfw.embeddings[:1])[0]
    assert loaded.annoy.get_nns_by_vector(query, 5) == index.annoy.get_nns_by_vector(query, 5)
    assert layout.index_pointer.exists() and load_index(DataLayout(tmp_path / "absent")) is None


def test_hybrid_matching_gives_the_brute_force_answer(lfw, monkeypatch: pytest.MonkeyPatch):
    # A library too large for brute force, as far as the hybrid path can tell: it trusts the index.
    monkeypatch.setattr(neighbours, "EXACT_TABLE_MAX_PAIRS", FIRST_IMPORT**2 - 1)
    everyone = np.arange(len(lfw.face_ids))
    index = build_index(lfw.face_ids[:FIRST_IMPORT], lfw.embeddings[:FIRST_IMPORT])
    vectors = normalise(lfw.embeddings)
    table = neighbour_table(lfw.face_ids, vectors, index)
    assert (table.indexed, table.fresh) == (FIRST_IMPORT, len(everyone) - FIRST_IMPORT)
    changed = vectors.copy()
    changed[0] = normalise(lfw.embeddings[:1] + 1.0)[0]  # re-embedded since the build: no longer trusted
    assert neighbour_table(lfw.face_ids, changed, index).fresh == len(everyone) - FIRST_IMPORT + 1
    hybrid = run(lfw, everyone, LabelState(), index=index)
    brute = run(lfw, everyone, LabelState())
    assert person_of(hybrid) == person_of(brute)


# -- unknown people keep their numbers ---------------------------------------------------------------------------


def test_unknown_numbers_are_kept_when_groups_grow_and_are_reproducible(lfw):
    first = run(lfw, np.arange(FIRST_IMPORT), LabelState())
    grown = run(lfw, np.arange(len(lfw.face_ids)), LabelState(), previous=first.faces)
    before, after = person_of(first), person_of(grown)
    for person_id in set(before.values()):
        faces = [face for face, person in before.items() if person == person_id]
        if len(faces) < 2:
            continue
        now = [after[face] for face in faces]
        # The group is found under its number again — or most of it joined another group of the last run (more
        # faces of one person arrived and bridged the two), and the larger group's number is kept.
        found_as = max(set(now), key=now.count)
        assert found_as == person_id or (found_as in set(before.values()) and person_id in set(after.values()))
    assert person_of(run(lfw, np.arange(FIRST_IMPORT), LabelState())) == before  # from scratch: same numbers
    again = run(lfw, np.arange(len(lfw.face_ids)), LabelState(), previous=grown.faces)
    assert person_of(again) == after


# -- the user's edits survive --------------------------------------------------------------------------------------


class Edits:
    """A user's session on the first import: a rename, a wrong-looking move, a rejection, a merge, a non-face."""

    def __init__(self, faces: LabelledFaces, result: PeopleResult, log: LabelLog):
        people = result.people.filter(pc.greater_equal(result.people["faces"], 3))["person_id"].to_pylist()
        self.named, self.source, self.rejected_from, self.merged, self.kept = people[:5]
        self.named_faces = members(result, self.named)
        log.rename(self.named, "Alice", self.named_faces)
        self.moved = members(result, self.source)[0]  # the user says this face is Alice: their word wins
        log.move(self.moved, self.named)
        self.rejected = members(result, self.rejected_from)[0]
        log.reject(self.rejected, self.rejected_from, RejectReason.NOT_THIS_PERSON)
        self.merged_faces = members(result, self.merged) + members(result, self.kept)
        log.merge(self.merged, self.kept, self.merged_faces)
        self.not_a_face = members(result, self.source)[-1]
        log.reject(self.not_a_face, None, RejectReason.NOT_A_FACE)
        self.log = log

    def check(self, result: PeopleResult) -> None:
        person = person_of(result)
        rows = {row["face_id"]: row for row in result.faces.to_pylist()}
        for face in self.named_faces + [self.moved]:
            if face in rows:
                assert rows[face]["person_id"] == self.named and rows[face]["person_name"] == "Alice"
                assert rows[face]["assigned_by"] == ASSIGNED_BY_USER
        assert self.moved not in rows or person[self.moved] == self.named
        assert self.rejected not in rows or person[self.rejected] != self.rejected_from
        present = [face for face in self.merged_faces if face in person]
        assert {person[face] for face in present} == {self.kept}
        assert self.not_a_face not in rows or rows[self.not_a_face]["person_id"] is None
        assert "Alice" in result.people["name"].to_pylist()


@pytest.fixture
def session(lfw, tmp_path: Path) -> tuple[Edits, PeopleResult]:
    first = run(lfw, np.arange(FIRST_IMPORT), LabelState())
    edits = Edits(lfw, first, LabelLog(DataLayout(tmp_path).label_log))
    after_edits = run(lfw, np.arange(FIRST_IMPORT), edits.log.state(), previous=first.faces)
    edits.check(after_edits)
    return edits, after_edits


def test_edits_survive_a_rerun_of_the_same_faces(lfw, session):
    edits, before = session
    again = run(lfw, np.arange(FIRST_IMPORT), edits.log.state(), previous=before.faces)
    assert again.faces.equals(before.faces) and again.people.equals(before.people)


def test_edits_survive_new_faces_and_an_index_rebuild(lfw, session):
    edits, before = session
    everyone = np.arange(len(lfw.face_ids))
    grown = run(lfw, everyone, edits.log.state(), previous=before.faces)
    edits.check(grown)
    index = build_index(lfw.face_ids, lfw.embeddings)
    edits.check(run(lfw, everyone, edits.log.state(), previous=grown.faces, index=index))


def test_edits_survive_a_new_embedding_model(lfw, session):
    edits, before = session
    rows = np.arange(FIRST_IMPORT)
    rotation = np.linalg.qr(np.random.default_rng(0).normal(size=(128, 128)))[0]
    perturbed = lfw.embeddings @ rotation + np.random.default_rng(1).normal(0, 1.5, lfw.embeddings.shape)
    index = build_index(lfw.face_ids[rows], lfw.embeddings[rows])  # built with the old model: must not mislead
    edits.check(run(lfw, rows, edits.log.state(), previous=before.faces, embeddings=perturbed, index=index))
    unrelated = np.random.default_rng(2).normal(size=lfw.embeddings.shape)  # a model that shares nothing
    edits.check(run(lfw, rows, edits.log.state(), previous=before.faces, embeddings=unrelated))


def test_edits_survive_deleting_and_re_adding_a_photo(lfw, session):
    edits, before = session
    gone = {edits.moved, edits.named_faces[0], edits.rejected}
    photos = {lfw.photo_ids[list(lfw.face_ids).index(face)] for face in gone}
    kept_rows = np.array([row for row in range(FIRST_IMPORT) if lfw.photo_ids[row] not in photos])
    without = run(lfw, kept_rows, edits.log.state(), previous=before.faces)
    assert not gone & set(person_of(without))
    back = run(lfw, np.arange(FIRST_IMPORT), edits.log.state(), previous=without.faces)
    edits.check(back)
    assert person_of(back)[edits.moved] == edits.named


def test_undo_takes_an_edit_back_on_the_next_run(lfw, session):
    edits, before = session
    edits.log.undo()  # the "not a face" verdict
    result = run(lfw, np.arange(FIRST_IMPORT), edits.log.state(), previous=before.faces)
    assert person_of(result)[edits.not_a_face] is not None


# -- unsorted faces, claims and suggestions --------------------------------------------------------------------------

# Background faces and blurred, shrunk copies of labelled photos: what a library is full of and nobody can recognise.
JUNK_PHOTOS = 120
BLURRED_COPIES = 30
BLURRED_SIDE, BLUR_RADIUS = 48, 2
# The gate keeps out nearly every blurred copy and very few of the faces the photos are about.
MIN_BLURRED_GATED, MAX_LABELLED_GATED = 0.9, 0.05


def test_junk_faces_found_no_person(shared_dir: Path, tmp_path: Path):
    """Every face of real lfw_train photos (their background faces too) and of blurred, shrunk copies of some of
    them, through detection, embedding and clustering: the copies are gated, and no person is made of junk faces."""
    from PIL import Image, ImageFilter

    from photo_assets.analysis.catalog import content_hash
    from photo_assets.models import face_analyzer
    from photo_assets.settings import Settings

    photos = sorted((shared_dir / "faces" / "lfw_train").glob("*/*.jpg"))[:JUNK_PHOTOS]
    copies = []
    for number, photo in enumerate(photos[:BLURRED_COPIES]):
        with Image.open(photo) as image:
            small = image.convert("RGB").resize((BLURRED_SIDE, BLURRED_SIDE)).filter(ImageFilter.GaussianBlur(BLUR_RADIUS))
            small.resize(image.size).save(tmp_path / f"blurred_{number}.jpg", quality=90)
        copies.append(tmp_path / f"blurred_{number}.jpg")
    rows = []
    analyzer = face_analyzer(Settings.from_env().models_dir)
    for photo_id, result in analyzer.analyse(
        (content_hash(path), path) for path in [*photos, *copies]
    ):
        largest = max(range(len(result.faces)), key=lambda i: result.faces[i].width * result.faces[i].height,
                      default=None)
        for number, face in enumerate(result.faces):
            junk = photo_id in {content_hash(path) for path in copies} or number != largest
            rows.append((f"{photo_id[:12]}{number:08d}", photo_id, face, result.embeddings[number],
                         result.sharpness[number], junk))
    face_ids, photo_ids, found, embeddings, sharpness, junk = (np.array(column, dtype=object) for column in zip(*rows))
    embeddings = np.stack(embeddings).astype(np.float32)
    reasons = quality_gate([f.width for f in found], [f.height for f in found], [f.eye_ratio for f in found],
                           sharpness.astype(np.float64), embeddings, thresholds_for(analyzer.model_version).min_raw_norm)
    junk = junk.astype(bool)
    copied = np.array([photo in {content_hash(path) for path in copies} for photo in photo_ids.tolist()], bool)
    gated = np.array([reason is not None for reason in reasons], bool)
    print(f"gated: {gated[copied].mean():.2f} of {copied.sum()} blurred copies' faces, "
          f"{gated[junk & ~copied].mean():.2f} of {(junk & ~copied).sum()} background faces, "
          f"{gated[~junk].mean():.2f} of {(~junk).sum()} labelled faces")
    assert copied.sum() >= BLURRED_COPIES // 3  # the detector still finds faces in many copies
    assert gated[copied].mean() >= MIN_BLURRED_GATED and gated[~junk].mean() <= MAX_LABELLED_GATED
    result = cluster_people(face_ids, photo_ids, embeddings, LabelState(), reasons=reasons,
                            thresholds=thresholds_for(analyzer.model_version))
    person = person_of(result)
    # A background face may meet another of the same scene (the same bystander in two photos of one event, which a
    # strong descriptor rightly groups); a person gathering background faces of different scenes is junk.
    scene_of = {content_hash(path): path.parent.name for path in photos}
    scenes_of_person: dict[str, set[str]] = {}
    for face_id, photo_id, is_junk, reason in zip(face_ids.tolist(), photo_ids.tolist(), junk.tolist(),
                                                  reasons.tolist()):
        if reason is not None:
            assert person[face_id] is None  # never founds or joins a person
        if is_junk and person[face_id] is not None:
            scenes_of_person.setdefault(person[face_id], set()).add(scene_of.get(photo_id, photo_id))
    assert max(map(len, scenes_of_person.values()), default=0) <= 1, scenes_of_person


def test_a_named_person_claims_a_close_unsorted_face(lfw, tmp_path: Path):
    rows = np.arange(len(lfw.face_ids))
    first = run(lfw, rows, LabelState())
    people = first.people.filter(pc.greater_equal(first.people["faces"], 4))["person_id"].to_pylist()
    named = people[0]
    faces = members(first, named)
    vectors = normalise(lfw.embeddings)
    position = {face: row for row, face in enumerate(lfw.face_ids.tolist())}
    # The face nearest the others: the one a person should take back even when the gate keeps it out.
    nearest = min(faces, key=lambda face: min(np.sum((vectors[position[face]] - vectors[position[other]]) ** 2)
                                              for other in faces if other != face))
    log = LabelLog(DataLayout(tmp_path).label_log)
    log.rename(named, "Alice", [face for face in faces if face != nearest])
    reasons = gate(lfw, rows)
    reasons[position[nearest]] = "blurred"
    claimed = cluster_people(lfw.face_ids, lfw.photo_ids, lfw.embeddings, log.state(), first.faces, reasons=reasons,
                             thresholds=thresholds_for(lfw.model))
    assert person_of(claimed)[nearest] == named
    unnamed = cluster_people(lfw.face_ids, lfw.photo_ids, lfw.embeddings, LabelState(), first.faces, reasons=reasons,
                             thresholds=thresholds_for(lfw.model))
    assert person_of(unnamed)[nearest] is None  # an unknown person never takes it


def test_suggestions_respect_cannot_link_and_a_declined_pair_never_returns(lfw, tmp_path: Path):
    rows = np.arange(len(lfw.face_ids))
    first = run(lfw, rows, LabelState())
    assert first.suggestions.num_rows > 0
    photos_of = {}
    for face, photo, person in zip(*(first.faces[name].to_pylist() for name in ("face_id", "photo_id", "person_id"))):
        photos_of.setdefault(person, set()).add(photo)
    for suggestion in first.suggestions.to_pylist():
        assert not photos_of[suggestion["person_id"]] & photos_of[suggestion["other_person_id"]]
    assert first.suggestions["rank"].to_pylist() == list(range(1, first.suggestions.num_rows + 1))
    declined = first.suggestions.slice(0, 1).to_pylist()[0]
    log = LabelLog(DataLayout(tmp_path).label_log)
    log.not_same(declined["person_id"], declined["other_person_id"])
    pair = {declined["person_id"], declined["other_person_id"]}
    again = run(lfw, rows, log.state(), previous=first.faces)
    grown_index = build_index(lfw.face_ids, lfw.embeddings)
    everything_again = run(lfw, rows, log.state(), previous=again.faces, index=grown_index)
    for result in (again, everything_again):
        suggested = [{s["person_id"], s["other_person_id"]} for s in result.suggestions.to_pylist()]
        assert pair not in suggested
        person = person_of(result)
        now_first = {person[face] for face in members(first, declined["person_id"])}
        now_second = {person[face] for face in members(first, declined["other_person_id"])}
        assert not (now_first & now_second) - {None}  # and clustering never puts them together either


def test_a_name_finds_its_faces_in_unknown_groups_but_never_one_rejected_from_it(lfw, tmp_path: Path):
    """With grouping so cautious that every face stays alone, a person the user named still takes the faces close to
    the faces the user confirmed (assigned by "name"); a face rejected from that person stays out."""
    rows = np.arange(len(lfw.face_ids))
    lonely = dataclasses.replace(thresholds_for(lfw.model), linkage=1e-9)
    identity = next(who for who in sorted(set(lfw.truth.tolist())) if (lfw.truth == who).sum() >= 5)
    faces = lfw.face_ids[lfw.truth == identity].tolist()
    log = LabelLog(DataLayout(tmp_path).label_log)
    confirmed = log.move(faces[0], "111111", "Alice")
    for face in faces[1:3]:
        log.move(face, confirmed.args["person_id"])
    result = cluster_people(lfw.face_ids, lfw.photo_ids, lfw.embeddings, log.state(), reasons=gate(lfw, rows),
                            thresholds=lonely)
    by = dict(zip(result.faces["face_id"].to_pylist(), result.faces["assigned_by"].to_pylist()))
    found = [face for face in faces[3:] if person_of(result)[face] == "111111"]
    assert found and all(by[face] == "name" for face in found)
    others = [face for face, who in zip(lfw.face_ids.tolist(), lfw.truth.tolist()) if who != identity]
    assert not [face for face in others if person_of(result)[face] == "111111"]  # nobody else's face
    log.reject(found[0], "111111", RejectReason.NOT_THIS_PERSON)
    again = cluster_people(lfw.face_ids, lfw.photo_ids, lfw.embeddings, log.state(), result.faces,
                           reasons=gate(lfw, rows), thresholds=lonely)
    assert person_of(again)[found[0]] != "111111"


def test_suggestions_ask_about_named_people_first(lfw, tmp_path: Path):
    """"Is this Alice?" comes before any pair of two unknown people, when it is a plausible pair."""
    rows = np.arange(len(lfw.face_ids))
    first = run(lfw, rows, LabelState())
    log = LabelLog(DataLayout(tmp_path).label_log)
    for number, person in enumerate(first.people["person_id"].to_pylist()[:20]):
        log.rename(person, f"Person {number}", members(first, person))
    again = run(lfw, rows, log.state(), previous=first.faces)
    named = set(log.state().names)
    kinds = [(row["person_id"] in named or row["other_person_id"] in named, row["distance"])
             for row in again.suggestions.sort_by("rank").to_pylist()]
    asked_first = [kind for kind in kinds if kind[0] and kind[1] < NAMED_FIRST_SCORE]
    assert asked_first and kinds[: len(asked_first)] == asked_first
