"""Every test process shares one built copy of the local embedding model (data/models, as `make up` uses)."""

from __future__ import annotations

import os
from pathlib import Path


def pytest_configure() -> None:
    os.environ.setdefault("STREAMDESK_MODELS_DIR", str(Path(__file__).resolve().parent.parent / "data" / "models"))
