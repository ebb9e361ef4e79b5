"""The languages of AI alt text and file names: the FluxImage document's 15, by their names."""

from __future__ import annotations

import unicodedata

from feather_core.errors import InvalidOptions

DEFAULT_LANGUAGE = "English"

# Exactly the names the FluxImage document accepts, in its order.
LANGUAGES: tuple[str, ...] = (
    "English", "Español", "Català", "Français", "Deutsch", "Italiano", "Português",
    "Nederlands", "Polski", "Русский", "中文", "日本語", "한국어", "Arabic", "Hindi",
)

# How the model is told which language to write in: the English name is unambiguous
# for every model, the document's name alone is not ("Arabic" vs "العربية" is fine, but
# "中文" says nothing about simplified or traditional).
PROMPT_NAMES: dict[str, str] = {
    "English": "English",
    "Español": "Spanish (Español)",
    "Català": "Catalan (Català)",
    "Français": "French (Français)",
    "Deutsch": "German (Deutsch)",
    "Italiano": "Italian (Italiano)",
    "Português": "Portuguese (Português)",
    "Nederlands": "Dutch (Nederlands)",
    "Polski": "Polish (Polski)",
    "Русский": "Russian (Русский)",
    "中文": "Simplified Chinese (中文)",
    "日本語": "Japanese (日本語)",
    "한국어": "Korean (한국어)",
    "Arabic": "Arabic (العربية)",
    "Hindi": "Hindi (हिन्दी)",
}

# Unicode script of the letters expected in each non-Latin language: an answer whose
# letters are all from another script was written in the wrong language.
SCRIPTS: dict[str, tuple[str, ...]] = {
    "Русский": ("CYRILLIC",),
    "中文": ("CJK",),
    "日本語": ("CJK", "HIRAGANA", "KATAKANA"),
    "한국어": ("HANGUL",),
    "Arabic": ("ARABIC",),
    "Hindi": ("DEVANAGARI",),
}


def parse_language(raw: str | None) -> str:
    """The language named by the form field ``language`` (default English).

    The names are matched exactly (after trimming and Unicode NFC normalisation, so a
    client that sends a decomposed "Español" is not refused); anything else raises
    ``InvalidOptions`` (400).
    """
    value = unicodedata.normalize("NFC", (raw or "").strip())
    if not value:
        return DEFAULT_LANGUAGE
    if value not in LANGUAGES:
        raise InvalidOptions(
            f"Unsupported language {value!r}; accepted: " + ", ".join(LANGUAGES),
            {"language": "must be one of " + ", ".join(LANGUAGES)})
    return value


def _script_of(char: str) -> str:
    try:
        return unicodedata.name(char).split(" ", 1)[0]
    except ValueError:
        return ""


def written_in(text: str, language: str) -> bool:
    """False when ``text`` has letters but none in the script of ``language``.

    Latin-script languages are not checked (brand names and loan words make that
    guess unreliable); digits and punctuation alone pass.
    """
    scripts = SCRIPTS.get(language)
    if not scripts:
        return True
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return True
    return any(_script_of(c) in scripts for c in letters)
