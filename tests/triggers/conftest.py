"""What the trigger tests share: a runtime with the rules running."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import make_runtime
from threadline.services.runtime import Runtime


@pytest.fixture
def engine(database_url: str, tmp_path: Path) -> Iterator[Runtime]:
    """A runtime on the test's database with the trigger runner started."""
    runtime = make_runtime(database_url, attachments_dir=str(tmp_path / "a"))
    runtime.start_triggers()
    try:
        yield runtime
    finally:
        runtime.close()
