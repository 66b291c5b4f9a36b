"""Configuration: defaults < TOML file (MES_CONFIG) < MES_* environment < create_app(mapping);
unknown keys and wrong types stop the start with a message naming them."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from mes import create_app
from mes.config import DEFAULTS, ConfigError, ensure_secret_key, load_config

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "config.example.toml"


def _toml(tmp_path: Path, text: str) -> str:
    path = tmp_path / "mes.toml"
    path.write_text(text)
    return str(path)


def test_defaults_apply_without_file_or_environment(tmp_path):
    config = load_config({"INSTANCE_PATH": str(tmp_path)}, environ={})
    assert config["PLANT_NAME"] == DEFAULTS["PLANT_NAME"]
    assert config["SESSION_LIFETIME_HOURS"] == 12
    assert config["WTF_CSRF_ENABLED"] is True
    assert config["DATABASE_URL"] == f"sqlite:///{tmp_path.resolve() / 'mes.db'}"


def test_toml_file_overrides_defaults(tmp_path):
    path = _toml(tmp_path, 'PLANT_NAME = "Hefei A1"\nSESSION_LIFETIME_HOURS = 8\n'
                           "SESSION_COOKIE_SECURE = true\n")
    config = load_config(environ={"MES_CONFIG": path})
    assert config["PLANT_NAME"] == "Hefei A1"
    assert config["SESSION_LIFETIME_HOURS"] == 8
    assert config["SESSION_COOKIE_SECURE"] is True
    assert config["LOT_NUMBER_PREFIX"] == DEFAULTS["LOT_NUMBER_PREFIX"]


def test_environment_overrides_file(tmp_path):
    path = _toml(tmp_path, 'PLANT_NAME = "Hefei A1"\nSESSION_LIFETIME_HOURS = 8\n')
    config = load_config(environ={"MES_CONFIG": path, "MES_PLANT_NAME": "Hefei B2",
                                  "MES_SESSION_LIFETIME_HOURS": "6", "MES_DB_ECHO": "off"})
    assert config["PLANT_NAME"] == "Hefei B2"
    assert config["SESSION_LIFETIME_HOURS"] == 6
    assert config["DB_ECHO"] is False


def test_create_app_mapping_overrides_environment_and_file(tmp_path, monkeypatch):
    path = _toml(tmp_path, 'PLANT_NAME = "From file"\nLOT_NUMBER_PREFIX = "F"\n'
                           "PASSWORD_MIN_LENGTH = 14\n")
    monkeypatch.setenv("MES_CONFIG", path)
    monkeypatch.setenv("MES_PLANT_NAME", "From environment")
    monkeypatch.setenv("MES_LOT_NUMBER_PREFIX", "E")
    app = create_app({"PLANT_NAME": "From mapping", "INSTANCE_PATH": str(tmp_path / "inst"),
                      "SECRET_KEY": "x" * 32, "DATABASE_URL": "sqlite://"})
    assert app.config["PLANT_NAME"] == "From mapping"
    assert app.config["LOT_NUMBER_PREFIX"] == "E"
    assert app.config["PASSWORD_MIN_LENGTH"] == 14


def test_unknown_key_in_file_is_refused_naming_it(tmp_path):
    path = _toml(tmp_path, 'DATABSE_URL = "sqlite:///x.db"\n')
    with pytest.raises(ConfigError, match="DATABSE_URL") as err:
        load_config(environ={"MES_CONFIG": path})
    assert path in str(err.value)


def test_lowercase_key_in_file_is_refused(tmp_path):
    path = _toml(tmp_path, 'plant_name = "Hefei"\n')
    with pytest.raises(ConfigError, match="plant_name"):
        load_config(environ={"MES_CONFIG": path})


def test_unknown_environment_variable_is_refused_naming_it():
    with pytest.raises(ConfigError, match="MES_DATABSE_URL"):
        load_config(environ={"MES_DATABSE_URL": "sqlite:///x.db"})


def test_unknown_key_in_create_app_mapping_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="SECRETKEY"):
        create_app({"SECRETKEY": "x", "INSTANCE_PATH": str(tmp_path)})


@pytest.mark.parametrize("line", [
    'SESSION_LIFETIME_HOURS = "x"',
    "SESSION_LIFETIME_HOURS = true",
    "SESSION_LIFETIME_HOURS = 1.5",
    'SESSION_COOKIE_SECURE = "maybe"',
    "PLANT_NAME = 5",
])
def test_wrong_type_in_file_is_refused_naming_the_key(tmp_path, line):
    key = line.split()[0]
    with pytest.raises(ConfigError, match=key):
        load_config(environ={"MES_CONFIG": _toml(tmp_path, line + "\n")})


def test_wrong_type_in_environment_is_refused_naming_the_variable():
    with pytest.raises(ConfigError, match="MES_LOGIN_MAX_FAILURES"):
        load_config(environ={"MES_LOGIN_MAX_FAILURES": "five"})


@pytest.mark.parametrize("key", ["UPLOAD_LIMIT_MIB", "GZIP_INFLATE_LIMIT_MIB"])
def test_upload_limits_below_1_mib_are_refused_naming_the_key(key):
    with pytest.raises(ConfigError, match=f"{key} must be at least 1"):
        load_config(environ={f"MES_{key}": "0"})
    assert load_config(environ={f"MES_{key}": "3"})[key] == 3


@pytest.mark.parametrize("country", ["cn", "CHN", "C1", ""])
def test_a_country_of_origin_not_two_capital_letters_is_refused(country):
    with pytest.raises(ConfigError, match="PLANT_COUNTRY must be two capital letters"):
        load_config({"PLANT_COUNTRY": country}, environ={})
    assert load_config({"PLANT_COUNTRY": "DE"}, environ={})["PLANT_COUNTRY"] == "DE"


def test_missing_config_file_is_named(tmp_path):
    missing = str(tmp_path / "nowhere.toml")
    with pytest.raises(ConfigError, match=re.escape(missing)):
        load_config(environ={"MES_CONFIG": missing})


def test_invalid_toml_is_refused_naming_the_file(tmp_path):
    path = _toml(tmp_path, "PLANT_NAME = 'unterminated\n")
    with pytest.raises(ConfigError, match="not valid TOML") as err:
        load_config(environ={"MES_CONFIG": path})
    assert path in str(err.value)


def test_secret_key_is_generated_once_and_reused(tmp_path):
    instance = tmp_path / "instance"
    first = load_config({"INSTANCE_PATH": str(instance)}, environ={})
    ensure_secret_key(first)
    second = load_config({"INSTANCE_PATH": str(instance)}, environ={})
    ensure_secret_key(second)
    key_file = instance / "secret_key"
    assert len(first["SECRET_KEY"]) == 64
    assert second["SECRET_KEY"] == first["SECRET_KEY"] == key_file.read_text().strip()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_generated_secret_key_survives_an_application_restart(tmp_path):
    config = {"INSTANCE_PATH": str(tmp_path / "inst"), "DATABASE_URL": "sqlite://"}
    assert create_app(config).secret_key == create_app(config).secret_key


def test_configured_secret_key_writes_no_file(tmp_path):
    config = load_config({"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "k" * 40}, environ={})
    ensure_secret_key(config)
    assert config["SECRET_KEY"] == "k" * 40
    assert not (tmp_path / "secret_key").exists()


def test_empty_secret_key_file_stops_the_start(tmp_path):
    (tmp_path / "secret_key").write_text("")
    config = load_config({"INSTANCE_PATH": str(tmp_path)}, environ={})
    with pytest.raises(ConfigError, match="secret_key"):
        ensure_secret_key(config)


@pytest.mark.parametrize("secret", ["short", "x" * 31, "é" * 15])
def test_a_configured_secret_key_shorter_than_32_bytes_stops_the_start(tmp_path, secret):
    with pytest.raises(ConfigError, match="SECRET_KEY") as err:
        create_app({"INSTANCE_PATH": str(tmp_path), "DATABASE_URL": "sqlite://",
                    "SECRET_KEY": secret})
    assert f"{len(secret.encode())} bytes" in str(err.value)
    assert "at least 32" in str(err.value)


def test_a_secret_key_of_32_bytes_is_accepted(tmp_path):
    # 16 two-byte characters are 32 bytes.
    app = create_app({"INSTANCE_PATH": str(tmp_path), "DATABASE_URL": "sqlite://",
                      "SECRET_KEY": "é" * 16})
    assert app.secret_key == "é" * 16


def test_a_short_secret_key_file_stops_the_start_naming_it(tmp_path):
    (tmp_path / "secret_key").write_text("0123456789\n")
    config = load_config({"INSTANCE_PATH": str(tmp_path)}, environ={})
    with pytest.raises(ConfigError, match="secret_key is 10 bytes"):
        ensure_secret_key(config)


def test_the_cli_refuses_a_short_secret_key_in_one_line_naming_the_setting(tmp_path):
    result = _mes_command(tmp_path, MES_SECRET_KEY="changeme")
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert result.returncode != 0
    assert len(lines) == 1, lines
    assert lines[0].startswith("Error: SECRET_KEY is 8 bytes long"), lines


def test_the_sqlite_database_and_its_journal_files_are_private(tmp_path):
    from sqlalchemy import text

    from mes.db import get_db

    app = create_app({"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "x" * 32})
    with get_db(app).engine.begin() as conn:
        conn.execute(text("CREATE TABLE probe (x INTEGER)"))
        conn.execute(text("INSERT INTO probe VALUES (1)"))
    files = {path.name: stat.S_IMODE(path.stat().st_mode)
             for path in tmp_path.glob("mes.db*")}
    assert files.keys() == {"mes.db", "mes.db-wal", "mes.db-shm"}, files
    assert set(files.values()) == {0o600}, files
    get_db(app).engine.dispose()


def test_an_existing_database_file_keeps_its_permissions(tmp_path):
    from mes.db import get_db

    database = tmp_path / "mes.db"
    database.touch(mode=0o640)
    database.chmod(0o640)
    app = create_app({"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "x" * 32})
    with get_db(app).engine.connect():
        pass
    assert stat.S_IMODE(database.stat().st_mode) == 0o640
    get_db(app).engine.dispose()


def _example_keys() -> set[str]:
    text = EXAMPLE.read_text()
    active = set(tomllib.loads(text))
    # A key shown commented out (SECRET_KEY) is documented too.
    commented = set(re.findall(r"^#\s*([A-Z][A-Z0-9_]*)\s*=", text, flags=re.MULTILINE))
    return active | commented


def test_every_configuration_key_is_documented_in_the_example():
    assert set(DEFAULTS) - _example_keys() == set()


def test_example_documents_no_unknown_key():
    assert _example_keys() - set(DEFAULTS) == set()


def test_example_file_loads_as_it_is():
    config = load_config(environ={"MES_CONFIG": str(EXAMPLE)})
    assert config["PLANT_NAME"] == DEFAULTS["PLANT_NAME"]


def _mes_command(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    mes = Path(sys.executable).with_name("mes")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MES_")}
    clean.update(MES_INSTANCE_PATH=str(tmp_path / "instance"), **env)
    return subprocess.run([str(mes), "db", "check"], env=clean, capture_output=True,
                          text=True, timeout=60)


def test_cli_with_unknown_key_prints_one_line_and_fails(tmp_path):
    result = _mes_command(tmp_path, MES_CONFIG=_toml(tmp_path, 'DATABSE_URL = "x"\n'))
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert result.returncode != 0
    assert len(lines) == 1, lines
    assert lines[0].startswith("Error: ") and "DATABSE_URL" in lines[0]


def test_cli_with_invalid_toml_prints_one_line_and_fails(tmp_path):
    result = _mes_command(tmp_path, MES_CONFIG=_toml(tmp_path, "PLANT_NAME = \n"))
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert result.returncode != 0
    assert len(lines) == 1, lines
    assert lines[0].startswith("Error: ") and "Traceback" not in result.stderr
