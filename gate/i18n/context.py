"""The language of what is being rendered now, per request or per report, in a context variable.

The Jinja environment is shared by every request, so its gettext must not hold a language: it asks this module,
and each request (or `use` block) sees only its own value, across threads and tasks alike."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from jinja2 import Environment

from gate.i18n.catalogs import translations
from gate.i18n.languages import DEFAULT, Language, language

_locale: ContextVar[str] = ContextVar("gate_locale", default=DEFAULT.locale)


def current() -> Language:
    """The language being rendered in (English outside any request or `use` block)."""
    return language(_locale.get()) or DEFAULT


@contextlib.contextmanager
def use(locale: str) -> Iterator[Language]:
    """Render in a language for the duration of the block: `with i18n.use("zh_Hans_CN"): template.render(...)`."""
    chosen = language(locale)
    if chosen is None:
        raise ValueError(f"no catalog for the locale {locale!r}")
    token = _locale.set(chosen.locale)
    try:
        yield chosen
    finally:
        _locale.reset(token)


def gettext(message: str, **variables: Any) -> str:
    """message in the current language, %-formatted with variables when given (as Jinja's newstyle `_()` is)."""
    text = translations(_locale.get()).gettext(message)
    return text % variables if variables else text


def ngettext(singular: str, plural: str, n: int, **variables: Any) -> str:
    """The form for n in the current language; %(num)s is n."""
    text = translations(_locale.get()).ngettext(singular, plural, n)
    return text % {"num": n, **variables}


def install(env: Environment) -> None:
    """Give a Jinja environment `_()`, `gettext`, `ngettext`, `pgettext` and `{% trans %}` in the current language.

    Blocks are trimmed (a msgid is one line, however the template wraps it): babel.cfg extracts with the same
    setting, so what is looked up is what was extracted."""
    env.add_extension("jinja2.ext.i18n")
    env.policies["ext.i18n.trimmed"] = True
    env.install_gettext_callables(  # type: ignore[attr-defined]  # added by the i18n extension
        _raw_gettext, _raw_ngettext, newstyle=True, pgettext=_raw_pgettext, npgettext=_raw_npgettext
    )


# Jinja's newstyle wrappers do the %-formatting (and escape what they put in): they want plain lookups.
def _raw_gettext(message: str) -> str:
    return translations(_locale.get()).gettext(message)


def _raw_ngettext(singular: str, plural: str, n: int) -> str:
    return translations(_locale.get()).ngettext(singular, plural, n)


# pgettext: one English word, two Chinese ones ("queued" the status, 排队中; "queued" the moment, 提交)
def _raw_pgettext(context: str, message: str) -> str:
    return str(translations(_locale.get()).pgettext(context, message))  # babel's annotation says object


def _raw_npgettext(context: str, singular: str, plural: str, n: int) -> str:
    return str(translations(_locale.get()).npgettext(context, singular, plural, n))
