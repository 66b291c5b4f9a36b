"""Finds user-visible text in a Jinja template that is not marked for translation.

The template is tokenised with Jinja's own lexer: text between `{{ }}` / `{% %}` is the HTML
the browser shows, everything inside them is code (a `{% trans %}` block's body counts as
marked). Jinja constructs are replaced by a letter-free marker and the rest goes through an
HTML parser, which reports

- text nodes (outside <script>, <style>) that still contain a letter;
- visible attributes with a letter: placeholder, title, aria-label, alt, label, the texts
  our scripts show (data-confirm, data-text-*), and the value of input buttons
  (<input type=submit|button|reset>);
- string literals passed as visible keyword arguments of macro calls (label=, help=,
  title=, placeholder=, empty=, caption=, confirm=).

Brand names and symbols are allowed through ALLOWED."""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser

from jinja2 import Environment, nodes

MARK = "\u241f"  # a letter-free stand-in for a template construct
VISIBLE_ATTRS = {"placeholder", "title", "aria-label", "alt", "label", "aria-description",
                 "aria-placeholder", "aria-roledescription", "aria-valuetext"}
BUTTON_TYPES = {"submit", "button", "reset"}
VISIBLE_KWARGS = {"label", "help", "title", "placeholder", "empty", "caption", "confirm",
                  "heading", "hint", "legend", "text"}
# Words that read the same in every language: the product's name, statistical symbols
# (quartiles, PAT's k, sample size n), SBA's yield and bin limits, the byte unit, the
# version prefix of a route ("v3").
ALLOWED = {"MES-lite", "Q1", "Q3", "k", "n", "SYL1", "SYL2", "SBL1", "SBL2", "B", "v"}
LETTER = re.compile(r"[^\W\d_]")
# A macro that writes attributes into its caller's tag: name="value" pairs only.
ATTRIBUTES_ONLY = re.compile(r'(\s*[\w:-]+="[^"]*")+\s*')


@dataclass(frozen=True)
class Finding:
    line: int
    text: str
    where: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.where}: {self.text!r}"


def _env() -> Environment:
    return Environment(extensions=["jinja2.ext.i18n"])


def _visible(text: str) -> str | None:
    """The text with markers and allowed words removed, if a letter is left."""
    rest = text.replace(MARK, " ")
    if ATTRIBUTES_ONLY.fullmatch(rest):
        return None
    for word in ALLOWED:
        rest = re.sub(rf"(?<![\w-]){re.escape(word)}(?![\w-])", " ", rest)
    rest = " ".join(rest.split())
    return rest if LETTER.search(rest) else None


def _html_only(source: str, env: Environment) -> str:
    """The template's HTML with every Jinja construct (and {% trans %} bodies) replaced by
    MARK; newlines are kept so that line numbers still match."""
    out: list[str] = []
    line = 1  # the line the output has reached
    in_trans = 0
    block: list[str] = []
    inside = False
    for lineno, kind, value in env.lex(source):
        if lineno > line:  # whitespace control ate newlines: put them back
            out.append("\n" * (lineno - line))
            line = lineno
        line += value.count("\n")
        if kind == "data":
            if inside or in_trans:
                out.append(MARK + "\n" * value.count("\n"))
            else:
                out.append(value)
            continue
        if kind in ("block_begin", "variable_begin", "comment_begin", "linestatement_begin"):
            inside = True
            block = []
        if kind == "name":
            block.append(value)
        if kind in ("block_end", "variable_end", "comment_end", "linestatement_end"):
            inside = False
            if block[:1] == ["trans"]:
                in_trans += 1
            elif block[:1] == ["endtrans"]:
                in_trans -= 1
            out.append(MARK)
        out.append("\n" * value.count("\n"))
    return "".join(out)


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.findings: list[Finding] = []
        self.skip = 0

    def _add(self, text: str | None, where: str) -> None:
        left = _visible(text or "")
        if left:
            self.findings.append(Finding(self.getpos()[0], left, where))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self.skip += 1
        values = {name: value for name, value in attrs}
        for name, value in attrs:
            # data-confirm and data-text-* carry texts our scripts show (mes/static/js)
            if name in VISIBLE_ATTRS or name == "data-confirm" or name.startswith("data-text"):
                self._add(value, f"<{tag} {name}>")
        if is_button(tag, values):
            self._add(values.get("value"), f"<{tag} value>")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag in ("script", "style"):
            self.skip -= 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self.skip:
            self.skip -= 1

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self._add(data, "text")


def is_button(tag: str, attrs: dict[str, str | None]) -> bool:
    # A <button>'s value is sent, not shown (its content is the label); an input's is shown.
    return tag == "input" and (attrs.get("type") or "").lower() in BUTTON_TYPES


def _literal_kwargs(source: str, env: Environment) -> list[Finding]:
    found = []
    for call in env.parse(source).find_all(nodes.Call):
        for kw in call.kwargs:
            if (kw.key in VISIBLE_KWARGS and isinstance(kw.value, nodes.Const)
                    and isinstance(kw.value.value, str) and _visible(kw.value.value)):
                found.append(Finding(kw.value.lineno, kw.value.value, f"{kw.key}="))
    return found


def scan(source: str) -> list[Finding]:
    """Every piece of user-visible text in the template that is not marked."""
    env = _env()
    parser = _Parser()
    parser.feed(_html_only(source, env))
    parser.close()
    return sorted(parser.findings + _literal_kwargs(source, env), key=lambda f: f.line)
