"""SEO names and languages: ASCII slugs from any script, trimmed, unique, and the 15 names."""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from feather_core.errors import InvalidOptions
from feather_server.ai.describe import cap_alt_text
from feather_server.ai.languages import LANGUAGES, parse_language, written_in
from feather_server.ai.names import MAX_STEM, NameBook, seo_stem

SLUG = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


@pytest.mark.parametrize(("text", "language", "stem"), [
    ("Red running shoes", "English", "red-running-shoes"),
    ("Women's running shoes.jpg", "English", "womens-running-shoes"),
    ("L’église de Montréal", "Français", "l-eglise-de-montreal"),
    ("Rote Laufschuhe weiß", "Deutsch", "rote-laufschuhe-weiss"),
    ("Czerwone buty żółte", "Polski", "czerwone-buty-zolte"),
    ("красные кроссовки", "Русский", "krasnye-krossovki"),
    ("红色跑鞋", "中文", "hong-se-pao-xie"),
    ("빨간 운동화", "한국어", "bbalgan-undonghwa"),
    ("  --Hello__World!!  ", "English", "hello-world"),
])
def test_slugs_are_lowercase_ascii_words_joined_by_hyphens(text: str, language: str,
                                                           stem: str) -> None:
    assert seo_stem(text, language) == stem


@pytest.mark.parametrize("text", ["赤いランニングシューズ", "حذاء جري أحمر", "लाल जूते"])
def test_other_scripts_are_transliterated(text: str) -> None:
    stem = seo_stem(text)
    assert stem
    assert SLUG.match(stem)


def test_long_names_are_cut_after_a_whole_word() -> None:
    words = "sunset over the old harbour with fishing boats and seagulls flying home tonight"
    stem = seo_stem(words)
    assert stem is not None
    assert len(stem) <= MAX_STEM
    assert words.replace(" ", "-").startswith(stem)
    assert words.split()[len(stem.split("-"))]
    assert seo_stem("x" * 200) == "x" * MAX_STEM


@pytest.mark.parametrize("text", ["", "   ", "🙂 ✨", "!!!", ".png"])
def test_nothing_left_is_no_name(text: str) -> None:
    assert seo_stem(text) is None


@given(st.text(max_size=300))
def test_any_text_gives_a_clean_slug_or_none(text: str) -> None:
    stem = seo_stem(text)
    assert stem is None or (SLUG.match(stem) and len(stem) <= MAX_STEM)


def test_names_are_unique_within_the_book_regardless_of_case() -> None:
    book = NameBook(["red-shoes.webp", "Blue.WEBP"])
    assert book.claim("red-shoes", "webp") == "red-shoes-2.webp"
    assert book.claim("red-shoes", "webp") == "red-shoes-3.webp"
    assert book.claim("red-shoes", "png") == "red-shoes.png"
    assert book.claim("blue", "webp") == "blue-2.webp"
    long = "-".join(["word"] * 12)[:MAX_STEM].rstrip("-")
    first, second = book.claim(long, "webp"), book.claim(long, "webp")
    assert first != second
    assert len(second) <= MAX_STEM + len(".webp")


def test_the_fifteen_languages_by_their_exact_names() -> None:
    assert LANGUAGES == ("English", "Español", "Català", "Français", "Deutsch", "Italiano",
                         "Português", "Nederlands", "Polski", "Русский", "中文", "日本語",
                         "한국어", "Arabic", "Hindi")
    for name in LANGUAGES:
        assert parse_language(name) == name
        assert parse_language(unicodedata.normalize("NFD", name)) == name
    assert parse_language("") == parse_language(None) == "English"


@pytest.mark.parametrize("name", ["english", "Spanish", "es", "Chinese", "русский", "Klingon",
                                  "English ", "Français\x00"])
def test_other_language_names_are_refused(name: str) -> None:
    if name == "English ":
        assert parse_language(name) == "English"  # surrounding blanks are not part of a name
        return
    with pytest.raises(InvalidOptions) as caught:
        parse_language(name)
    assert "language" in caught.value.details


def test_script_check_refuses_text_in_the_wrong_script() -> None:
    assert written_in("Красные кроссовки Nike", "Русский")
    assert not written_in("Red running shoes", "Русский")
    assert not written_in("Red running shoes", "中文")
    assert written_in("红色跑鞋", "日本語")
    assert written_in("ランニング", "日本語")
    assert written_in("Red running shoes", "Deutsch")  # Latin scripts are not guessed
    assert written_in("2024", "Hindi")


def test_alt_text_is_capped_at_80_characters_on_a_word() -> None:
    long = "A very long description of a red running shoe standing on a white table " * 3
    capped = cap_alt_text(long)
    assert len(capped) <= 80
    assert long.startswith(capped)
    assert not capped.endswith(" ")
    assert long[len(capped)] == " "
    chinese = "白色背景上的红色跑鞋" * 12
    assert cap_alt_text(chinese) == chinese[:80]
    assert cap_alt_text("  Short  text ") == "Short text"
