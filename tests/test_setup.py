"""The set-up the Makefile gives: `make run` installs what serving needs and no test extras,
`make test` (also after `make run`) installs the test extras, each install has its own
stamp, and pytest lists the skipped tests with their reasons. Checked with `make -n` (what
make would run) in a copy of the Makefile beside a stand-in virtual environment."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("#!/bin/sh\nexit 0\n")
    python.chmod(0o755)
    # The virtual environment is newer than pyproject.toml, as after its creation.
    old = time.time() - 60
    os.utime(tmp_path / "pyproject.toml", (old, old))
    return tmp_path


def _plan(checkout: Path, *args: str) -> str:
    done = subprocess.run(["make", "-n", *args], cwd=checkout, capture_output=True,
                          text=True, check=True, timeout=30)
    return done.stdout


def _installs(plan: str) -> list[str]:
    return [line.strip() for line in plan.splitlines() if "pip install" in line
            and "--upgrade pip" not in line]


def test_make_run_installs_the_application_without_the_test_extras(checkout):
    plan = _plan(checkout, "run")
    assert _installs(plan) == [".venv/bin/python -m pip install -q -e ."]
    assert "mes serve --host 127.0.0.1 --port 5000" in plan
    assert "mes worker &" in plan  # beside the server, stopped with it
    assert "--host 0.0.0.0 --port 8000" in _plan(checkout, "run", "HOST=0.0.0.0", "PORT=8000")


def test_make_test_after_make_run_still_installs_the_test_extras(checkout):
    (checkout / ".venv" / ".installed-run").touch()
    assert _installs(_plan(checkout, "run")) == []
    for target in ("test", "fuzz", "browser", "lint", "typecheck", "install"):
        assert _installs(_plan(checkout, target)) == [
            ".venv/bin/python -m pip install -q -e '.[test]'"], target
    (checkout / ".venv" / ".installed-test").touch()
    assert _installs(_plan(checkout, "test")) == []
    # A changed pyproject.toml installs again, each kind its own.
    future = time.time() + 60
    os.utime(checkout / "pyproject.toml", (future, future))
    assert len(_installs(_plan(checkout, "run"))) == 1
    assert len(_installs(_plan(checkout, "test"))) == 1


def test_the_test_extras_are_only_in_the_test_extra_and_pytest_reports_skips():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = {dep.split(">")[0].split("[")[0] for dep in project["optional-dependencies"]["test"]}
    serving = {dep.split(">")[0].split("[")[0].split("<")[0]
               for dep in project["dependencies"]}
    assert {"pytest", "playwright", "schemathesis", "mypy", "ruff"} <= extras
    assert not extras & serving
    addopts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"][
        "ini_options"]["addopts"]
    assert "-rs" in addopts.split()
