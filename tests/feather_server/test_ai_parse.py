"""Reading a model's answer: JSON however it is wrapped, and garbage refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from feather_server.ai.parse import RawAnswer, UnusableAnswer, parse_answer

GOOD = RawAnswer("Red shoes on white", "red shoes")


@pytest.mark.parametrize("text", [
    '{"altText": "Red shoes on white", "fileName": "red shoes"}',
    'Sure! Here it is: {"altText": "Red shoes on white", "fileName": "red shoes"} Enjoy.',
    '```json\n{"altText": "Red shoes on white", "fileName": "red shoes"}\n```',
    '```\n{"altText": "Red shoes on white", "fileName": "red shoes"}\n```\nThanks!',
    "{'altText': 'Red shoes on white', 'fileName': 'red shoes'}",
    "{'altText': 'Red shoes on white', 'fileName': 'red shoes',}",
    '{altText: "Red shoes on white", fileName: "red shoes"}',
    '{“altText”: “Red shoes on white”, “fileName”: “red shoes”}',
    '{"alt_text": "Red shoes on white", "file_name": "red shoes"}',
    '{"result": {"alt text": "Red shoes on white", "filename": "red shoes"}}',
    '<think>The user wants {"altText": "x"}... fine.</think>\n'
    '{"altText": "Red shoes on white", "fileName": "red shoes"}',
    '{"altText": "Red shoes on white", "fileName": "red shoes"}\n\n{"altText": "other"}',
    'Noise {not json} then {"altText": "Red shoes on white", "fileName": "red shoes"}',
    '**Alt text:** Red shoes on white\n**File name:** red shoes',
    '{"altText": "  Red   shoes on white ", "fileName": "\\"red shoes\\""}',
])
def test_answers_wrapped_any_way_are_read(text: str) -> None:
    assert parse_answer(text) == GOOD


def test_braces_and_apostrophes_inside_values_do_not_confuse_the_scan() -> None:
    text = "Here: {'altText': \"It's a {red} shoe\", 'fileName': 'red shoe'} - ok"
    assert parse_answer(text) == RawAnswer("It's a {red} shoe", "red shoe")


def test_non_ascii_answers_survive() -> None:
    answer = parse_answer('```json\n{"altText": "Красные кроссовки", "fileName": "红色跑鞋"}\n```')
    assert answer == RawAnswer("Красные кроссовки", "红色跑鞋")


def test_one_field_is_enough() -> None:
    assert parse_answer('{"fileName": "red shoes"}') == RawAnswer(None, "red shoes")


@pytest.mark.parametrize("text", [
    "", "   ", "I'm sorry, I can't help with that.", "{}", "[1, 2]", "null", '"altText"',
    '{"foo": "bar"}', '{"altText": 42, "fileName": ["a"]}', '{"altText": "",  "fileName": " "}',
    '{"altText": "Cut off mid-sen', "{{{{", "}}}", "<think>only thinking</think>",
])
def test_garbage_is_refused(text: str) -> None:
    with pytest.raises(UnusableAnswer):
        parse_answer(text)


@given(st.text(max_size=400))
def test_any_text_gives_an_answer_or_unusable_never_a_crash(text: str) -> None:
    try:
        answer = parse_answer(text)
    except UnusableAnswer:
        return
    assert answer.alt_text or answer.file_name
