"""The dashboard's and reports' languages: English and Simplified Chinese, from Babel message catalogs.

Outside a request (a Markdown report, a test) choose the language with `use(locale)`; in a request the dashboard's
middleware (gate.i18n.web) has chosen it. Either way `gettext` / `ngettext` and the dashboard's filters read it.

Updating the catalogs, from the repository root (babel.cfg says what is read and how):

    pybabel extract -F babel.cfg -o messages.pot gate templates
    pybabel update -i messages.pot -d gate/i18n/locale -D messages --no-fuzzy-matching

then translate the new empty msgstr of gate/i18n/locale/zh_Hans_CN/LC_MESSAGES/messages.po. Nothing is compiled:
the .po is read when the server first needs it (tests/test_i18n.py fails while a string lacks its translation).
"""

from __future__ import annotations

from gate.i18n.catalogs import translations
from gate.i18n.context import current, gettext, install, ngettext, use
from gate.i18n.languages import DEFAULT, EN, LANGUAGES, ZH, Language, language, negotiate

__all__ = [
    "DEFAULT",
    "EN",
    "LANGUAGES",
    "ZH",
    "Language",
    "current",
    "gettext",
    "install",
    "language",
    "negotiate",
    "ngettext",
    "translations",
    "use",
]
