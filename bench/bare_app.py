"""The yardsticks for bench/floor.py: bare Flask + SQLAlchemy endpoints doing the same row
work as a track-in or track-out (update the lot under its version counter, insert the
history event and a hash-chained audit row, keyed and numbered as the application's are:
the next number of an audit series, an HMAC) with none of the application around them: no
authentication, no validation, no rules, no answer beyond two fields.

- `POST /bare/orm/<lot_id>`: the SQLAlchemy ORM, as the application uses it (one session
  per request, the version counter of the mapped lot, the event and audit rows as objects).
- `POST /bare/sql/<lot_id>`: the same statements as plain SQL text, the leanest possible.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from datetime import UTC, datetime

from flask import Flask, jsonify
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import sessionmaker

import mes.models  # noqa: F401  (every mapped class, for the relationships)
from mes.audit.models import AuditEvent
from mes.floor.models import Lot, LotEvent

_KEY = b"bench-audit-key-of-32-bytes-or-more"
# The next number of the connection's own audit series (the application claims a series
# per connection; a backend's pid picks one here).
_NEXT_NUMBER = ("UPDATE audit_counter SET value = value + 1 "
                "WHERE series = pg_backend_pid() % 64 RETURNING series, value")


def _digest(series: int, number: int, seq: int, now: datetime, lot_no: str, prev: str) -> str:
    return hmac.new(_KEY, json.dumps([series, number, seq, now.isoformat(), lot_no, prev])
                    .encode(), hashlib.sha256).hexdigest()


def create() -> Flask:
    app = Flask(__name__)
    engine = create_engine(os.environ["MES_DATABASE_URL"], pool_size=5, max_overflow=5,
                           pool_pre_ping=True)
    sessions = sessionmaker(bind=engine, expire_on_commit=False)

    @app.get("/healthz")
    def healthz():  # type: ignore[no-untyped-def]
        return jsonify(status="ok")

    @app.post("/bare/orm/<int:lot_id>")
    def move_orm(lot_id: int):  # type: ignore[no-untyped-def]
        now = datetime.now(UTC)
        with sessions() as session, session.begin():
            lot = session.get(Lot, lot_id)
            lot.updated_at = now  # the version counter makes this UPDATE ... WHERE version
            session.add(LotEvent(lot_id=lot.id, kind="track_out", at=now, by="bench",
                                 step_code=lot.step_code, equipment="T", qty_in=1, qty_out=1,
                                 data={}))
            head = session.execute(
                select(AuditEvent.seq, AuditEvent.hash)
                .where(AuditEvent.subject_type == "lot", AuditEvent.subject_key == lot.lot_no)
                .order_by(AuditEvent.seq.desc()).limit(1)).first()
            seq, prev = (head.seq + 1, head.hash) if head else (1, "0" * 64)
            series, number = session.execute(text(_NEXT_NUMBER)).one()
            session.add(AuditEvent(at=now, actor="bench", code="lot:bare", subject_type="lot",
                                   subject_key=lot.lot_no, seq=seq, series=series,
                                   number=number, data={}, prev_hash=prev,
                                   hash=_digest(series, number, seq, now, lot.lot_no, prev)))
            answer = {"lot_no": lot.lot_no, "version": lot.version}
        return jsonify(answer)

    @app.post("/bare/sql/<int:lot_id>")
    def move_sql(lot_id: int):  # type: ignore[no-untyped-def]
        now = datetime.now(UTC)
        with engine.begin() as conn:
            lot = conn.execute(text("SELECT lot_no, version FROM lot WHERE id = :id"),
                               {"id": lot_id}).one()
            done = conn.execute(text(
                "UPDATE lot SET version = version + 1, updated_at = :now "
                "WHERE id = :id AND version = :v"), {"id": lot_id, "v": lot.version, "now": now})
            if done.rowcount != 1:
                return jsonify(error="stale"), 409
            conn.execute(text(
                "INSERT INTO lot_event (lot_id, kind, at, by, step_code, equipment, qty_in, "
                "qty_out, data) VALUES (:id, 'track_out', :now, 'bench', 'B', 'T', 1, 1, '{}')"),
                {"id": lot_id, "now": now})
            head = conn.execute(text(
                "SELECT seq, hash FROM audit_event WHERE subject_type = 'lot' AND "
                "subject_key = :k ORDER BY seq DESC LIMIT 1"), {"k": lot.lot_no}).first()
            seq, prev = (head.seq + 1, head.hash) if head else (1, "0" * 64)
            series, number = conn.execute(text(_NEXT_NUMBER)).one()
            conn.execute(text(
                "INSERT INTO audit_event (at, actor, code, subject_type, subject_key, seq, "
                "series, number, data, prev_hash, hash) VALUES (:now, 'bench', 'lot:bare', "
                "'lot', :k, :seq, :series, :number, '{}', :prev, :hash)"),
                {"now": now, "k": lot.lot_no, "seq": seq, "series": series, "number": number,
                 "prev": prev, "hash": _digest(series, number, seq, now, lot.lot_no, prev)})
        return jsonify(lot_no=lot.lot_no, version=lot.version + 1)

    return app
