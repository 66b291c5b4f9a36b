"""Configuration: code defaults, then the TOML file named by MES_CONFIG, then MES_* variables.

Keys are UPPERCASE (Flask ignores lowercase keys). An unknown key is an error, never a silent
no-op, so a typo in a plant's config file stops the start instead of being ignored.
"""

from __future__ import annotations

import os
import secrets
import tempfile
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any


class ConfigError(Exception):
    """The configuration cannot be used; the message names the key or file."""


def _default_instance_path() -> str:
    return str(Path.cwd() / "instance")


# Every key the application understands, with its default and type. config.example.toml
# documents each one; tests/test_config.py fails when the two drift apart.
DEFAULTS: dict[str, Any] = {
    "INSTANCE_PATH": None,  # resolved at load time
    "DATABASE_URL": None,  # default: sqlite in the instance folder
    "SECRET_KEY": None,  # default: generated once into the instance folder
    "PLANT_NAME": "MES-lite demo plant",
    "PLANT_TIMEZONE": "Asia/Shanghai",
    # Country of origin on the 2D labels (data identifier 4L): ISO 3166-1 alpha-2.
    "PLANT_COUNTRY": "CN",
    "DEFAULT_LOCALE": "en",
    "SESSION_COOKIE_SECURE": True,  # off in debug and test mode (mes.create_app)
    "SESSION_LIFETIME_HOURS": 12,
    "LOT_NUMBER_PREFIX": "L",
    "AUDIT_KEY": None,  # default: generated once into the instance folder
    "AUDIT_CHECKPOINT_RECORDS": 1000,
    "AUDIT_CHECKPOINT_MINUTES": 60,
    "LOGIN_MAX_FAILURES": 5,
    "LOGIN_FAILURE_WINDOW_MINUTES": 15,
    "PASSWORD_MIN_LENGTH": 12,
    "UPLOAD_LIMIT_MIB": 64,
    "GZIP_INFLATE_LIMIT_MIB": 512,
    "DB_POOL_SIZE": 5,
    "PORTAL_CYCLE_TIME_CACHE_SECONDS": 300,
    # When customers see a hold on their lots: "delay" (PORTAL_HOLD_DELAY_MINUTES after it
    # was placed) or "notify" (only once QA notifies them); QA's notice shows it at once.
    "PORTAL_HOLD_POLICY": "delay",
    "PORTAL_HOLD_DELAY_MINUTES": 240,
    "REPORT_CACHE_SECONDS": 60,
    # The shortest notice a product change notification gives (days before the change
    # applies to a customer who has not answered; JEDEC J-STD-046: 90).
    "PCN_NOTICE_DAYS": 90,
    # When a complaint's 8D steps are due, counted from the complaint's receipt: D0 to D3
    # (containment) within COMPLAINT_D3_HOURS, D4 and D5 (root cause, corrective actions)
    # within COMPLAINT_D5_DAYS, D6 to D8 within COMPLAINT_D8_DAYS.
    "COMPLAINT_D3_HOURS": 24,
    "COMPLAINT_D5_DAYS": 10,
    "COMPLAINT_D8_DAYS": 60,
    # The worker (`mes worker`): how often it looks for new events and due deliveries, how
    # long it waits for a customer's endpoint, and how it retries (docs/events.md).
    "WORKER_POLL_MS": 250,
    "WEBHOOK_TIMEOUT_SECONDS": 10,
    "WEBHOOK_BACKOFF_BASE_MS": 5000,
    "WEBHOOK_BACKOFF_CAP_SECONDS": 3600,
    "WEBHOOK_MAX_AGE_SECONDS": 86400,
    "WEBHOOK_ALLOW_PRIVATE_URLS": False,
    # Commonality: the base is every lot shipped from this many days before the complained
    # lots' first shipment to this many days after their last.
    "COMMONALITY_BASE_DAYS": 14,
    # Failure analysis of returned units: the steps (codes, comma-separated, in order) and
    # the largest file an analysis step takes (images, PDF; kept in the database).
    "FA_STEPS": "electrical_verification,xray,acoustic_microscopy,decap,cross_section",
    "FA_ATTACHMENT_LIMIT_MIB": 10,
    # Completion forecasts (docs/forecasting.md): the history window of step and hold
    # durations, the fewest durations a step or reason needs before its own history is
    # used, the defaults without history, the samples drawn, how old a forecast may grow
    # before it is recomputed, how often the distributions are rebuilt, and the change of
    # a lot's P90 that is announced (lot.eta.changed).
    "FORECAST_WINDOW_DAYS": 90,
    "FORECAST_MIN_SAMPLES": 10,
    "FORECAST_DEFAULT_STEP_HOURS": 24,
    "FORECAST_DEFAULT_HOLD_HOURS": 48,
    "FORECAST_SAMPLES": 500,
    "FORECAST_MAX_AGE_MINUTES": 60,
    "FORECAST_DISTRIBUTION_MAX_AGE_HOURS": 24,
    "FORECAST_ETA_CHANGE_HOURS": 24,
    "DB_ECHO": False,
    "TESTING": False,
    "WTF_CSRF_ENABLED": True,
}

# The type of each key is the type of its default; keys defaulting to None are strings.
_TYPES: dict[str, type] = {key: str if value is None else type(value)
                           for key, value in DEFAULTS.items()}

# Limits that must be at least 1.
_POSITIVE = ("UPLOAD_LIMIT_MIB", "GZIP_INFLATE_LIMIT_MIB", "PCN_NOTICE_DAYS", "WORKER_POLL_MS",
             "WEBHOOK_TIMEOUT_SECONDS", "WEBHOOK_BACKOFF_BASE_MS",
             "WEBHOOK_BACKOFF_CAP_SECONDS", "WEBHOOK_MAX_AGE_SECONDS",
             "COMPLAINT_D3_HOURS", "COMPLAINT_D5_DAYS", "COMPLAINT_D8_DAYS",
             "COMMONALITY_BASE_DAYS", "FA_ATTACHMENT_LIMIT_MIB",
             "FORECAST_WINDOW_DAYS", "FORECAST_MIN_SAMPLES", "FORECAST_DEFAULT_STEP_HOURS",
             "FORECAST_DEFAULT_HOLD_HOURS", "FORECAST_SAMPLES", "FORECAST_MAX_AGE_MINUTES",
             "FORECAST_DISTRIBUTION_MAX_AGE_HOURS", "FORECAST_ETA_CHANGE_HOURS")
# Keys whose value is one of a few words.
_CHOICES = {"PORTAL_HOLD_POLICY": ("delay", "notify")}

# Variables read from the environment but not configuration keys themselves (the test
# suite's and the benchmarks' databases, the folders of the real STDF files: the shared ones
# and the external corpus of tests/data/stdf/external.csv).
_ENV_IGNORED = {"MES_CONFIG", "MES_TEST_DATABASE_URL", "MES_BENCH_DATABASE_URL",
                "MES_STDF_DATA", "MES_STDF_CORPUS"}


def _coerce(key: str, value: Any, source: str) -> Any:
    wanted = _TYPES[key]
    if value is None:
        return value
    if wanted is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in {"1", "true", "yes", "on"}:
            return True
        if text in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"{source}: {key} must be true or false, not {value!r}")
    if wanted is str:
        if isinstance(value, os.PathLike):
            return os.fspath(value)
        if isinstance(value, str):
            return value
    # TOML keeps types: true or 1.5 for a whole number is a mistake, not a 1.
    elif not isinstance(value, bool | float):
        try:
            return wanted(value)
        except (TypeError, ValueError):
            pass
    raise ConfigError(f"{source}: {key} must be {wanted.__name__}, not {value!r}")


def _check_keys(mapping: Mapping[str, Any], source: str) -> None:
    for key in mapping:
        if key not in DEFAULTS:
            raise ConfigError(f"{source}: unknown configuration key {key}")


def load_config(overrides: Mapping[str, Any] | None = None,
                environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Merge defaults, the MES_CONFIG file, MES_* variables and explicit overrides.

    Raises ConfigError naming the key when a key is unknown or has the wrong type, or naming
    the file when it is missing or not valid TOML.
    """
    env = os.environ if environ is None else environ
    config = dict(DEFAULTS)

    path = env.get("MES_CONFIG")
    if path:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"MES_CONFIG: no such file {path}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc})") from None
        _check_keys(data, path)
        config.update({k: _coerce(k, v, path) for k, v in data.items()})

    for name, value in env.items():
        if not name.startswith("MES_") or name in _ENV_IGNORED:
            continue
        key = name[4:]
        _check_keys({key: value}, f"environment variable {name}")
        config[key] = _coerce(key, value, f"environment variable {name}")

    if overrides:
        _check_keys(overrides, "create_app()")
        config.update({k: _coerce(k, v, "create_app()") for k, v in overrides.items()})

    for key in _POSITIVE:
        if config[key] < 1:
            raise ConfigError(f"{key} must be at least 1, not {config[key]}")
    for key, allowed in _CHOICES.items():
        if config[key] not in allowed:
            raise ConfigError(f"{key} must be one of {', '.join(allowed)}, not "
                              f"{config[key]!r}")
    country = config["PLANT_COUNTRY"]
    if not (len(country) == 2 and country.isascii() and country.isalpha()
            and country.isupper()):
        raise ConfigError(f"PLANT_COUNTRY must be two capital letters (ISO 3166-1), not "
                          f"{country!r}")
    if config["PORTAL_HOLD_DELAY_MINUTES"] < 0:
        raise ConfigError("PORTAL_HOLD_DELAY_MINUTES must be at least 0, not "
                          f"{config['PORTAL_HOLD_DELAY_MINUTES']}")

    instance = Path(config["INSTANCE_PATH"] or _default_instance_path()).resolve()
    config["INSTANCE_PATH"] = str(instance)
    if not config["DATABASE_URL"]:
        config["DATABASE_URL"] = f"sqlite:///{instance / 'mes.db'}"
    return config


# Shortest secret key accepted, in bytes (of its UTF-8 text): the generated one is 64 hex
# characters, 32 random bytes.
SECRET_KEY_MIN_BYTES = 32


def _check_secret_strength(secret: str, source: str) -> None:
    length = len(secret.encode("utf-8"))
    if length < SECRET_KEY_MIN_BYTES:
        raise ConfigError(
            f"{source} is {length} bytes long; it must be at least {SECRET_KEY_MIN_BYTES} "
            "(make one with: python3 -c 'import secrets; print(secrets.token_hex(32))', "
            "or leave SECRET_KEY unset to use one generated into the instance folder)")


def ensure_secret_key(config: dict[str, Any]) -> None:
    """Use the configured secret, else the one generated once into the instance folder.

    Raises ConfigError naming SECRET_KEY (or the key file) when the secret is shorter than
    SECRET_KEY_MIN_BYTES: a short key lets anyone who guesses it forge session cookies."""
    if config.get("SECRET_KEY"):
        _check_secret_strength(config["SECRET_KEY"], "SECRET_KEY")
        return
    instance = Path(config["INSTANCE_PATH"])
    secret = _generated_key(instance, "secret_key")
    _check_secret_strength(secret, f"The secret key in {instance / 'secret_key'}")
    config["SECRET_KEY"] = secret


def _generated_key(instance: Path, name: str) -> str:
    """The key kept in the file `name` of the instance folder, generated on first use."""
    instance.mkdir(parents=True, exist_ok=True)
    key_file = instance / name
    if not key_file.exists():
        # Written aside and linked into place: two workers starting at once must neither
        # write two different keys nor read a file the other has not finished writing.
        fd, tmp = tempfile.mkstemp(dir=instance, prefix=f".{name}.")
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
            os.link(tmp, key_file)
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    key = key_file.read_text().strip()
    if not key:
        raise ConfigError(f"{key_file} is empty; delete it to generate a new key")
    return key


# The shortest audit key accepted: a shorter one could be guessed, and whoever holds the key
# can rewrite the audit trail unnoticed.
AUDIT_KEY_MIN_LENGTH = 32


def ensure_audit_key(config: dict[str, Any]) -> None:
    """Use the configured audit key (MES_AUDIT_KEY), else the one generated once into
    INSTANCE_PATH/audit_key. It is kept outside the database on purpose: someone who can
    write the database but does not hold the key cannot forge or re-hash audit records."""
    key = config.get("AUDIT_KEY")
    if key:
        if len(key.encode()) < AUDIT_KEY_MIN_LENGTH:
            raise ConfigError(f"AUDIT_KEY must be at least {AUDIT_KEY_MIN_LENGTH} bytes")
        return
    config["AUDIT_KEY"] = _generated_key(Path(config["INSTANCE_PATH"]), "audit_key")
