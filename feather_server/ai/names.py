"""SEO file names: lowercase ASCII words joined by hyphens, unique within a session.

Transliteration (中文 → pinyin, Русский → Latin, Arabic, Hindi, 한국어, 日本語 ...) is
python-slugify with the Unidecode backend, both pinned in setup.cfg.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable

from slugify import slugify

# Long enough for five or six descriptive words; search engines show no more, and
# file systems and download dialogs stay comfortable.
MAX_STEM = 60
# Languages that elide with an apostrophe (l'église, dell'arte): keep the two words apart.
_ELIDING = {"Français", "Italiano", "Català"}
_APOSTROPHES = "'’ʼ`"
_IMAGE_EXTENSION = re.compile(
    r"\.(jpe?g|png|webp|avif|gif|tiff?|bmp|heic|heif|svg|jxl)\s*$", re.IGNORECASE)


def _trim(words: list[str], limit: int) -> str:
    """The longest prefix of ``words`` within ``limit`` characters (hyphens counted)."""
    kept: list[str] = []
    length = 0
    for word in words:
        extra = len(word) + (1 if kept else 0)
        if length + extra > limit:
            break
        kept.append(word)
        length += extra
    if not kept and words:
        return words[0][:limit]  # one very long word: cut it rather than lose the name
    return "-".join(kept)


def seo_stem(text: str, language: str = "English", max_length: int = MAX_STEM) -> str | None:
    """``text`` as an SEO file-name stem, or None when nothing of it survives.

    "Красные кроссовки" → "krasnye-krossovki"; a trailing image extension the model
    added is dropped; the stem is cut after a whole word within ``max_length``.
    """
    text = _IMAGE_EXTENSION.sub("", text.strip())
    replacement = "-" if language in _ELIDING else ""
    for apostrophe in _APOSTROPHES:
        text = text.replace(apostrophe, replacement)
    slug = slugify(text, lowercase=True)
    words = [w for w in slug.split("-") if w]
    stem = _trim(words, max_length)
    return stem or None


class NameBook:
    """The file names already given in a session; hands out unused ones.

    Names compare without regard to case (two downloads "a.webp" and "A.webp" would
    overwrite each other on many file systems). Safe to share between threads.
    """

    def __init__(self, taken: Iterable[str] = ()) -> None:
        self._taken = {name.lower() for name in taken}
        self._lock = threading.Lock()

    def claim(self, stem: str, extension: str) -> str:
        """``stem.extension``, or ``stem-2.extension``, ``stem-3`` ... when taken."""
        extension = extension.lstrip(".")
        with self._lock:
            number = 1
            while True:
                suffix = "" if number == 1 else f"-{number}"
                base = stem if not suffix else _trim(stem.split("-"), MAX_STEM - len(suffix))
                name = f"{base}{suffix}.{extension}"
                if name.lower() not in self._taken:
                    self._taken.add(name.lower())
                    return name
                number += 1
