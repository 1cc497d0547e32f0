"""``make dist`` builds the wheel without the dev environment (no Airflow, test or lint tools).

``make -n -B dist`` prints every command ``make dist`` would run on a fresh clone (``-B``: as if
nothing were built yet). The built artefacts themselves are checked in test_packaging.py.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.mark.skipif(shutil.which("make") is None, reason="make is part of the documented set-up")
def test_make_dist_needs_only_a_small_build_venv(tmp_path: Path) -> None:
    proc = subprocess.run(
        ["make", "-C", str(ROOT), "-n", "-B", "dist", f"BUILD_VENV={tmp_path / 'bv'}", f"DIST={tmp_path}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    commands = proc.stdout
    assert "-m build --outdir" in commands
    assert "pip install -q --upgrade pip build" in commands  # build (and pip) only
    assert "apache-airflow" not in commands
    assert "[dev]" not in commands
    assert "/.venv/" not in commands and ".venv/bin" not in commands.replace(str(tmp_path / "bv"), "")
