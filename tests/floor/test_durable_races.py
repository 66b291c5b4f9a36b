"""Track-ins racing for the last life of a durable, with real concurrent connections (on
SQLite and, with MES_TEST_DATABASE_URL, on PostgreSQL): exactly one wins."""

from __future__ import annotations

import threading

from sqlalchemy import func, select

from mes.catalog import services as catalog
from mes.catalog.models import Durable, Equipment
from mes.db import session_scope
from mes.floor import persistence
from mes.floor.models import Lot
from tests.floor.races import LOST_RACE, N, audit_chains_intact, codes, fire, read, receive


def _blade(app, life_limit: int, used: int = 0) -> None:
    with app.app_context(), session_scope(app) as session:
        catalog.create_durable(session, "eng", {"code": "BLD-1", "kind": "saw_blade",
                                                "life_limit": life_limit, "used": used})
        catalog.mount_durable(session, "eng", catalog.get_equipment(session, "SAW-1"),
                              "BLD-1")


def _blade_counts(session) -> tuple[int, int]:
    return tuple(session.execute(select(Durable.used, Durable.reserved)
                                 .where(Durable.code == "BLD-1")).one())


def test_track_ins_racing_for_the_last_life_of_a_durable_start_one_lot(race_app, race_plant):
    # Life for one lot of 100 units, not two.
    _blade(race_app, life_limit=10_000, used=9_850)
    for i in range(N):
        receive(race_app, f"LOT-{i}")
    answers = fire(race_app, race_plant["headers"], [
        (f"/lots/LOT-{i}/track-in", {"step": "SAW", "equipment": "SAW-1"}) for i in range(N)])
    assert sum(status == 200 for status, _ in answers) == 1
    assert all(status == 409 and code in LOST_RACE | {"equipment_busy", "durable_exhausted"}
               for status, code in codes(answers)), answers

    def check(session) -> None:
        assert session.scalar(select(func.count()).select_from(Lot)
                              .where(Lot.state == "running")) == 1
        assert _blade_counts(session) == (9_850, 100)
        assert audit_chains_intact(session)
    read(race_app, check)


def test_simultaneous_reservations_of_the_last_life_give_it_once(race_app, race_plant):
    """The reservation itself, one conditional UPDATE per move, from N connections at once."""
    _blade(race_app, life_limit=10_000, used=9_850)
    tool_id = read(race_app, lambda s: s.scalar(select(Equipment.id)
                                                .where(Equipment.code == "SAW-1")))
    barrier = threading.Barrier(N)
    answered: list[int | None] = [None] * N
    failures: list[BaseException] = []

    def one(i: int) -> None:
        try:
            with race_app.app_context(), session_scope(race_app) as session:
                write = persistence.DurableWrite("reserve", tool_id, 100)
                session.connection()
                barrier.wait()
                persistence.write_durables(session, write)
                answered[i] = write.answered
        except BaseException as exc:  # reported below  # noqa: BLE001
            failures.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(N)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    # On SQLite a writer may find the database locked: it changed nothing.
    assert all("locked" in str(f) for f in failures), failures
    assert answered.count(1) == 1, answered
    assert read(race_app, _blade_counts) == (9_850, 100)
