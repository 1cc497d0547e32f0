"""The built wheel and sdist: the package with py.typed and the provider entry points, no tests."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


def test_wheel_holds_the_package_typed_with_entry_points_and_no_tests(dist):
    (wheel,) = dist.glob("airflow_provider_exotel-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "airflow_provider_exotel/py.typed" in names
    for module in (
        "hooks/contacts.py",
        "operators/contacts.py",
        "sensors/contacts.py",
        "triggers/contacts.py",
        "testing/simulator.py",
        "testing/pytest_plugin.py",
        "get_provider_info.py",
    ):
        assert f"airflow_provider_exotel/{module}" in names
    assert not [n for n in names if n.startswith(("tests/", "example_dags/", "benchmarks/"))]
    entry_points = (
        zipfile.ZipFile(wheel)
        .read(next(n for n in names if n.endswith(".dist-info/entry_points.txt")))
        .decode()
    )
    assert "[apache_airflow_provider]" in entry_points
    assert "airflow_provider_exotel.get_provider_info:get_provider_info" in entry_points
    assert "[pytest11]" in entry_points


def test_sdist_holds_the_package_and_readme_but_no_tests(dist):
    (sdist,) = dist.glob("airflow_provider_exotel-*.tar.gz")
    names = [n.split("/", 1)[1] for n in tarfile.open(sdist).getnames() if "/" in n]
    assert "airflow_provider_exotel/py.typed" in names
    assert "README.md" in names and "pyproject.toml" in names
    assert not [n for n in names if n.startswith(("tests/", "example_dags/", "benchmarks/"))]
