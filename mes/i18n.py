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
from typing import Any

from babel import Locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask, current_app, has_request_context, request
from flask_babel import Babel, get_locale, gettext
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from marshmallow import ValidationError, validate
from marshmallow import fields as mfields

from mes import PACKAGE_DIR, texts
from mes import vocabulary as v
from mes.vocabulary import Language

log = logging.getLogger(__name__)

LOCALES = tuple(Language)

# Codes that pages show translated by their code (`_(state)`, e.g. `_macros.state_badge`),
# listed here so that the extraction puts them in the catalogs: states of lots, holds,
# future holds, qualifications and equipment (SEMI E10), and roles.
STATE_WORDS = (
    _l("queued"), _l("running"), _l("completed"), _l("shipped"), _l("scrapped"), _l("merged"),
    _l("open"), _l("released"), _l("active"), _l("retired"), _l("passed"), _l("failed"),
    _l("productive"), _l("standby"), _l("engineering"), _l("scheduled_down"),
    _l("unscheduled_down"), _l("non_scheduled"),
    # the same in words, as refusals spell them ("WB-3 is unscheduled down.")
    _l("scheduled down"), _l("unscheduled down"), _l("non scheduled"),
    # roles, shown as `_(role)` in the header and on the users page
    _l("operator"), _l("engineer"), _l("qa"), _l("planner"), _l("admin"), _l("customer"),
)
SOURCE_DIR = PACKAGE_DIR / "translations"
DOMAIN = "messages"


def _from_accept_language() -> str | None:
    best = request.accept_languages.best_match(["en", "zh_CN", "zh"])
    if best is None and any(lang.lower().startswith("zh") for lang, _q in
                            request.accept_languages):
        best = "zh"  # zh-TW, zh-Hans-CN ...: Chinese is nearer than English
    return "zh_CN" if best == "zh" else best


def N_(message: str) -> str:
    """Marks a string for extraction without translating it (gettext_noop)."""
    return message


# marshmallow's own validation messages (fields and the validators the schemas use), so that
# a form or an API request is refused in the request's language: see _translate_marshmallow.
MARSHMALLOW_MESSAGES = frozenset((
    N_("Missing data for required field."), N_("Field may not be null."),
    N_("Invalid value."), N_("Invalid type."), N_("Not a valid string."),
    N_("Not a valid utf-8 string."), N_("Not a valid integer."), N_("Not a valid number."),
    N_("Number too large."), N_("Not a valid boolean."), N_("Not a valid list."),
    N_("Not a valid tuple."), N_("Not a valid mapping type."), N_("Not a valid date."),
    N_("Not a valid {obj_type}."), N_("Not a valid {awareness} {obj_type}."),
    N_("Special numeric values (nan or infinity) are not permitted."),
    N_("Shorter than minimum length {min}."), N_("Longer than maximum length {max}."),
    N_("Length must be between {min} and {max}."), N_("Length must be {equal}."),
    N_("Must be greater than or equal to {min}."), N_("Must be greater than {min}."),
    N_("Must be less than or equal to {max}."), N_("Must be less than {max}."),
    N_("Must be greater than or equal to {min} and less than or equal to {max}."),
    N_("Must be greater than {min} and less than or equal to {max}."),
    N_("Must be greater than or equal to {min} and less than {max}."),
    N_("Must be greater than {min} and less than {max}."),
    N_("Must be one of: {choices}."), N_("String does not match expected pattern."),
))


def _known(message: object) -> str | object:
    return gettext(message) if isinstance(message, str) and message in \
        MARSHMALLOW_MESSAGES else message


def _translate_marshmallow() -> None:
    """marshmallow writes its messages in English when a field or validator fails; these
    wrappers look the (unformatted) message up in the catalog first. Only messages listed
    in MARSHMALLOW_MESSAGES are touched; a schema's own error= text is left alone."""
    if getattr(mfields.Field.make_error, "_translated", False):
        return

    def make_error(self: mfields.Field, key: str, **kwargs: object) -> ValidationError:
        message = self.error_messages.get(key)
        if isinstance(message, str) and message in MARSHMALLOW_MESSAGES:
            return ValidationError(gettext(message).format(**kwargs))
        return field_make_error(self, key, **kwargs)

    # Any: Length and Range each type their _format_error in their own way.
    def bounded(cls: Any) -> None:
        original = cls._format_error

        def format_error(self: validate.Validator, value: object, message: str) -> str:
            return original(self, value, _known(message) if self.error is None else message)
        cls._format_error = format_error

    def one_of(self: validate.OneOf, value: object) -> str:
        return str(_known(self.error)).format(input=value, choices=self.choices_text,
                                              labels=self.labels_text)

    def regexp(self: validate.Regexp, value: object) -> str:
        return str(_known(self.error)).format(input=value, regex=self.regex.pattern)

    # marshmallow has no hook for translating its messages, so its methods are replaced (once:
    # the mark on make_error says it is done); mypy rightly objects to assigning to a method.
    field_make_error = mfields.Field.make_error
    make_error._translated = True  # type: ignore[attr-defined]  # the mark read above
    mfields.Field.make_error = make_error  # type: ignore[method-assign]  # see above
    bounded(validate.Length)
    bounded(validate.Range)
    validate.OneOf._format_error = one_of  # type: ignore[method-assign]  # see above
    validate.Regexp._format_error = regexp  # type: ignore[method-assign]  # see above


_translate_marshmallow()


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


# The closed sets a template names in `code | label('disposition')`.
LABELLED: dict[str, type[v.Vocabulary]] = {
    "disposition": v.Disposition, "equipment_kind": v.EquipmentKind, "role": v.Role,
    "hold_source": v.HoldSource, "equipment_state": v.EquipmentState, "lot_state": v.LotState,
    "step_kind": v.StepKind, "reason_kind": v.ReasonKind, "event_kind": v.EventKind,
    "match_kind": v.MatchKind, "sba_status": v.SbaStatus, "pat_mode": v.PatMode,
    "moisture_state": v.MoistureState, "hold_status": v.HoldStatus, "edge_kind": v.EdgeKind,
    "material_type": v.MaterialType, "customer_category": v.CustomerCategory,
    "durable_kind": v.DurableKind, "durable_action": v.DurableAction,
    "abort_reason": v.AbortReason,
}


def label(code: object, vocabulary: str) -> str:
    """The word of a code of a closed set (`vocabulary` a key of LABELLED) in the current
    language; a code the set does not know (an equipment kind an engineer made up) shows
    as it is, nothing as an empty string."""
    if code is None or code == "":
        return ""
    word = LABELLED[vocabulary].labels().get(str(code))
    return str(code) if word is None else str(word)


def hold_text(hold: Any) -> str:
    """A hold's comment in the reader's language: rendered from its code when the system
    wrote it, else as stored."""
    return texts.render(hold.text_code, hold.text_params, hold.comment)


def event_text(data: dict[str, Any]) -> str:
    """The comment of a history event's data in the reader's language (a hold event
    carries the code of a text the system wrote; others their stored comment)."""
    return texts.render(data.get("text_code"), data.get("text_params"), data.get("comment"))


def init_app(app: Flask) -> None:
    compiled = compile_catalogs(SOURCE_DIR, Path(app.instance_path) / "translations")
    Babel(app, locale_selector=select_locale, timezone_selector=select_timezone,
          default_translation_directories=str(compiled))
    app.jinja_env.globals["get_locale"] = get_locale
    app.jinja_env.globals["localized"] = localized
    app.jinja_env.filters["label"] = label
    app.jinja_env.filters["who"] = texts.actor
    app.jinja_env.filters["hold_text"] = hold_text
    app.jinja_env.filters["event_text"] = event_text
