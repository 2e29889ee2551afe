"""The README must document every setting the code reads, and open with the two commands."""

from __future__ import annotations

import re
from pathlib import Path

from threadline.services.config import SETTINGS

ROOT = Path(__file__).resolve().parents[2]
SOURCE_DIRS = ("domain", "channels", "projections", "triggers", "services", "bench")


def test_readme_opens_with_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    first_block = readme.split("```")[1]
    assert "make run" in first_block and "make test" in first_block


def test_every_setting_read_by_the_code_is_in_the_readme_table() -> None:
    readme = (ROOT / "README.md").read_text()
    documented = {name for name, _, _ in SETTINGS}
    used: set[str] = set()
    for folder in SOURCE_DIRS:
        for path in (ROOT / folder).rglob("*.py"):
            used |= set(re.findall(r"THREADLINE_[A-Z_]+[A-Z]", path.read_text()))
    assert used <= documented, f"undocumented settings: {sorted(used - documented)}"
    for name in documented:
        assert f"| `{name}` |" in readme, f"{name} missing from the README table"
