"""Language and time zone: the user's setting, else the browser's Accept-Language, else the
configured default. Times are stored in UTC and shown in the plant's time zone."""

from __future__ import annotations

from flask import Flask, current_app, request
from flask_babel import Babel, get_locale
from flask_login import current_user

from mes import PACKAGE_DIR

LOCALES = ("en", "zh_CN")


def select_locale() -> str:
    user_locale = getattr(current_user, "locale", None)
    if user_locale in LOCALES:
        return user_locale
    best = request.accept_languages.best_match(["en", "zh_CN", "zh"]) if request else None
    if best == "zh":
        return "zh_CN"
    return best or current_app.config["DEFAULT_LOCALE"]


def select_timezone() -> str:
    return current_app.config["PLANT_TIMEZONE"]


def init_app(app: Flask) -> None:
    Babel(app, locale_selector=select_locale, timezone_selector=select_timezone,
          default_translation_directories=str(PACKAGE_DIR / "translations"))
    app.jinja_env.globals["get_locale"] = get_locale
