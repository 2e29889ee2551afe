"""Package discovery for the ``threadline.<folder>`` layout.

Everything about the distribution lives in ``pyproject.toml``; this file exists only because
setuptools' declarative ``packages.find`` names packages after their path, so it cannot turn the
root folder ``services/web/admin`` into ``threadline.services.web.admin``. A hand-written list did,
and a forgotten sub-package then shipped a wheel that could not start. Here the mapping of each root
folder stays in ``pyproject.toml`` (``[tool.setuptools.package-dir]``) and every directory below a
mapped folder is found and shipped: Python packages, and data directories (templates, static files,
message catalogues) as namespace packages so that setuptools ships their files without warning that
an importable directory is missing from ``packages``. Which data files go in is ``package-data``'s
business; ``tests/``, ``bench/`` and the rest of the root are never mapped, so never shipped.
"""

import tomllib
from pathlib import Path

from setuptools import find_namespace_packages, setup

ROOT = Path(__file__).resolve().parent


def discover() -> list[str]:
    """Every package under each mapped root folder, named ``<mapped name>.<sub.path>``."""
    with (ROOT / "pyproject.toml").open("rb") as file:
        package_dir: dict[str, str] = tomllib.load(file)["tool"]["setuptools"]["package-dir"]
    packages: list[str] = []
    for name, folder in sorted(package_dir.items()):
        packages.append(name)
        found = find_namespace_packages(
            where=str(ROOT / folder), exclude=["__pycache__", "*.__pycache__"]
        )
        packages.extend(f"{name}.{sub}" for sub in sorted(found))
    return packages


setup(packages=discover())
