"""Real faults, real processes: what a `kill -9` in the middle of a batch and a full disk leave behind.

Proves, for a colour run, a faces run and a face index build: after SIGKILL every Parquet file under the data folder
is the old complete file or absent (never torn), a temporary file left behind is never read as data, the re-run
completes, and its rows match the catalog exactly. A full disk fails the run with a message naming the problem,
leaves the previous outputs byte-identical and no temporary behind, and the run succeeds once space is back.

The kills land deterministically where it matters most: the child (the real `photo-assets` command) is the product
unchanged except that renames into one chosen output path wait to be killed, so the kill falls after the new bytes
are fully written beside the old file and before they replace it. The faces run is also killed at a natural moment,
in the middle of model inference. After a kill, the next `photo-assets run` marks the dead run failed and frees its
pool slot itself (a killed in-process run would otherwise hold it for ever).
"""

from __future__ import annotations

import errno
import io
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from devtools.library import copy_portraits, write_photo
from photo_assets.storage import DataLayout, DataStore
from photo_assets.storage.atomic import STALE_TEMPORARY_AGE_SECONDS
from photo_assets.storage.layout import (
    ADDED_FACES_DIR,
    CLUSTERS_DIR,
    INDEX_DIR,
    INDEX_POINTER,
    NEAR_DUPLICATES,
    XMP_SIDECAR_LOG,
)
from photo_assets.storage.people import load_index

pytestmark = pytest.mark.slow  # pipeline subprocesses killed mid-run

# Small enough that a colour run is seconds; the content still differs per seed, so every photo is its own photo_id.
TINY_PHOTO_SIZE = (64, 48)
COLOUR_PHOTOS_PER_BATCH = 10
# Real portraits (shared/faces/deepface): two per person make the first batch, one more each the batch that is killed.
FACE_PEOPLE = ["person_01", "person_02", "person_03"]
FIRST_FACE_PHOTOS, LATER_FACE_PHOTOS = 2, 1
# Generous: a cold run on 2 shared cores, models loaded and faces analysed, with room for a slow machine.
RUN_TIMEOUT_S = 900
# How long a test waits for the child to reach the point where it is killed.
REACH_TIMEOUT_S = 600
# The child renames into a path matching this glob only after the test killed it; it names the temporary in MARKER.
PAUSE_AT_ENV = "PHOTO_ASSETS_TEST_PAUSE_AT"
PAUSED_MARKER_ENV = "PHOTO_ASSETS_TEST_PAUSED_MARKER"
# The colour outputs get a filesystem of their own this small: one batch's file fits, and a filler takes the rest.
TMPFS_SIZE = "256k"
# Without root (no tmpfs), writes past this size fail with EFBIG instead: below what a run's bookkeeping grows to.
FILE_SIZE_LIMIT_BYTES = 64 * 1024
# What a user must be told when the disk is full: ENOSPC, EFBIG, or SQLite's word for either.
SPACE_MESSAGES = ("No space left on device", "File too large", "database or disk is full")

CHILD_CODE = f"""
import fnmatch, os, runpy, sys, time

pattern, marker = os.environ.get({PAUSE_AT_ENV!r}), os.environ.get({PAUSED_MARKER_ENV!r})


def pausing(rename):
    def rename_or_wait(source, target, *args, **kwargs):
        if pattern and fnmatch.fnmatch(os.fspath(target), pattern):
            with open(marker, "w") as handle:
                handle.write(os.fspath(source))
            while True:
                time.sleep(60)  # the new bytes are complete beside the old file: the test kills us here
        return rename(source, target, *args, **kwargs)
    return rename_or_wait


os.replace, os.rename = pausing(os.replace), pausing(os.rename)
sys.argv = ["photo-assets", *sys.argv[1:]]
runpy.run_module("photo_assets.cli", run_name="__main__")
"""


# -- processes ---------------------------------------------------------------------------------------------------


@dataclass
class Child:
    """A run in its own process group, its output collected line by line as it comes."""

    process: subprocess.Popen
    lines: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def kill(self) -> None:
        """SIGKILL to the whole group: the run and anything it started get no chance to clean up."""
        assert self.process.poll() is None, f"the run finished before it could be killed:\n{self.output[-3000:]}"
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=60)
        self.reader.join(timeout=60)
        assert self.process.returncode == -signal.SIGKILL

    def finish(self) -> int:
        try:
            self.process.wait(timeout=RUN_TIMEOUT_S)
        finally:
            if self.process.poll() is None:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
            self.reader.join(timeout=60)
        return self.process.returncode


@dataclass
class Setup:
    library: Path
    data: Path
    home: Path

    def env(self, pause_at: str | None = None) -> dict[str, str]:
        env = {**os.environ, "DAGSTER_HOME": str(self.home), "PHOTO_ASSETS_DATA": str(self.data),
               "PHOTO_ASSETS_LIBRARY": str(self.library)}
        if pause_at:
            env[PAUSE_AT_ENV] = pause_at
            env[PAUSED_MARKER_ENV] = str(self.marker)
        return env

    @property
    def marker(self) -> Path:
        return self.home.parent / "paused-at.txt"

    def start(self, *args: str, pause_at: str | None = None, preexec_fn=None) -> Child:
        self.home.mkdir(parents=True, exist_ok=True)
        process = subprocess.Popen(
            [sys.executable, "-c", CHILD_CODE, *args], env=self.env(pause_at), stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True, preexec_fn=preexec_fn,
        )
        child = Child(process)
        child.reader = threading.Thread(target=lambda: child.lines.extend(process.stdout), daemon=True)
        child.reader.start()
        return child

    def run_to_end(self, *args: str, **kwargs) -> Child:
        child = self.start(*args, **kwargs)
        child.finish()
        return child

    def paused_temporary(self, child: Child) -> Path:
        """Wait until the child stands before the chosen rename; the complete temporary it was about to rename."""
        deadline = time.monotonic() + REACH_TIMEOUT_S
        while not self.marker.exists():
            assert child.process.poll() is None, f"the run ended before the kill point:\n{child.output[-3000:]}"
            assert time.monotonic() < deadline, f"the kill point was never reached:\n{child.output[-3000:]}"
            time.sleep(0.05)
        time.sleep(0.1)  # the marker's one write is done
        return Path(self.marker.read_text())

    def instance(self) -> dg.DagsterInstance:
        return dg.DagsterInstance.from_config(str(self.home))


def step_events(instance: dg.DagsterInstance, run_id: str, step_key: str) -> set[str]:
    return {
        record.dagster_event.event_type_value
        for record in instance.all_logs(run_id)
        if record.dagster_event and record.step_key == step_key
    }


def wait_for_step_start(setup: Setup, child: Child, step_key: str) -> str:
    """The id of the (only) started run once its step `step_key` has started."""
    deadline = time.monotonic() + REACH_TIMEOUT_S
    with setup.instance() as instance:
        while True:
            assert child.process.poll() is None, f"the run ended before {step_key} started:\n{child.output[-3000:]}"
            assert time.monotonic() < deadline, f"{step_key} never started:\n{child.output[-3000:]}"
            started = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
            for run in started:
                if "STEP_START" in step_events(instance, run.run_id, step_key):
                    return run.run_id
            time.sleep(0.5)


# -- what the data folder must look like ---------------------------------------------------------------------------


def parquet_files(data: Path) -> dict[str, bytes]:
    return {str(path.relative_to(data)): path.read_bytes() for path in sorted(data.rglob("*.parquet"))}


def temporaries(data: Path) -> list[Path]:
    return sorted(path for path in data.rglob(".*") if path.is_file() and path.name.endswith(".tmp"))


def assert_nothing_torn(data: Path) -> None:
    """Every Parquet file there is reads completely: footer, every row group, every column."""
    for relative, payload in parquet_files(data).items():
        table = pq.read_table(io.BytesIO(payload))
        assert table.num_rows == pq.ParquetFile(io.BytesIO(payload)).metadata.num_rows, relative


def assert_kept_or_absent(before: dict[str, bytes], data: Path) -> None:
    """Each file that existed before the fault is byte-identical now."""
    after = parquet_files(data)
    changed = [name for name, payload in before.items() if after.get(name) != payload]
    assert not changed, f"changed or lost by the fault: {changed}"


def batch_files(files: dict[str, bytes]) -> dict[str, bytes]:
    """The per-batch outputs among `files`: a re-run rewrites the whole-library ones (index, people, regions read and
    faces added, near-duplicate groups) by design, and the sidecar log records what the last sidecar write did ("unchanged" on a re-run) — the sidecars themselves are
    byte-identical and checked like any output."""
    rewritten = (f"{CLUSTERS_DIR}/", f"{INDEX_DIR}/", f"{XMP_SIDECAR_LOG}/", f"{ADDED_FACES_DIR}/", f"{NEAR_DUPLICATES}/")
    return {name: payload for name, payload in files.items() if not name.startswith(rewritten)}


def catalogued_photos(data: Path):
    photos = DataStore(DataLayout(data)).read_all("photos", columns=["photo_id", "path", "error"])
    assert photos["path"].value_counts().to_pylist() == [
        {"values": path, "counts": 1} for path in photos["path"].to_pylist()
    ], "a photo catalogued twice"
    return photos


def assert_colours_match_catalog(data: Path, library: Path) -> None:
    """Every photo in the library is catalogued once; every decodable one has one set of colour rows, ranked 1..n,
    in one batch file only."""
    photos = catalogued_photos(data)
    assert sorted(photos["path"].to_pylist()) == sorted(
        str(path.relative_to(library)) for path in library.rglob("*.jpg")
    )
    decodable = set(photos.filter(pc.is_null(photos["error"]))["photo_id"].to_pylist())
    owner: dict[str, str] = {}
    for path in sorted((data / "color_histograms").glob("*.parquet")):
        for photo_id in set(pq.read_table(path, columns=["photo_id"])["photo_id"].to_pylist()):
            assert photo_id not in owner, f"{photo_id} has colour rows in {owner.get(photo_id)} and {path.name}"
            owner[photo_id] = path.name
    assert set(owner) == decodable
    colours = DataStore(DataLayout(data)).read_all("color_histograms", columns=["photo_id", "rank"])
    ranks: dict[str, list[int]] = {}
    for row in colours.to_pylist():
        ranks.setdefault(row["photo_id"], []).append(row["rank"])
    for photo_id, found in ranks.items():
        assert sorted(found) == list(range(1, len(found) + 1)), f"ranks of {photo_id}: {sorted(found)}"


def assert_faces_match_catalog(data: Path, library: Path) -> None:
    """Each catalogued portrait was scanned once, its faces found (every one of these photos shows a face), each
    face detected once and embedded once, and the scan's face count agrees with the detections."""
    photos = catalogued_photos(data)
    decodable = set(photos.filter(pc.is_null(photos["error"]))["photo_id"].to_pylist())
    store = DataStore(DataLayout(data))
    scans = store.read_all("_face_scans", columns=["photo_id", "faces"])
    assert sorted(scans["photo_id"].to_pylist()) == sorted(decodable)
    detections = store.read_all("face_detections", columns=["face_id", "photo_id"])
    embeddings = store.read_all("face_embeddings", columns=["face_id"])
    assert detections["face_id"].value_counts().to_pylist() == [
        {"values": face, "counts": 1} for face in detections["face_id"].to_pylist()
    ], "a face detected twice"
    assert sorted(embeddings["face_id"].to_pylist()) == sorted(detections["face_id"].to_pylist())
    found = {entry["values"]: entry["counts"] for entry in detections["photo_id"].value_counts().to_pylist()}
    assert {row["photo_id"]: row["faces"] for row in scans.to_pylist()} == {p: found.get(p, 0) for p in decodable}
    assert set(found) == decodable, f"{len(decodable) - len(found)} portraits recorded without a face"


def assert_people_match_faces(data: Path) -> None:
    """The current index holds exactly the embedded faces; every embedded face has one person; people add up."""
    embedded = set(DataStore(DataLayout(data)).read_all("face_embeddings", columns=["face_id"])["face_id"].to_pylist())
    index = load_index(DataLayout(data))
    assert index is not None and set(index.face_ids.tolist()) == embedded and len(index) == len(embedded)
    assert index.annoy.get_n_items() == len(embedded)
    faces = pq.read_table(DataLayout(data).people_faces)
    assert sorted(faces["face_id"].to_pylist()) == sorted(embedded)
    assert faces.filter(pc.is_null(faces["person_id"])).num_rows == 0
    people = pq.read_table(DataLayout(data).people)
    assert sum(people["faces"].to_pylist()) == faces.num_rows
    assert set(people["person_id"].to_pylist()) == set(faces["person_id"].to_pylist())


# -- libraries -----------------------------------------------------------------------------------------------------


def add_tiny_photos(library: Path, folder: str, first_seed: int) -> None:
    for seed in range(first_seed, first_seed + COLOUR_PHOTOS_PER_BATCH):
        write_photo(library / folder / f"photo_{seed:03d}.jpg", seed=seed, size=TINY_PHOTO_SIZE)


def add_portraits(library: Path, source: Path, start: int, count: int, folder: str) -> None:
    copy_portraits(source, library / folder, FACE_PEOPLE, slice(start, start + count))


@pytest.fixture(scope="module")
def faces_baseline(shared_dir: Path, tmp_path_factory) -> Path:
    """A finished `photo-assets run` (faces, index, people) on six real portraits of three people."""
    root = tmp_path_factory.mktemp("faces_baseline")
    setup = Setup(root / "library", root / "data", root / "home")
    add_portraits(setup.library, shared_dir / "faces" / "deepface", 0, FIRST_FACE_PHOTOS, "first")
    child = setup.run_to_end("run")
    assert child.process.returncode == 0, child.output[-3000:]
    return root


@pytest.fixture
def faces_setup(faces_baseline: Path, tmp_path: Path) -> Setup:
    """A private copy of the baseline (library, data, instance) for a test to break."""
    shutil.copytree(faces_baseline, tmp_path / "copy", symlinks=True)
    root = tmp_path / "copy"
    return Setup(root / "library", root / "data", root / "home")


# -- kill -9 -------------------------------------------------------------------------------------------------------


def test_colour_run_killed_while_replacing_a_batch_file_leaves_old_files_and_recovers(tmp_path: Path):
    setup = Setup(tmp_path / "library", tmp_path / "data", tmp_path / "home")
    add_tiny_photos(setup.library, "first", 0)
    assert setup.run_to_end("run", "--without-faces").process.returncode == 0
    before = parquet_files(setup.data)
    add_tiny_photos(setup.library, "second", COLOUR_PHOTOS_PER_BATCH)

    child = setup.start("run", "--without-faces", pause_at=str(setup.data / "color_histograms" / "*.parquet"))
    temporary = setup.paused_temporary(child)
    child.kill()

    assert "] batch " not in child.output and "done in" not in child.output  # the batch never finished
    assert_nothing_torn(setup.data)
    assert_kept_or_absent(before, setup.data)
    new_batch_file = temporary.parent / temporary.name[1:].rsplit(".", 2)[0]  # .<target>.<pid>.tmp
    assert new_batch_file.suffix == ".parquet" and not new_batch_file.exists()
    assert temporaries(setup.data) == [temporary]
    assert pq.read_table(temporary).num_rows > 0  # complete new bytes, just never switched in...
    old_colour_rows = sum(
        pq.read_table(io.BytesIO(payload)).num_rows for name, payload in before.items()
        if name.startswith("color_histograms/")
    )
    assert DataStore(DataLayout(setup.data)).read_all("color_histograms").num_rows == old_colour_rows  # ...nor read as data

    # The crash was a while ago: the next write of that file clears the dead writer's leftover.
    aged = time.time() - 2 * STALE_TEMPORARY_AGE_SECONDS
    os.utime(temporary, (aged, aged))
    again = setup.run_to_end("run", "--without-faces")
    assert again.process.returncode == 0, again.output[-3000:]
    assert "[1/1] batch " in again.output and ": ok (" in again.output  # the dead run's batch is picked up again
    assert_nothing_torn(setup.data)
    assert_kept_or_absent(before, setup.data)
    assert temporaries(setup.data) == []
    assert_colours_match_catalog(setup.data, setup.library)


def test_faces_run_killed_during_inference_recovers_every_face(faces_setup: Setup, shared_dir: Path):
    setup = faces_setup
    before = parquet_files(setup.data)
    add_portraits(setup.library, shared_dir / "faces" / "deepface", FIRST_FACE_PHOTOS, LATER_FACE_PHOTOS, "later")

    # Killed once the new photo's faces are found and embedded, as their crops are stored: before any output table.
    # (A kill some seconds into the step raced a step that now takes under a second.)
    child = setup.start("run", pause_at=str(setup.data / "face_crops" / "*" / "*.jpg"))
    setup.paused_temporary(child)
    run_id = wait_for_step_start(setup, child, "faces")
    child.kill()

    with setup.instance() as instance:
        assert "STEP_SUCCESS" not in step_events(instance, run_id, "faces")  # killed mid-work, not after it
    assert_nothing_torn(setup.data)
    assert_kept_or_absent(before, setup.data)

    again = setup.run_to_end("run")
    assert again.process.returncode == 0, again.output[-3000:]
    assert f"run {run_id} of a photo-assets process that died: marked failed" in again.output
    assert "people: ok" in again.output
    assert_nothing_torn(setup.data)
    assert_kept_or_absent(batch_files(before), setup.data)
    assert_faces_match_catalog(setup.data, setup.library)
    assert_people_match_faces(setup.data)


@pytest.mark.parametrize(
    "pause_at",
    [
        pytest.param("index-*.ann", id="annoy-file-written"),
        pytest.param(INDEX_POINTER, id="pointer-being-switched"),
    ],
)
def test_index_build_killed_while_written_keeps_the_old_index_and_recovers(faces_setup: Setup, pause_at: str):
    """The index is rebuilt by `photo-assets run` after a new batch; killed while written, the next `run` frees the
    dead run's pool slot (else it would wait for it for ever), sees the people behind the faces, and rebuilds."""
    setup = faces_setup
    index_dir = setup.data / INDEX_DIR
    old_pointer = (index_dir / INDEX_POINTER).read_bytes()
    old_faces = sorted(load_index(DataLayout(setup.data)).face_ids.tolist())
    # added_faces and near_duplicates may run before the index build that is killed, and rightly rewrite their files
    # for the new photos.
    before = {name: payload for name, payload in parquet_files(setup.data).items()
              if not name.startswith((f"{ADDED_FACES_DIR}/", f"{NEAR_DUPLICATES}/"))}
    add_tiny_photos(setup.library, "new", first_seed=0)

    child = setup.start("run", pause_at=str(index_dir / pause_at))
    setup.paused_temporary(child)
    child.kill()

    assert "people: " not in child.output and "[1/1] batch " in child.output
    assert (index_dir / INDEX_POINTER).read_bytes() == old_pointer
    old_index = load_index(DataLayout(setup.data))
    assert sorted(old_index.face_ids.tolist()) == old_faces and old_index.annoy.get_n_items() == len(old_faces)
    assert_nothing_torn(setup.data)
    assert_kept_or_absent(before, setup.data)

    again = setup.run_to_end("run")
    assert again.process.returncode == 0, again.output[-3000:]
    assert "of a photo-assets process that died: marked failed, its pool slots freed" in again.output
    assert "0 new batches" in again.output and "people: ok" in again.output
    assert json.loads((index_dir / INDEX_POINTER).read_text())["index_file"] != json.loads(old_pointer)["index_file"]
    assert len(list(index_dir.glob("index-*.ann"))) <= 2  # the new build and the one before: the killed build's gone
    assert_nothing_torn(setup.data)
    assert_people_match_faces(setup.data)


def test_faces_run_killed_between_its_output_files_recovers_every_face(faces_setup: Setup, shared_dir: Path):
    setup = faces_setup
    add_portraits(setup.library, shared_dir / "faces" / "deepface", FIRST_FACE_PHOTOS, LATER_FACE_PHOTOS, "later")
    child = setup.start("run", pause_at=str(setup.data / "face_detections" / "*.parquet"))
    setup.paused_temporary(child)
    child.kill()
    assert_nothing_torn(setup.data)

    again = setup.run_to_end("run")
    assert again.process.returncode == 0, again.output[-3000:]
    assert_faces_match_catalog(setup.data, setup.library)


# -- disk full -----------------------------------------------------------------------------------------------------


@contextmanager
def tiny_filesystem(folder: Path):
    """A tmpfs of TMPFS_SIZE mounted on `folder` (True), or False where mounting is not allowed (not root)."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = os.geteuid() == 0 and shutil.which("mount") is not None and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(folder)], capture_output=True
    ).returncode == 0
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(folder)], check=True)


def fill_up(folder: Path) -> Path:
    """Take every free byte of the filesystem holding `folder` (a dot-file: the datasets never read it)."""
    filler = folder / ".filler"
    with open(filler, "wb", buffering=0) as handle:
        for chunk in (64 * 1024, 4096, 512, 1):
            try:
                while True:
                    handle.write(b"\0" * chunk)
            except OSError as error:
                assert error.errno == errno.ENOSPC, error
    return filler


def limit_file_size() -> None:
    """In the child: a write past the limit fails with EFBIG (the signal would kill the process instead)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT_BYTES, FILE_SIZE_LIMIT_BYTES))


def test_full_disk_fails_the_run_clearly_keeps_old_outputs_and_recovers(tmp_path: Path):
    setup = Setup(tmp_path / "library", tmp_path / "data", tmp_path / "home")
    colour_dir = setup.data / "color_histograms"
    with tiny_filesystem(colour_dir) as mounted:
        add_tiny_photos(setup.library, "first", 0)
        first = setup.run_to_end("run", "--without-faces")
        assert first.process.returncode == 0, first.output[-3000:]
        before = parquet_files(setup.data)
        add_tiny_photos(setup.library, "second", COLOUR_PHOTOS_PER_BATCH)

        if mounted:
            filler = fill_up(colour_dir)
            full = setup.run_to_end("run", "--without-faces")
            assert "FAILED" in full.output and "color_histograms failed" in full.output, full.output[-3000:]
        else:
            full = setup.run_to_end("run", "--without-faces", preexec_fn=limit_file_size)
        assert full.process.returncode != 0, full.output[-3000:]
        assert any(message in full.output for message in SPACE_MESSAGES), full.output[-3000:]
        assert_nothing_torn(setup.data)
        assert_kept_or_absent(before, setup.data)
        assert temporaries(setup.data) == []  # a failed write removes its own temporary

        if mounted:
            filler.unlink()
        again = setup.run_to_end("run", "--without-faces")
        assert again.process.returncode == 0, again.output[-3000:]
        assert_nothing_torn(setup.data)
        assert_kept_or_absent(before, setup.data)
        assert_colours_match_catalog(setup.data, setup.library)
