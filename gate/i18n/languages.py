"""The supported languages and how one is chosen: a switch, else a cookie, else the browser's Accept-Language."""

from __future__ import annotations

from dataclasses import dataclass

from babel.core import negotiate_locale


@dataclass(frozen=True)
class Language:
    locale: str  # Babel's identifier: the catalog's folder and the locale numbers and dates are formatted in
    switch: str  # what ?lang= and the cookie say
    label: str  # the switch's text, in the language itself
    html_lang: str  # BCP 47, for <html lang> (it picks the CJK font variant a browser uses)
    datetime: str  # CLDR patterns of a UTC moment; gate adds " UTC"
    datetime_s: str


# English keeps gate's ISO dates (sortable, unambiguous); Chinese the CLDR order the card's readers write.
# zh_Hans_CN rather than zh_CN: the script is part of the name, so Babel's data is Simplified Chinese's by
# construction, not through an alias.
EN = Language("en", "en", "English", "en", "yyyy-MM-dd HH:mm", "yyyy-MM-dd HH:mm:ss")
ZH = Language("zh_Hans_CN", "zh", "中文", "zh-CN", "y年M月d日 HH:mm", "y年M月d日 HH:mm:ss")
LANGUAGES = (EN, ZH)
DEFAULT = EN
_BY_NAME = {name.lower(): lang for lang in LANGUAGES for name in (lang.locale, lang.switch, lang.html_lang)}


def language(name: str | None) -> Language | None:
    """The language a switch, cookie or locale names (en, zh, zh_Hans_CN, zh-CN), or None for anything else."""
    return _BY_NAME.get(name.strip().lower()) if name else None


def accepted(header: str | None) -> list[str]:
    """The language tags of an Accept-Language header, most wanted first (RFC 9110 §12.5.4); q=0 means "not this"."""
    weighted: list[tuple[float, int, str]] = []
    for position, item in enumerate((header or "").split(",")):
        tag, _, params = item.partition(";")
        tag = tag.strip()
        quality = 1.0
        for param in params.split(";"):
            key, _, val = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(val)
                except ValueError:
                    quality = 0.0  # a malformed weight is no preference at all
        if tag and tag != "*" and quality > 0:
            weighted.append((-quality, position, tag))
    return [tag for _, _, tag in sorted(weighted)]


def negotiate(accept_language: str | None, cookie: str | None = None, query: str | None = None) -> str:
    """The Babel locale of a request: ?lang= first (the switch), then the cookie it set, then the browser's
    preference negotiated by Babel (zh-CN, zh-Hans, zh → Chinese; en-US → English), else English."""
    for chosen in (query, cookie):
        found = language(chosen)
        if found is not None:
            return found.locale
    # matched on the language subtag: a reader of zh-TW or zh-HK gets Simplified Chinese, nearer than English
    tag = negotiate_locale(accepted(accept_language), [lang.switch for lang in LANGUAGES], sep="-")
    found = language(tag)
    return (found or DEFAULT).locale
