"""The definitions load, and load fast: no TensorFlow at import time; the settings pick the executor."""

import subprocess
import sys
from pathlib import Path

import dagster as dg
from dagster_celery.tags import DAGSTER_CELERY_QUEUE_TAG

from photo_assets import settings
from photo_assets.assets.faces import faces
from photo_assets.assets.names import FACES_QUEUE
from photo_assets.definitions import build_definitions, defs


def test_definitions_validate():
    repository = defs.get_repository_def()
    assert repository.assets_defs_by_key
    assert dg.AssetKey("photos") in repository.assets_defs_by_key


def test_definitions_import_without_tensorflow():
    code = "import sys, photo_assets.definitions; print('tensorflow' in sys.modules)"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "False"


def test_dagster_cli_validates_the_project_from_the_repo_root():
    """`dagster dev` and `dagster definitions validate` find the same Definitions via workspace.yaml/pyproject."""
    root = Path(__file__).resolve().parents[2]
    dagster = str(Path(sys.executable).parent / "dagster")
    result = subprocess.run([dagster, "definitions", "validate"], cwd=root, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Validation successful for code location photo_assets" in result.stdout + result.stderr


def test_a_celery_broker_sends_every_job_to_celery_and_the_face_step_to_its_queue(monkeypatch):
    """The real broker, workers and runs are in test_celery.py; here only the choice the settings make."""
    monkeypatch.setenv(settings.CELERY_BROKER_ENV, "redis://broker.lan:6379/0")
    config = settings.Settings.from_env()
    assert config.celery_backend == config.celery_broker  # unset, the results come back through the broker
    celery_defs = build_definitions(config)
    for job in defs.jobs:
        assert defs.resolve_job_def(job.name).executor_def.name != "celery", job.name
        assert celery_defs.resolve_job_def(job.name).executor_def.name == "celery", job.name
    assert faces.op.tags[DAGSTER_CELERY_QUEUE_TAG] == FACES_QUEUE
