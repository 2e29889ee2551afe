"""The wheel as a user gets it: built, installed in a new virtual environment, started.

Everything else in the suite imports Threadline from the source tree (the editable install), where
a package the wheel forgot is still there. Only an install from the wheel shows what `pip install .`
and the Docker image really contain: a sub-package missing from the wheel once made both fail at
start (`threadline.services.web.admin`). The new environment gets the wheel alone; its
dependencies come from the test's own environment through a `.pth` line, so nothing is
downloaded, and the source tree is never on its import path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import httpx
import pytest
import server_process
from server_process import ServerProcess

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_FOLDERS = ("domain", "channels", "projections", "triggers", "services")
"""The root folders installed as `threadline.<folder>` (pyproject.toml's package-dir)."""
DATA_SUFFIXES = (".py", ".html", ".js", ".css", ".po", ".txt", ".typed")
"""Every file with one of these suffixes under a package folder is read at run time."""
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "var", "build", "dist", "*.egg-info", "__pycache__", "*.pyc",
    ".hypothesis", ".mypy_cache", ".ruff_cache", ".pytest_cache", "artifacts", "results",
)  # fmt: skip
STEP_TIMEOUT = 120.0
"""Bound of one subprocess step (a build is a few seconds; a loaded machine may need more)."""


def run(*command: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run a step to completion (bounded); fail with its output if it fails."""
    result = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            f"{command} exited {result.returncode}\n--- stdout ---\n{result.stdout}\n"
            f"--- stderr ---\n{result.stderr}"
        )
    return result.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built from a copy of the tree.

    A copy, because setuptools builds in place and keeps `build/lib` between builds: a module
    deleted from the tree would still ship from there, and two runs would share it.
    The build uses this environment's setuptools (no isolation), so it downloads nothing.
    """
    base = tmp_path_factory.mktemp("wheel")
    source = base / "source"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    out = base / "dist"
    run(
        sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
        "--no-index", "--wheel-dir", out, ".",
        cwd=source,
    )  # fmt: skip
    (built,) = out.glob("threadline-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtual environment holding the wheel; dependencies are this environment's."""
    target = tmp_path_factory.mktemp("venv") / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", target, cwd=target.parent)
    python = target / "bin" / "python"
    run(
        sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index",
        wheel,
        cwd=target.parent,
    )  # fmt: skip
    purelib = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))",
                       cwd=target.parent).strip())  # fmt: skip
    # Appended after the venv's own site-packages: the wheel's `threadline` is found first, and
    # the .pth files over there (the editable install's import hook) are not run.
    ours = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    (purelib / "zz_dependencies.pth").write_text("\n".join(sorted(ours)) + "\n")
    return target


def venv_env(venv: Path) -> dict[str, str]:
    """The environment of a command in the new venv: nothing pointing at the source tree."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


def test_the_wheel_holds_every_module_and_data_file_and_nothing_else(wheel: Path) -> None:
    """Each .py and run-time data file under a package folder is in the wheel, named
    `threadline/<folder>/...`; tests, benchmarks and the root's files are not."""
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        f"threadline/{path.relative_to(ROOT).as_posix()}"
        for folder in PACKAGE_FOLDERS
        for path in (ROOT / folder).rglob("*")
        if path.is_file() and path.suffix in DATA_SUFFIXES and "__pycache__" not in path.parts
    }
    assert "threadline/services/web/admin/__init__.py" in expected  # the one once forgotten
    assert not expected - names, f"missing from the wheel: {sorted(expected - names)}"
    strays = {n for n in names if not n.startswith(("threadline/", "threadline-"))}
    assert not strays, f"not ours to ship: {sorted(strays)}"
    assert not {n for n in names if n.startswith(("threadline/tests/", "threadline/bench/"))}


def test_the_installed_wheel_serves_health_pages_and_static_files(
    venv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`threadline serve` from the new venv answers /healthz, the login page and a static file,
    with every module and template loaded from the venv, none from the source tree."""
    where = run(
        venv / "bin" / "python", "-c",
        "import threadline.services.web.admin as a, threadline.services.web as w;"
        "print(a.__file__); print(w.__file__)",
        cwd=tmp_path, env=venv_env(venv),
    )  # fmt: skip
    for line in where.split():
        assert Path(line).is_relative_to(venv), f"imported from outside the venv: {line}"

    monkeypatch.setenv("PATH", venv_env(venv)["PATH"])
    monkeypatch.delenv("PYTHONPATH", raising=False)
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)
    # The helper starts the console script beside the running interpreter; here, the venv's.
    monkeypatch.setattr(
        server_process, "threadline_executable", lambda: str(venv / "bin/threadline")
    )
    server = ServerProcess(f"sqlite:///{tmp_path}/threadline.db", tmp_path / "server")
    # `server` has answered /healthz with 200 once entered; base_url is known only then
    with server, httpx.Client(base_url=server.base_url, timeout=10.0) as client:
        login = client.get("/login")
        assert login.status_code == 200, login.text
        assert "<form" in login.text
        css = client.get("/static/app.css")
        assert css.status_code == 200
        assert css.content == (ROOT / "services/web/static/app.css").read_bytes()
        assert client.get("/healthz").json()["status"] == "ok"
