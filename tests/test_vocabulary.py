"""The vocabulary: codes are the strings the database and the API use, every code has its
words, and the words are translated."""

from __future__ import annotations

import json

import pytest
from flask_babel import force_locale

from mes import vocabulary as v

SETS = [cls for cls in vars(v).values()
        if isinstance(cls, type) and issubclass(cls, v.Vocabulary) and cls is not v.Vocabulary]


def test_members_are_their_codes():
    assert v.LotState.QUEUED == "queued"
    assert v.LotState("merged") is v.LotState.MERGED
    assert json.dumps({"state": v.EquipmentState.SCHEDULED_DOWN}) == \
        '{"state": "scheduled_down"}'
    assert f"{v.Disposition.USE_AS_IS}" == "use_as_is"
    with pytest.raises(ValueError):
        v.HoldSource("robot")


@pytest.mark.parametrize("cls", SETS, ids=lambda cls: cls.__name__)
def test_every_code_has_words_looked_up_by_plain_string(cls):
    labels = cls.labels()
    assert list(labels) == list(cls)
    for member in cls:
        assert labels[member.value] is member.label
        assert str(member.label)
    assert [code for code, _word in cls.choices()] == [m.value for m in cls]


def test_words_are_translated(app):
    with app.test_request_context(), force_locale("zh_CN"):
        assert str(v.LotState.SHIPPED.label) != "Shipped"
        assert str(v.HoldSource.labels()["mass"]) != "Mass hold"
        assert v.Disposition.choices(v.BULK_DISPOSITIONS)[1][0] == "use_as_is"
    with app.test_request_context(), force_locale("en"):
        assert str(v.LotState.SHIPPED.label) == "Shipped"
        assert str(v.EventKind.SHIP.label) == "Shipped"


def test_codes_are_plain_strings_for_in_tests_and_validators():
    assert v.LotState.codes() == ("queued", "running", "completed", "shipped", "scrapped",
                                  "merged", "banked")
    assert all(type(code) is str for code in v.HoldSource.codes())
    assert "standby" in v.EquipmentState.codes()
    assert "down" not in v.EquipmentState.codes()
