"""The message catalogs, read from their .po files: nothing compiled is kept, so nothing compiled can go stale."""

from __future__ import annotations

import functools
import io
from pathlib import Path

from babel.messages import mofile, pofile
from babel.support import Translations

from gate.i18n.languages import language

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "messages"


def po_path(locale: str) -> Path:
    return LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


def translations(locale: str) -> Translations:
    """A language's translations (gettext, ngettext, ...) by any of its names (zh_Hans_CN, zh, zh-CN). English is
    the msgids themselves; an unknown locale is refused (ValueError) rather than silently shown in English."""
    chosen = language(locale)
    if chosen is None:
        raise ValueError(f"no catalog for the locale {locale!r}")
    return _load(chosen.locale)


@functools.cache  # per locale, for the process's life: a changed .po is read at the next start
def _load(locale: str) -> Translations:
    path = po_path(locale)
    if not path.is_file():
        return Translations()  # English: the msgids are the text
    with path.open("rb") as po:
        # fuzzy entries are guesses pybabel update made: shown in English until someone confirms them
        catalog = pofile.read_po(po, locale=locale, domain=DOMAIN, ignore_obsolete=True)
    compiled = io.BytesIO()
    mofile.write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)
