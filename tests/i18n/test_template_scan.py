"""Every user-visible text in a template is marked for translation (`{{ _() }}` or
`{% trans %}`): the scanner in scan.py reads each template under templates/."""

from __future__ import annotations

from pathlib import Path

import pytest

from mes import TEMPLATE_DIR
from tests.i18n.scan import scan

TEMPLATES = sorted(Path(TEMPLATE_DIR).rglob("*.html"))


def test_there_are_templates_to_scan():
    assert len(TEMPLATES) > 30


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: str(p.relative_to(TEMPLATE_DIR)))
def test_template_has_no_unmarked_text(path: Path):
    findings = scan(path.read_text(encoding="utf-8"))
    assert not findings, f"{path.relative_to(TEMPLATE_DIR)}: text not marked for " \
        "translation (wrap it in {{ _('...') }}):\n" + "\n".join(map(str, findings))


def _texts(source: str) -> list[str]:
    return [finding.text for finding in scan(source)]


def test_scanner_finds_plain_text_between_tags():
    assert _texts("<h1>{{ _('Lots') }}</h1>\n<p>Scan the lot</p>") == ["Scan the lot"]


def test_scanner_finds_text_next_to_an_expression():
    assert _texts("<dd>{{ lot.quantity }} units</dd>") == ["units"]


def test_scanner_finds_visible_attributes():
    found = scan('<input name="q" placeholder="Lot number">\n<a href="/x" title="Open">x</a>'
                 '<img src="a.svg" alt="Yield chart"><button aria-label="Close">×</button>'
                 '<input type="submit" value="Save">')
    assert [(f.where, f.text) for f in found] == [
        ("<input placeholder>", "Lot number"), ("<a title>", "Open"), ("text", "x"),
        ("<img alt>", "Yield chart"),
        ("<button aria-label>", "Close"), ("<input value>", "Save")]


def test_scanner_finds_texts_that_scripts_show():
    found = scan('<form data-confirm="Really delete?"><p data-text-ok="{{ _(\'Fine\') }}" '
                 'data-text-off="Off by {sum}"></p></form>')
    assert [(f.where, f.text) for f in found] == [("<form data-confirm>", "Really delete?"),
                                                  ("<p data-text-off>", "Off by {sum}")]


def test_scanner_finds_literal_labels_passed_to_macros():
    assert _texts("{{ m.field('name', label='Lot name') }}") == ["Lot name"]


def test_scanner_accepts_marked_text_symbols_and_code():
    source = """{% extends "base.html" %}
{% block content %}
<h1 class="mono">{{ _('Lot %(lot)s', lot=lot.lot_no) }}</h1>
<p>{% trans %}Scan the lot{% endtrans %} — {{ lot.quantity }} · 12 %</p>
<input type="hidden" name="action" value="track_in">
<button type="submit" name="action" value="track_out">{{ _('Track out') }}</button>
<option value="x"{% if x %} selected{% endif %}>{{ x }}</option>
<td>{{ a }} / {{ b }}</td><dt>Q1 / Q3</dt><td class="num">n</td>
{# a comment in English is not shown #}
<script src="/static/js/x.js"></script>
{% endblock %}"""
    assert scan(source) == []


def test_scanner_reports_the_line():
    assert [f.line for f in scan("<p>{{ _('a') }}</p>\n{%- if x -%}\n<p>Oops</p>\n{%- endif %}")] \
        == [3]
