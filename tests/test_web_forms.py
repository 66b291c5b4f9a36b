"""The pages' form layer: messages as sentences per field, and how a refused load-and-act
comes back to the page."""

from __future__ import annotations

import pytest
from marshmallow import Schema, ValidationError, fields

from mes.errors import Conflict, ErrorCode, InvalidInput, NotFound
from mes.web import forms


class Match(Schema):
    since = fields.AwareDateTime(required=True)


class Hold(Schema):
    comment = fields.String(required=True)
    lots = fields.List(fields.String(), required=True)
    match = fields.Nested(Match, required=True)


@pytest.fixture
def page(app):
    with app.test_request_context("/"):
        yield


def test_flatten_names_nested_fields_and_list_items_by_position(page):
    assert forms.flatten({"_schema": ["Whole."], "wafers": {0: {"die_qty": ["Too big."]},
                                                            2: ["Twice."]}}) == \
        ["Whole.", "Wafers: item 1: Die quantity: Too big.", "Wafers: item 3: Twice."]


def test_flatten_names_fields_by_their_words_in_the_readers_language(app):
    with app.test_request_context("/", headers={"Accept-Language": "zh-CN"}):
        assert forms.flatten({"wafers": {0: {"reason": ["Too big."]}},
                              "no_such_field": ["Kept."]}) == \
            ["晶圆：第 1 项：原因：Too big.", "no_such_field：Kept."]


def test_field_errors_put_a_nested_objects_fields_beside_the_forms_own(page):
    with pytest.raises(ValidationError) as caught:
        forms.load(Hold, {"lots": ["A", 7], "match": {"since": "yesterday"}})
    assert forms.field_errors(caught.value.normalized_messages()) == {
        "comment": ["Missing data for required field."],
        "lots": ["item 2: Not a valid string."],
        "since": ["Not a valid datetime."]}
    assert forms.field_errors({"match": {"_schema": ["No lot matches."]}}) == \
        {"match": ["No lot matches."]}
    assert forms.field_errors(["Not an object."]) == {"_schema": ["Not an object."]}


def test_attempt_returns_the_result_or_why_it_was_refused(page):
    assert forms.attempt(lambda: 42) == (42, None)

    result, refused = forms.attempt(lambda: forms.load(Hold, {}))
    assert result is None
    assert (refused.status, refused.code, refused.message) == \
        (422, "invalid", "Some fields are missing or not valid.")
    assert set(refused.fields) == {"comment", "lots", "match"}

    def taken():
        raise Conflict("Someone was first.", code=ErrorCode.STALE)

    assert forms.attempt(taken) == (None, forms.Refused("Someone was first.", {}, 409,
                                                        ErrorCode.STALE))

    def weak():
        raise InvalidInput("Too weak.", fields={"password": ["Longer, please."]})

    assert forms.attempt(weak)[1].fields == {"password": ["Longer, please."]}


def test_attempt_lets_a_missing_page_be_a_404(page):
    def gone():
        raise NotFound("No such lot.")

    with pytest.raises(NotFound):
        forms.attempt(gone)
