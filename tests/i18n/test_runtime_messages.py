"""Messages made at run time read as Chinese to a Chinese reader, not only the templates'
text: every message the Python code marks (refusals, validation messages, blockers, the
words of every closed set, the texts the system stores as a code) is rendered in zh_CN with
sample parameters and must differ from the English and hold no English word; refusals are
never built from untranslated strings; a closed set's code reaches a message as its word;
every field a form or the API names in a validation message has a word of its own."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from babel.messages.extract import extract_from_file
from flask_babel import force_locale, gettext, pgettext
from marshmallow import Schema, fields

from mes import PACKAGE_DIR, texts
from mes import vocabulary as v
from mes.vocabulary import SystemText
from tests.i18n.messages_scan import raw_code_params, untranslated

PLACEHOLDER = re.compile(r"%\((\w+)\)[sdfr]")
BRACED = re.compile(r"\{\w+\}")  # marshmallow's placeholders
# An English word: a run of lowercase letters (a field name, a raw code, a sentence).
# Acronyms (STDF, PRR, SBA, MSL ...), units and codes in capitals are the same in Chinese.
ENGLISH_WORD = re.compile(r"(?<![A-Za-z0-9_])[a-z][a-z_]+(?![A-Za-z0-9_])")
# Lowercase words that stay as they are in Chinese text: units, file suffixes, and the
# literal values a process-control plan's frequency is typed as ("lot", "hours:N").
KEPT_WORDS = {"gzip", "mm", "ms", "kg", "h", "min", "csv", "json", "stdf", "nan", "lot",
              "hours"}


def _python_messages() -> list[tuple[str | None, str]]:
    """(context, message) of every message the Python code marks (`_l`, `_`, `gettext`,
    `N_`, `pgettext` ...)."""
    keywords = {"_": None, "_l": None, "gettext": None, "lazy_gettext": None, "N_": None,
                "ngettext": (1, 2), "pgettext": ((1, "c"), 2), "lazy_pgettext": ((1, "c"), 2)}
    found: set[tuple[str | None, str]] = set()
    for path in sorted(Path(PACKAGE_DIR).rglob("*.py")):
        for _line, message, _comments, context in extract_from_file(
                "python", str(path), keywords=keywords):
            found.add((context, message if isinstance(message, str) else message[0]))
    return sorted(found, key=lambda item: (item[1], item[0] or ""))


def _sample(message: str) -> dict[str, int]:
    return {name: 9 for name in PLACEHOLDER.findall(message)}


def _english_words(text: str) -> list[str]:
    return [w for w in ENGLISH_WORD.findall(BRACED.sub("9", text)) if w not in KEPT_WORDS]


@pytest.fixture
def zh(app):
    with app.test_request_context("/"), force_locale("zh_CN"):
        yield


def test_no_refusal_is_built_from_an_untranslated_string():
    found = untranslated()
    assert not found, "Refusal messages not marked for translation:\n  " + "\n  ".join(found)


def test_no_message_is_given_a_raw_code_of_a_closed_set():
    # Allowed: the callers of floor.services._movable pass a translated verb as `action`;
    # an unknown role or moisture action is the caller's own input, echoed as given.
    allowed = {"mes/floor/services.py:action=action", "mes/auth/services.py:role=role",
               "mes/quality/services/moisture.py:action=action"}
    found = [f for f in raw_code_params()
             if re.sub(r":\d+: ", ":", f) not in allowed]
    assert not found, "Messages given a code instead of its word:\n  " + "\n  ".join(found)


def test_the_scans_find_what_they_look_for(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "m.py").write_text(
        "raise Conflict(f'Lot {n} is late.', code=X)\n"
        "raise InvalidInput(_l('Fine.'), fields={'a': ['Plain.']})\n"
        "raise invalid('kind', _l('Fine.'))\n"
        "x = _l('%(state)s', state=lot.state)\n"
        "y = _l('%(state)s', state=LotState(lot.state).label)\n", encoding="utf-8")
    found = untranslated(tmp_path / "pkg")
    assert [f.split(": ", 1)[1] for f in found] == ["f'Lot {n} is late.'", "'Plain.'"]
    assert [f.split(": ", 1)[1] for f in raw_code_params(tmp_path / "pkg")] == [
        "state=lot.state"]


def test_every_message_of_the_code_reads_as_chinese(zh):
    messages = _python_messages()
    assert len(messages) > 300
    untranslated_, english = [], []
    for context, message in messages:
        params = _sample(message)
        en = message % params if params else message.replace("%%", "%")
        translated = pgettext(context, message) if context else gettext(message)
        zh_text = translated % params if params else translated.replace("%%", "%")
        # Names and symbols (MSL, SBA, "Bin %(bin)s") read the same in Chinese.
        if zh_text == en and _english_words(en):
            untranslated_.append(message)
        elif words := _english_words(zh_text):
            english.append(f"{message!r} -> {zh_text!r}: {words}")
    assert not untranslated_, "Messages the same in Chinese:\n  " + "\n  ".join(untranslated_)
    assert not english, "Chinese messages with English words:\n  " + "\n  ".join(english)


# A sample of each text the system writes: the parameters its writer stores.
SYSTEM_SAMPLES: dict[SystemText, dict[str, Any]] = {
    SystemText.YIELD_BELOW_MIN: {"step": "FT-H", "yield": 92.35, "min_yield": 95.0},
    SystemText.SBA_BREACH: {"level": 2, "step": "FT-H", "test_run": 17, "history_lots": 12,
                            "breaches": [
                                {"kind": "yield", "level": "level2", "bin": None,
                                 "value": 81.5, "limit": 88.25},
                                {"kind": "bin", "level": "level1", "bin": 7, "value": 3.0,
                                 "limit": 1.5}]},
    SystemText.PROGRAM_MISMATCH: {"step": "FT-H", "job_name": "GD5532_FT", "job_rev": "4",
                                  "fields": ["job_name", "temperature", "hard_bins"]},
    SystemText.PAT_FALLOUT: {"step": "FT-H", "removed": 12, "units": 1000, "value": 1.2,
                             "limit": 0.5},
    SystemText.PAT_ESCAPE: {"step": "FT-H", "test_run": 21, "escapes": 3, "dynamic": False,
                            "name": "GD5532-FT", "version": 2},
}


def test_every_system_text_has_a_sample():
    assert set(SYSTEM_SAMPLES) == set(SystemText)


@pytest.mark.parametrize("code", list(SystemText))
def test_every_system_text_reads_as_chinese(zh, code):
    params = SYSTEM_SAMPLES[code]
    en = texts.english(code, params)
    zh_text = texts.render(code, params, en)
    assert zh_text != en
    assert re.search(r"[\u4e00-\u9fff]", zh_text)
    assert not _english_words(zh_text), zh_text
    assert "FT-H" in zh_text  # the parameters are in it


def test_system_texts_in_english_are_the_sentences_stored_before_codes():
    assert texts.english(SystemText.YIELD_BELOW_MIN, SYSTEM_SAMPLES[
        SystemText.YIELD_BELOW_MIN]) == "Step FT-H yield 92.35 % is below the minimum 95.0 %."
    assert texts.english(SystemText.SBA_BREACH, SYSTEM_SAMPLES[SystemText.SBA_BREACH]) == (
        "SBA level 2 (material review board) at FT-H, test run 17, against 12 earlier lots: "
        "final yield 81.50 % is below SYL2 88.25 %; bin 7 at 3.00 % is above SBL1 1.50 %.")


def test_a_text_without_a_code_or_with_parameters_of_another_shape_shows_as_stored(zh):
    assert texts.render(None, None, "Engineering look") == "Engineering look"
    assert texts.render(None, None, None) == ""
    assert texts.render("no_such_code", {}, "kept") == "kept"
    assert texts.render(SystemText.YIELD_BELOW_MIN, {"step": "X"}, "kept") == "kept"


def _vocabularies() -> list[type[v.Vocabulary]]:
    return [obj for obj in vars(v).values() if isinstance(obj, type)
            and issubclass(obj, v.Vocabulary) and obj is not v.Vocabulary]


def test_every_word_of_every_closed_set_reads_as_chinese(zh):
    wrong = []
    for vocabulary in _vocabularies():
        for member in vocabulary:
            if member.label is member.value or vocabulary is v.Language:
                continue  # codes that are names in every language (AEC-Q100, MSL 2a)
            word = str(member.label)
            if word == member.value or _english_words(word):
                wrong.append(f"{vocabulary.__name__}.{member.name}: {word!r}")
    assert not wrong, "Words of closed sets not in Chinese:\n  " + "\n  ".join(wrong)


def test_system_actors_and_unknown_codes(zh):
    assert texts.actor("system") == "系统"
    assert texts.actor("qa2") == "qa2"
    assert texts.actor(None) == ""
    assert v.EquipmentKind.word("die_bonder") == "装片机"
    assert v.EquipmentKind.word("flux_cleaner") == "flux_cleaner"  # an open set's new code


def _input_fields(schema: type[Schema], seen: set[type[Schema]]) -> set[str]:
    """The names of every field `schema` loads, nested schemas' included."""
    if schema in seen:
        return set()
    seen.add(schema)
    names: set[str] = set()
    for name, field in schema._declared_fields.items():
        if field.dump_only:
            continue
        names.add(field.data_key or name)
        inner = field.inner if isinstance(field, fields.List) else field
        if isinstance(inner, fields.Nested) and isinstance(inner.nested, type):
            names |= _input_fields(inner.nested, seen)
    return names


def _input_schemas() -> list[type[Schema]]:
    import mes.catalog.schemas
    import mes.floor.schemas
    import mes.quality.schemas
    import mes.reports.schemas
    import mes.shipping.schemas
    import mes.testfloor.schemas
    import mes.trace.schemas  # noqa: F401  (each module's schemas, for the walk below)

    def below(cls: type[Schema]) -> list[type[Schema]]:
        return [sub for direct in cls.__subclasses__() for sub in (direct, *below(direct))]
    return [cls for cls in below(Schema) if cls.__module__.startswith("mes.")
            and cls.__name__.endswith(("In", "Args", "Query", "Patch"))]


def _service_fields() -> set[str]:
    """Field names the services name in their refusals (`invalid("x", ...)`, `fields={"x"`)."""
    found: set[str] = set()
    for path in Path(PACKAGE_DIR).rglob("*.py"):
        source = path.read_text(encoding="utf-8")
        found |= set(re.findall(r"\binvalid\(\"(\w+)\"", source))
        found |= set(re.findall(r"fields=\{\"(\w+)\"", source))
    return found


def test_every_field_named_in_a_validation_message_has_a_word(zh):
    schemas = _input_schemas()
    assert len(schemas) > 20
    names = set().union(*(_input_fields(schema, set()) for schema in schemas))
    names |= _service_fields()
    assert {"reason", "concession", "rework_step", "wafers", "rejects"} <= names
    missing = sorted(names - set(texts.FIELD_LABELS))
    assert not missing, f"Fields without a word in mes.texts.FIELD_LABELS: {missing}"
    for name in names:
        word = texts.field_label(name)
        assert word != name and not _english_words(word), (name, word)
