"""The domain's three parts keep apart: the model knows neither commands nor infrastructure.

The model (aggregates, events, values, pure rules) must be readable and testable
without a store; infrastructure (group commit, units of work, recorders) must not
decide business rules, so it may use only the model's errors; commands load,
decide through the model, and append through the infrastructure.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

DOMAIN = Path(__file__).resolve().parents[2] / "domain"
ALLOWED = {
    "model": {"model"},
    "infrastructure": {"infrastructure", "model.errors"},
    "commands": {"commands", "infrastructure", "model"},
}


def imports_of(path: Path) -> set[str]:
    """The `threadline.domain.*` modules a file imports, without the prefix."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        found |= {
            n.removeprefix("threadline.domain.")
            for n in names
            if n.startswith("threadline.domain.")
        }
    return found


@pytest.mark.parametrize("part", sorted(ALLOWED))
def test_a_part_of_the_domain_imports_only_what_it_may(part: str) -> None:
    wrong = [
        f"{path.relative_to(DOMAIN)} imports threadline.domain.{name}"
        for path in sorted((DOMAIN / part).glob("*.py"))
        for name in sorted(imports_of(path))
        if not any(name == ok or name.startswith(f"{ok}.") for ok in ALLOWED[part])
    ]
    assert not wrong, "\n".join(wrong)


def test_model_modules_hold_no_commands() -> None:
    """A model module defines no `...Commands` mixin and takes no unit of work."""
    for path in sorted((DOMAIN / "model").glob("*.py")):
        text = path.read_text()
        assert "Commands" not in text.replace("commands.", ""), path.name
        assert "UnitOfWork" not in text, path.name
