"""Language and time zone: the user's setting, else the browser's Accept-Language, else the
configured default. Times are stored in UTC and shown in the plant's time zone.

The JSON API answers in English unless the client sends Accept-Language (machines read the
codes; the user's profile language does not apply there).

The catalogs are kept as .po files in mes/translations (committed); the .mo files gettext
reads are compiled from them when the application starts, into the instance folder, and
compiled again only when a .po file changes (its SHA-256 is kept beside the .mo).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

from babel import Locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask, current_app, has_request_context, request
from flask_babel import Babel, get_locale
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from mes import PACKAGE_DIR

log = logging.getLogger(__name__)

LOCALES = ("en", "zh_CN")

# State codes that pages show through `_macros.state_badge` (`_(state)`): listed here so
# that the extraction puts them in the catalogs. Lots, holds, future holds, qualifications,
# equipment (SEMI E10).
STATE_WORDS = (
    _l("queued"), _l("running"), _l("completed"), _l("shipped"), _l("scrapped"), _l("merged"),
    _l("open"), _l("released"), _l("active"), _l("retired"), _l("passed"), _l("failed"),
    _l("productive"), _l("standby"), _l("engineering"), _l("scheduled_down"),
    _l("unscheduled_down"), _l("non_scheduled"),
    # the same in words, as refusals spell them ("WB-3 is unscheduled down.")
    _l("scheduled down"), _l("unscheduled down"), _l("non scheduled"),
)
SOURCE_DIR = PACKAGE_DIR / "translations"
DOMAIN = "messages"


def _from_accept_language() -> str | None:
    best = request.accept_languages.best_match(["en", "zh_CN", "zh"])
    if best is None and any(lang.lower().startswith("zh") for lang, _q in
                            request.accept_languages):
        best = "zh"  # zh-TW, zh-Hans-CN ...: Chinese is nearer than English
    return "zh_CN" if best == "zh" else best


def select_locale() -> str:
    if not has_request_context():
        return current_app.config["DEFAULT_LOCALE"]
    if request.path.startswith("/api/"):
        # Machines: English unless the client asks for a language.
        return _from_accept_language() or "en"
    user_locale = getattr(current_user, "locale", None)
    if user_locale in LOCALES:
        return user_locale
    return _from_accept_language() or current_app.config["DEFAULT_LOCALE"]


def select_timezone() -> str:
    return current_app.config["PLANT_TIMEZONE"]


def is_chinese() -> bool:
    locale = get_locale()
    return locale is not None and locale.language == "zh"


def localized(english: str | None, chinese: str | None) -> str:
    """The Chinese text of master data (a step name, a reason description) for a Chinese
    user when there is one, else the English text."""
    if chinese and is_chinese():
        return chinese
    return english or ""


def compile_catalogs(source: Path, target: Path) -> Path:
    """Compile every <locale>/LC_MESSAGES/messages.po under `source` into a .mo under
    `target` unless the .mo was compiled from the same .po already. Atomic replace, so
    workers starting together never read half a file.

    The compiled folder is named as Babel names the locale (zh_CN is zh_Hans_CN): that is
    the name Flask-Babel looks the catalog up by."""
    for po_path in sorted(source.glob(f"*/LC_MESSAGES/{DOMAIN}.po")):
        raw = po_path.read_bytes()
        digest = hashlib.sha256(raw).hexdigest()
        out_dir = target / str(Locale.parse(po_path.parent.parent.name)) / "LC_MESSAGES"
        mo_path = out_dir / f"{DOMAIN}.mo"
        stamp = out_dir / f"{DOMAIN}.sha256"
        if mo_path.exists() and stamp.exists() and stamp.read_text() == digest:
            continue
        out_dir.mkdir(parents=True, exist_ok=True)
        with po_path.open("rb") as fh:
            catalog = read_po(fh, locale=po_path.parent.parent.name)
        fd, tmp = tempfile.mkstemp(dir=out_dir, suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            write_mo(fh, catalog, use_fuzzy=False)
        os.replace(tmp, mo_path)
        fd, tmp = tempfile.mkstemp(dir=out_dir, suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            fh.write(digest)
        os.replace(tmp, stamp)
        log.info("compiled %s", mo_path)
    return target


def init_app(app: Flask) -> None:
    compiled = compile_catalogs(SOURCE_DIR, Path(app.instance_path) / "translations")
    Babel(app, locale_selector=select_locale, timezone_selector=select_timezone,
          default_translation_directories=str(compiled))
    app.jinja_env.globals["get_locale"] = get_locale
    app.jinja_env.globals["localized"] = localized
