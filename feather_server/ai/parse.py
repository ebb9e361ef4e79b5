"""Read the model's answer defensively.

Many OpenAI-compatible servers ignore ``response_format`` and many models wrap their
JSON in prose, in a code fence, in a reasoning block, or write Python-style single
quotes and trailing commas. This module finds the one object that carries the answer,
or says there is none (``UnusableAnswer``): garbage is never taken for an answer.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from typing import Any


class UnusableAnswer(Exception):
    """The model's text holds no answer we can use."""


@dataclass(frozen=True)
class RawAnswer:
    """The two strings the model was asked for, as it wrote them (None when absent)."""

    alt_text: str | None
    file_name: str | None


_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_FENCE = re.compile(r"```[A-Za-z0-9_-]*\s*\n?(.*?)```", re.DOTALL)
_BARE_KEY = re.compile(r'([{,]\s*)([A-Za-z_][A-Za-z0-9_ ]*?)\s*:')
_SMART_QUOTES = str.maketrans({"“": '"', "”": '"', "‘": "'", "’": "'"})

# Spellings models use for the two keys, compared after dropping case, "_", "-" and " ".
_ALT_KEYS = {"alttext", "alt", "alternativetext", "description", "alttag"}
_NAME_KEYS = {"filename", "name", "seofilename", "seoname", "slug", "file", "newname"}

# "Alt text: ..." / "File name: ..." lines, for models that answer with labelled prose.
_LABELLED = re.compile(
    r"^[\s*#>-]*(alt[\s_-]*text|file[\s_-]*name)[\s*_]*[:=][\s*_]*(.+?)\s*$",
    re.IGNORECASE | re.MULTILINE)

_MAX_TEXT = 20_000  # a runaway answer is not worth scanning in full


def _objects(text: str) -> list[str]:
    """Every balanced top-level ``{...}`` span of ``text``, quote-aware."""
    spans: list[str] = []
    depth = 0
    start = -1
    quote = ""
    escaped = False
    for index, char in enumerate(text):
        if quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = ""
            continue
        if char in "\"'" and depth > 0:
            # An apostrophe inside a bare word ("it's") is not a quote.
            if char == "'" and index > 0 and text[index - 1].isalnum():
                continue
            quote = char
        elif char == "{":
            if depth == 0:
                start = index
            depth += 1
        elif char == "}" and depth > 0:
            depth -= 1
            if depth == 0:
                spans.append(text[start:index + 1])
    return spans


def _load(candidate: str) -> dict[str, Any] | None:
    """The dict in ``candidate`` read as JSON, then as a Python literal, then with its
    bare keys and typographic quotes repaired; None when nothing reads."""
    attempts = (candidate, candidate.translate(_SMART_QUOTES))
    for text in attempts:
        for reader in (json.loads, ast.literal_eval):
            try:
                value = reader(text)
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                continue
            if isinstance(value, dict):
                return value
    repaired = _BARE_KEY.sub(lambda m: f'{m.group(1)}"{m.group(2).strip()}":',
                             candidate.translate(_SMART_QUOTES))
    try:
        value = json.loads(repaired)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _key(name: object) -> str:
    return re.sub(r"[\s_-]", "", str(name)).lower()


def _text(value: object) -> str | None:
    if isinstance(value, str):
        cleaned = " ".join(value.split()).strip(" \"'`")
        return cleaned or None
    return None


def _from_dict(found: dict[str, Any]) -> RawAnswer | None:
    alt = name = None
    for key, value in found.items():
        normalised = _key(key)
        if normalised in _ALT_KEYS and alt is None:
            alt = _text(value)
        elif normalised in _NAME_KEYS and name is None:
            name = _text(value)
    if alt is None and name is None:
        # {"result": {...}} and the like: look one level down.
        for value in found.values():
            if isinstance(value, dict):
                nested = _from_dict(value)
                if nested is not None:
                    return nested
        return None
    return RawAnswer(alt, name)


def parse_answer(text: str) -> RawAnswer:
    """The alt text and file name in a model's answer.

    Accepts JSON alone, JSON in prose or code fences (first usable object wins),
    single quotes, trailing commas, bare keys, trailing text, and "Alt text: ..."
    labelled lines. Raises ``UnusableAnswer`` when none of these hold an answer.
    """
    if not isinstance(text, str) or not text.strip():
        raise UnusableAnswer("empty answer")
    text = _THINK.sub("", text[:_MAX_TEXT]).strip()
    candidates = [text, *_FENCE.findall(text)]
    for candidate in candidates:
        for span in ([candidate.strip()] if candidate.strip().startswith("{") else []) + \
                _objects(candidate):
            found = _load(span)
            if found is not None:
                answer = _from_dict(found)
                if answer is not None:
                    return answer
    labelled: dict[str, str] = {}
    for label, value in _LABELLED.findall(text):
        labelled.setdefault(_key(label), value)
    answer = _from_dict(labelled) if labelled else None
    if answer is not None:
        return answer
    raise UnusableAnswer("no JSON object with altText or fileName in the answer")
