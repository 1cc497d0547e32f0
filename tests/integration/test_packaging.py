"""The built wheel and sdist: the package with py.typed and the provider entry points, no tests."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """``make dist`` (what the README tells a user to run), with this interpreter, into a temp dir."""
    out = tmp_path_factory.mktemp("dist")
    if shutil.which("make"):
        # STAMP= : this interpreter's environment is already set up, don't (re)create a venv
        command = [
            "make",
            "-C",
            str(ROOT),
            "dist",
            "STAMP=",
            f"BIN={Path(sys.executable).parent}",
            f"DIST={out}",
        ]
    else:  # pragma: no cover - make is part of the documented set-up
        command = [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
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


def test_the_built_wheel_installs_with_pip_as_the_readme_says(dist, tmp_path):
    """README: ``pip install dist/airflow_provider_exotel-*.whl`` — into a fresh venv that sees this
    environment's Airflow (``--system-site-packages``), so only our wheel is installed."""
    (wheel,) = dist.glob("airflow_provider_exotel-*.whl")
    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=300
    )
    python = venv / "bin" / "python"
    pip = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert pip.returncode == 0, pip.stdout[-2000:] + pip.stderr[-2000:]
    probe = subprocess.run(
        [
            str(python),
            "-c",
            "import airflow_provider_exotel as p, importlib.metadata as m;"
            "print(p.__file__); print(m.version('airflow-provider-exotel'))",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert probe.returncode == 0, probe.stderr[-2000:]
    location, version = probe.stdout.split()
    assert location.startswith(str(venv)), location  # the wheel's copy, not the checkout
    assert wheel.name.startswith(f"airflow_provider_exotel-{version}-")
