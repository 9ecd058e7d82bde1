"""The definitions load, and load fast: no TensorFlow at import time."""

import subprocess
import sys
from pathlib import Path

import dagster as dg

from photo_assets.definitions import defs


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
