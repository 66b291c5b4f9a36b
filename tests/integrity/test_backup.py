"""`mes db backup PATH` and the documented restore: the restored copy passes `mes check`."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess

import pytest
from sqlalchemy import func, select, text

from mes.cli import pg_dump_command
from mes.db import get_db
from mes.floor.models import Lot
from tests.helpers import create_pg_database, make_app


def _cli(app, *args: str):
    result = app.test_cli_runner().invoke(args=list(args))
    assert "Traceback" not in result.output, result.output
    return result


def _fill(app) -> int:
    """A real, committed plant (the demo) in the app's own database; its lot count."""
    from mes import migrate

    with get_db(app).engine.begin() as conn:
        migrate.upgrade(conn)
    assert _cli(app, "demo", "load").exit_code == 0
    with get_db(app).engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(Lot))


def _restore_audit_key(tmp_path) -> None:
    """The audit key is backed up apart from the database and restored with it."""
    (tmp_path / "restored").mkdir(exist_ok=True)
    shutil.copy(tmp_path / "live" / "audit_key", tmp_path / "restored" / "audit_key")


def test_sqlite_backup_restores_to_a_database_that_checks_clean(tmp_path):
    source = make_app(f"sqlite:///{tmp_path / 'live.db'}", tmp_path / "live")
    lots = _fill(source)
    target = tmp_path / "backup.db"
    result = _cli(source, "db", "backup", str(target))
    assert result.exit_code == 0, result.output
    assert f"Backed up to {target}" in result.output
    # As private as the database it copies (password hashes, token hashes).
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    # A second backup to the same file is refused and leaves it alone.
    size = target.stat().st_size
    again = _cli(source, "db", "backup", str(target))
    assert again.exit_code != 0 and "exists already" in again.output
    assert target.stat().st_size == size
    get_db(source).engine.dispose()

    # Restore: the backup file becomes the database of a new installation.
    restored_path = tmp_path / "restored.db"
    shutil.copy(target, restored_path)
    keyless = make_app(f"sqlite:///{restored_path}", tmp_path / "keyless")
    # Without the plant's audit key the trail cannot be verified.
    assert _cli(keyless, "audit", "verify").exit_code == 1
    get_db(keyless).engine.dispose()
    _restore_audit_key(tmp_path)
    restored = make_app(f"sqlite:///{restored_path}", tmp_path / "restored")
    check = _cli(restored, "check")
    assert check.exit_code == 0, check.output
    assert check.output.strip().endswith("All invariants hold.")
    assert _cli(restored, "audit", "verify").exit_code == 0
    with get_db(restored).engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Lot)) == lots
    get_db(restored).engine.dispose()


def test_the_pg_dump_command_is_custom_format_without_the_driver_name():
    command = pg_dump_command("postgresql+psycopg://mes:pw@db:5432/mes", "/b/mes.dump")
    assert command == ["pg_dump", "--format=custom", "--no-owner", "--file", "/b/mes.dump",
                       "--dbname", "postgresql://mes:pw@db:5432/mes"]


@pytest.mark.skipif(not os.environ.get("MES_TEST_DATABASE_URL"),
                    reason="PostgreSQL backup runs when MES_TEST_DATABASE_URL is set")
@pytest.mark.skipif(shutil.which("pg_restore") is None, reason="pg_dump/pg_restore missing")
def test_postgresql_backup_restores_with_pg_restore_and_checks_clean(tmp_path):
    base = os.environ["MES_TEST_DATABASE_URL"]
    live_url, drop_live = create_pg_database(base)
    restored_url, drop_restored = create_pg_database(base)
    source = restored = None
    try:
        source = make_app(live_url, tmp_path / "live")
        lots = _fill(source)
        dump = tmp_path / "mes.dump"
        result = _cli(source, "db", "backup", str(dump))
        assert result.exit_code == 0, result.output
        get_db(source).engine.dispose()
        libpq = restored_url.replace("postgresql+psycopg://", "postgresql://")
        subprocess.run(["pg_restore", "--no-owner", "--dbname", libpq, str(dump)],
                       check=True, capture_output=True)
        _restore_audit_key(tmp_path)
        restored = make_app(restored_url, tmp_path / "restored")
        check = _cli(restored, "check")
        assert check.exit_code == 0, check.output
        with get_db(restored).engine.connect() as conn:
            assert conn.scalar(select(func.count()).select_from(Lot)) == lots
            assert conn.scalar(text("SELECT count(*) FROM alembic_version")) == 1
    finally:
        for app in (source, restored):
            if app is not None:
                get_db(app).engine.dispose()
        drop_live()
        drop_restored()
