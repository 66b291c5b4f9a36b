"""The catalogs are complete and current: the strings the code marks today (extracted into
a temporary .pot exactly as the README's command does) are the zh_CN catalog's messages,
every one translated, none fuzzy, none left over; placeholders survive translation; the
English catalog lists the same messages; the .po files compile."""

from __future__ import annotations

import gettext
import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from mes import PACKAGE_DIR
from mes.i18n import compile_catalogs

ROOT = PACKAGE_DIR.parent
TRANSLATIONS = PACKAGE_DIR / "translations"
PLACEHOLDER = re.compile(r"%\([^)]+\)[sdfr]|%%|\{\w+\}")

pytestmark = pytest.mark.skipif(not (ROOT / "babel.cfg").exists(),
                                reason="needs the source checkout (babel.cfg, templates/)")


@pytest.fixture(scope="module")
def extracted(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    pot = tmp_path_factory.mktemp("pot") / "messages.pot"
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", "-q", "extract",
                    "-F", "babel.cfg", "-k", "_l", "-k", "lazy_gettext", "--no-location",
                    "-o", str(pot), "."], cwd=ROOT, check=True)
    with pot.open("rb") as fh:
        return read_po(fh)


def _po(locale: str) -> Catalog:
    with (TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        return read_po(fh, locale=locale)


def _ids(catalog: Catalog) -> set[str]:
    """Each message as `context|msgid` (or just the msgid), plural ones by the singular."""
    return {(f"{m.context}|" if m.context else "") + (m.id if isinstance(m.id, str) else
                                                       m.id[0]) for m in catalog if m.id}


def _listed(title: str, items: list[str]) -> str:
    return f"{title} ({len(items)}):\n  " + "\n  ".join(items)


HOW = ("\nUpdate the catalogs (README, 'Languages'): pybabel extract ... && pybabel update "
       "... then translate the new messages in mes/translations/zh_CN/LC_MESSAGES/messages.po.")


def test_extraction_finds_the_marked_strings(extracted):
    ids = _ids(extracted)
    assert len(ids) > 500
    assert {"Operator station", "Hold queue", "Lot %(lot)s is %(state)s."} <= ids


def test_zh_cn_catalog_has_every_message_of_the_code(extracted):
    missing = sorted(_ids(extracted) - _ids(_po("zh_CN")))
    assert not missing, _listed("Messages missing from the zh_CN catalog", missing) + HOW


def test_zh_cn_catalog_has_no_message_the_code_no_longer_uses(extracted):
    catalog = _po("zh_CN")
    stale = sorted(_ids(catalog) - _ids(extracted)) + sorted(
        m.id for m in catalog.obsolete.values())
    assert not stale, _listed("Stale messages in the zh_CN catalog", stale) + HOW


def test_every_zh_cn_message_is_translated_and_not_fuzzy():
    catalog = _po("zh_CN")
    untranslated = sorted(str(m.id) for m in catalog if m.id and (
        not m.string or (isinstance(m.string, tuple) and not all(m.string))))
    fuzzy = sorted(str(m.id) for m in catalog if m.id and m.fuzzy)
    assert not untranslated, _listed("Untranslated zh_CN messages", untranslated)
    assert not fuzzy, _listed("Fuzzy zh_CN messages (check, then remove the flag)", fuzzy)


def test_zh_cn_translations_keep_the_placeholders():
    wrong = [f"{m.id!r} -> {m.string!r}" for m in _po("zh_CN") if m.id and isinstance(
        m.id, str) and sorted(PLACEHOLDER.findall(m.id)) != sorted(
        PLACEHOLDER.findall(m.string or ""))]
    assert not wrong, _listed("Translations that lose or change a placeholder", wrong)


def test_english_catalog_lists_the_same_messages(extracted):
    # English msgstr stay empty on purpose: gettext shows the msgid, which is the English.
    catalog = _po("en")
    assert _ids(catalog) == _ids(extracted), HOW
    assert not catalog.obsolete


def test_catalogs_compile_once_and_translate(tmp_path: Path):
    out = compile_catalogs(TRANSLATIONS, tmp_path)
    mo = out / "zh_Hans_CN" / "LC_MESSAGES" / "messages.mo"  # Babel's name of zh_CN
    assert mo.exists() and (out / "en" / "LC_MESSAGES" / "messages.mo").exists()
    with mo.open("rb") as fh:
        zh = gettext.GNUTranslations(fh)
    assert zh.gettext("Operator station") == "作业站"
    compiled_at = mo.stat().st_mtime_ns
    compile_catalogs(TRANSLATIONS, tmp_path)  # unchanged .po: the .mo is kept
    assert mo.stat().st_mtime_ns == compiled_at


def _translate(mo: Path, message: str) -> str:
    with mo.open("rb") as fh:
        return gettext.GNUTranslations(fh).gettext(message)


def test_a_changed_po_is_compiled_again(tmp_path: Path):
    source = tmp_path / "src" / "zh_CN" / "LC_MESSAGES"
    source.mkdir(parents=True)
    po = source / "messages.po"
    po.write_text('msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=utf-8\\n"\n\n'
                  'msgid "Save"\nmsgstr "保存"\n', encoding="utf-8")
    out = compile_catalogs(tmp_path / "src", tmp_path / "out")
    mo = out / "zh_Hans_CN" / "LC_MESSAGES" / "messages.mo"  # Babel's name of zh_CN
    assert _translate(mo, "Save") == "保存"
    po.write_text(po.read_text(encoding="utf-8").replace("保存", "存盘"), encoding="utf-8")
    compile_catalogs(tmp_path / "src", tmp_path / "out")
    assert _translate(mo, "Save") == "存盘"
