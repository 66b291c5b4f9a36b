"""The password policy: length, letters and digits, not the user name, not a common password.

Pure rules (no database); `mes.auth.services.check_password_policy` applies them when a user
is created and when a password changes, and raises InvalidInput with these messages.
"""

from __future__ import annotations

import string

from flask_babel import lazy_gettext as _l

DEFAULT_MIN_LENGTH = 12

# Passwords and password stems that lead every published list of leaked passwords, and the
# names of this product and its trade. A password is refused when it is one of them, or one
# of them with only digits and symbols around it ("Password2026!", "qwerty-123456").
_COMMON = """
password passw0rd p@ssword p@ssw0rd pass password1 123456 1234567 12345678 123456789
1234567890 12345678910 0123456789 987654321 0987654321 111111 000000 11111111 00000000
123123 123321 654321 666666 696969 121212 112233 qwerty qwertz azerty qwertyuiop qwerty123
asdfgh asdfghjkl zxcvbnm 1q2w3e4r 1q2w3e4r5t 1qaz2wsx qazwsx abc123 abcdef abcd1234
iloveyou letmein welcome welcome1 admin administrator root toor login guest user default
changeme secret monkey dragon master shadow sunshine princess football baseball soccer
hockey superman batman starwars trustno1 whatever freedom ninja mustang michael jennifer
hunter ranger charlie donald computer internet samsung google apple access test tester
testing temp temppassword mes meslite mes-lite manufacturing factory production operator
engineer planner customer wafer chip semiconductor packaging
"""
COMMON = frozenset(_COMMON.split())

_AROUND = string.digits + string.punctuation + " "


def _stem(password: str) -> str:
    return password.casefold().strip(_AROUND)


def policy_problems(password: str, username: str | None = None,
                    min_length: int = DEFAULT_MIN_LENGTH) -> list[str]:
    """What is wrong with `password` for the user `username` (empty when it is good)."""
    problems: list[str] = []
    if len(password) < min_length:
        problems.append(_l("Use at least %(count)s characters.", count=min_length))
    if not any(c.isalpha() for c in password) or not any(c.isdigit() for c in password):
        problems.append(_l("Use letters and digits."))
    folded = password.casefold()
    name = (username or "").casefold().strip()
    if name and (folded == name or not folded.replace(name, "").strip(_AROUND)
                 or not folded.replace(name[::-1], "").strip(_AROUND)):
        problems.append(_l("Do not use your user name as the password."))
    elif folded in COMMON or _stem(password) in COMMON:
        problems.append(_l("This password is too common; choose another."))
    return problems
