"""A materializer over a real DuckDB file with every sink, written to directly (no broker): `m._write(...)`."""

from __future__ import annotations

import pytest

from pipeline.settings import Settings
from pipeline.storage.db import connect
from pipeline.storage.materializer import Materializer
from pipeline.storage.sinks import platform_sinks


@pytest.fixture
def materializer(tmp_path):
    settings = Settings(kafka_bootstrap="127.0.0.1:1", data_dir=tmp_path)
    con = connect(settings.db_path)
    m = Materializer(settings, con, platform_sinks(settings))
    m.cluster_id = "cluster-a"
    yield m
    con.close()
