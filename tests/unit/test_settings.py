"""Settings every process shares: generated secrets, the env override, topic prefixes."""

from __future__ import annotations

import stat

import pytest

from pipeline.settings import Settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    """No STREAMDESK_* variables or .env from the machine running the tests."""
    for name in ("STREAMDESK_JWT_SECRET", "STREAMDESK_SECRET_KEY", "STREAMDESK_TOPIC_PREFIX", "STREAMDESK_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_unset_jwt_secret_is_generated_once_into_the_data_dir_mode_0600(tmp_path):
    data = tmp_path / "data"
    key = Settings(data_dir=data).jwt_key()
    path = data / "jwt_secret"
    assert path.read_text().strip() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(key) >= 32


def test_generated_secret_is_shared_by_every_process_on_the_data_dir(tmp_path):
    first = Settings(data_dir=tmp_path).jwt_key()
    assert Settings(data_dir=tmp_path).jwt_key() == first
    assert Settings(data_dir=tmp_path).jwt_key() == first


def test_each_data_dir_gets_its_own_random_secret(tmp_path):
    assert Settings(data_dir=tmp_path / "a").jwt_key() != Settings(data_dir=tmp_path / "b").jwt_key()


def test_jwt_and_encryption_secrets_are_different(tmp_path):
    settings = Settings(data_dir=tmp_path)
    assert settings.jwt_key() != settings.fernet_key()


def test_env_var_wins_and_writes_no_file(monkeypatch, tmp_path):
    monkeypatch.setenv("STREAMDESK_JWT_SECRET", "from-the-environment")
    settings = Settings(data_dir=tmp_path)
    assert settings.jwt_key() == "from-the-environment"
    assert "from-the-environment" not in repr(settings)  # SecretStr
    assert not (tmp_path / "jwt_secret").exists()


def test_topic_prefix_is_applied_to_topics_and_groups(monkeypatch, tmp_path):
    monkeypatch.setenv("STREAMDESK_TOPIC_PREFIX", "t42.")
    settings = Settings(data_dir=tmp_path)
    assert settings.topic("calls.raw") == "t42.calls.raw"
    assert settings.group("calls-normalizer") == "streamdesk.t42.calls-normalizer"


def test_no_prefix_by_default(tmp_path):
    assert Settings(data_dir=tmp_path).topic("calls.raw.dlq") == "calls.raw.dlq"


def test_a_process_reads_its_generated_secret_once_not_on_every_request(tmp_path):
    """Every authenticated request asks for the key: it comes from memory after the first read, so a file
    replaced on disk takes effect only when each process restarts (documented in docs/security.md)."""
    first = Settings(data_dir=tmp_path).jwt_key()
    (tmp_path / "jwt_secret").write_text("replaced-while-running")
    assert Settings(data_dir=tmp_path).jwt_key() == first
    assert Settings(data_dir=tmp_path).fernet_key() != first
