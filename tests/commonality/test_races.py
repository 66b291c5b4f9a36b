"""Containment from a factor raced with real concurrent connections (the floor's race
harness): the same factor contained at once for one complaint holds the lot once per
containment that won, links exactly those, and every loser is a clean 409."""

from __future__ import annotations

from sqlalchemy import func, select

from mes.catalog import services as cat
from mes.complaints.models import ComplaintContainment
from mes.db import session_scope
from mes.quality.models import Hold
from tests.complaints.test_races import LOST, complaint_plant  # noqa: F401
from tests.floor import races


def test_one_factor_contained_at_once(race_app, complaint_plant):  # noqa: F811
    with race_app.app_context(), session_scope(race_app) as session:
        cat.create_reason_code(session, "test", {"code": "H-ENG", "kind": "hold",
                                                 "description": "Engineering"})
    cid = complaint_plant["complaint"]
    body = {"factor": {"kind": "fab_lot", "value": "FAB1"}, "reason": "H-ENG",
            "comment": "Fab lot common to the complaint"}
    answers = races.fire(race_app, complaint_plant["headers"],
                         [(f"/complaints/{cid}/containments", body)
                          for _ in range(races.N)])
    won = [answer for status, answer in answers if status == 201]
    assert won, answers
    assert all(status == 409 and answer["error"]["code"] in LOST
               for status, answer in answers if status != 201), answers

    def check(session) -> None:
        links = session.scalars(select(ComplaintContainment.containment_id)
                                .where(ComplaintContainment.complaint_id == cid)).all()
        assert sorted(links) == sorted(answer["id"] for answer in won)
        assert session.scalar(select(func.count()).select_from(Hold)
                              .where(Hold.source == "containment")) == len(won)
        assert races.audit_chains_intact(session)

    races.read(race_app, check)
