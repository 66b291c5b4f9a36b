"""The yardstick for bench/floor.py: a bare Flask + SQLAlchemy endpoint doing the same row
work as a track-in or track-out (update the lot under its version counter, insert the
history event and a hash-chained audit row), with none of the application around it."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime

from flask import Flask, jsonify
from sqlalchemy import create_engine, text


def create() -> Flask:
    app = Flask(__name__)
    engine = create_engine(os.environ["MES_DATABASE_URL"], pool_size=5, max_overflow=5,
                           pool_pre_ping=True)

    @app.get("/healthz")
    def healthz():  # type: ignore[no-untyped-def]
        return jsonify(status="ok")

    @app.post("/bare/<int:lot_id>")
    def move(lot_id: int):  # type: ignore[no-untyped-def]
        now = datetime.now(UTC)
        with engine.begin() as conn:
            lot = conn.execute(text("SELECT lot_no, version, step_seq FROM lot WHERE id = :id"),
                               {"id": lot_id}).one()
            done = conn.execute(text(
                "UPDATE lot SET version = version + 1, updated_at = :now "
                "WHERE id = :id AND version = :v"), {"id": lot_id, "v": lot.version, "now": now})
            if done.rowcount != 1:
                return jsonify(error="stale"), 409
            conn.execute(text(
                "INSERT INTO lot_event (lot_id, kind, at, by, step_code, equipment, qty_in, "
                "qty_out, data) VALUES (:id, 'bare', :now, 'bench', 'B', 'T', 1, 1, '{}')"),
                {"id": lot_id, "now": now})
            head = conn.execute(text(
                "SELECT seq, hash FROM audit_event WHERE subject_type = 'lot' AND "
                "subject_key = :k ORDER BY seq DESC LIMIT 1"), {"k": lot.lot_no}).first()
            seq, prev = (head.seq + 1, head.hash) if head else (1, "0" * 64)
            digest = hashlib.sha256(json.dumps([seq, now.isoformat(), lot.lot_no, prev])
                                    .encode()).hexdigest()
            conn.execute(text(
                "INSERT INTO audit_event (at, actor, code, subject_type, subject_key, seq, "
                "data, prev_hash, hash) VALUES (:now, 'bench', 'lot:bare', 'lot', :k, :seq, "
                "'{}', :prev, :hash)"),
                {"now": now, "k": lot.lot_no, "seq": seq, "prev": prev, "hash": digest})
        return jsonify(lot_no=lot.lot_no, version=lot.version + 1)

    return app
