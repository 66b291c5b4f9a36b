"""The audit key: kept outside the database, generated once into the instance folder unless
configured (MES_AUDIT_KEY), and long enough not to be guessed."""

from __future__ import annotations

import stat

import pytest

from mes import create_app
from mes.config import ConfigError, ensure_audit_key, load_config


def test_audit_key_is_generated_once_into_the_instance_folder(tmp_path):
    instance = tmp_path / "instance"
    first = load_config({"INSTANCE_PATH": str(instance)}, environ={})
    ensure_audit_key(first)
    second = load_config({"INSTANCE_PATH": str(instance)}, environ={})
    ensure_audit_key(second)
    key_file = instance / "audit_key"
    assert len(first["AUDIT_KEY"]) == 64
    assert second["AUDIT_KEY"] == first["AUDIT_KEY"] == key_file.read_text().strip()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_the_application_keys_its_sessions_with_the_generated_key(tmp_path):
    from mes.db import get_db

    config = {"INSTANCE_PATH": str(tmp_path / "inst"), "DATABASE_URL": "sqlite://",
              "SECRET_KEY": "s" * 40}
    app = create_app(config)
    key = (tmp_path / "inst" / "audit_key").read_text().strip().encode()
    assert get_db(app).info["audit"].key == key
    assert get_db(create_app(config)).info["audit"].key == key


def test_audit_key_from_the_environment_writes_no_file(tmp_path):
    config = load_config({"INSTANCE_PATH": str(tmp_path)},
                         environ={"MES_AUDIT_KEY": "k" * 40})
    ensure_audit_key(config)
    assert config["AUDIT_KEY"] == "k" * 40
    assert not (tmp_path / "audit_key").exists()


def test_a_short_audit_key_stops_the_start_naming_the_setting(tmp_path):
    config = load_config({"INSTANCE_PATH": str(tmp_path), "AUDIT_KEY": "short"}, environ={})
    with pytest.raises(ConfigError, match="AUDIT_KEY must be at least 32 bytes"):
        ensure_audit_key(config)


def test_an_empty_audit_key_file_stops_the_start(tmp_path):
    (tmp_path / "audit_key").write_text("")
    config = load_config({"INSTANCE_PATH": str(tmp_path)}, environ={})
    with pytest.raises(ConfigError, match="audit_key"):
        ensure_audit_key(config)
