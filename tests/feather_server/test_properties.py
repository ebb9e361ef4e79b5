"""Property tests over every form field of both dialects: 200, or 400 naming the fields.

Values are drawn across types (numbers in and out of range, text, empty, huge, NaN,
repeated with different values); the answer is never a 500.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict

from feather_core.errors import InvalidOptions
from feather_server import create_app
from feather_server.schema import FEATHER, FLUX, compress_options, fields_of, read_values
from feather_server.settings import Settings
from tests.images import encode, photo

PNG = encode(photo(12, 9), "PNG")
FEATHER_FIELDS = fields_of(FEATHER, files=False)
FLUX_FIELDS = fields_of(FLUX, files=False)

_NUMBERS = st.one_of(
    st.integers(-10**6, 10**6).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["0", "1", "-1", "40", "100", "101", "0.1", "3", "9", "10", "360",
                     "-360", "1e309", "-1e309", "nan", "inf", "9" * 400, "1_000", " 5 ",
                     "0x10", "1e-9", "5.0", "true", "on"]),
)
_TEXT = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["", " ", "auto", "jpeg", "jpg", "png", "webp", "avif", "gif", "final",
                     "preview", "BR", "tl", "mc", "false", "no", "off", "yes", "\x00",
                     "é" * 10, "a" * 5000]),
)
_VALUE = st.one_of(_NUMBERS, _TEXT)


def _form(table: dict[str, Any]) -> st.SearchStrategy[list[tuple[str, str]]]:
    names = sorted(table)
    single = st.tuples(st.sampled_from(names), _VALUE)
    repeated = st.tuples(st.sampled_from(names), _VALUE, _VALUE).map(
        lambda t: [(t[0], t[1]), (t[0], t[2])])
    return st.lists(st.one_of(single.map(lambda t: [t]), repeated), max_size=8).map(
        lambda groups: [pair for group in groups for pair in group])


@pytest.fixture(scope="module")
def property_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    data_dir = tmp_path_factory.mktemp("properties")
    return create_app(Settings.from_env({}, data_dir=str(data_dir), rate_limit_per_minute=0))


_SETTINGS = settings(max_examples=60, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture,
                                            HealthCheck.too_slow])


@_SETTINGS
@given(fields=_form(FEATHER_FIELDS))
def test_feather_dialect(property_app: Flask, fields: list[tuple[str, str]]) -> None:
    data = MultiDict(fields)
    data.add("file", (io.BytesIO(PNG), "p.png"))
    response = property_app.test_client().post("/api/compress", data=data)
    assert response.status_code in (200, 400), (fields, response.get_json())
    if response.status_code == 400:
        error = response.get_json()["error"]
        assert error["code"] == "INVALID_INPUT"
        assert error["details"], error
        assert set(error["details"]) <= set(FEATHER_FIELDS) | {"file"}, error


@_SETTINGS
@given(fields=_form(FLUX_FIELDS))
def test_flux_dialect(property_app: Flask, fields: list[tuple[str, str]]) -> None:
    data = MultiDict(fields)
    data.add("file", (io.BytesIO(PNG), "p.png"))
    data.add("format", "webp") if not any(k == "format" for k, _ in fields) else None
    response = property_app.test_client().post("/api/compress", data=data)
    assert response.status_code in (200, 400, 403), (fields, response.get_json())
    body = response.get_json()
    if response.status_code == 403:  # an AI field switched on, without a key
        assert body["error"] == "ia_not_available", body
    elif response.status_code == 400:
        assert isinstance(body["error"], str), body
        assert body["message"], body
    else:
        assert body["data"][0]["originalName"] == "p.png"


@settings(max_examples=300, deadline=None)
@given(fields=_form(FEATHER_FIELDS), convert=st.booleans())
def test_feather_parser_raises_only_invalid_options(fields: list[tuple[str, str]],
                                                    convert: bool) -> None:
    try:
        compress_options(read_values(MultiDict(fields), FEATHER), FEATHER, convert=convert)
    except InvalidOptions as exc:
        refused = exc
    else:
        return
    assert refused.details
    assert set(refused.details) <= set(FEATHER_FIELDS)


@settings(max_examples=300, deadline=None)
@given(fields=_form(FLUX_FIELDS))
def test_flux_parser_raises_only_invalid_options(fields: list[tuple[str, str]]) -> None:
    try:
        compress_options(read_values(MultiDict(fields), FLUX), FLUX)
    except InvalidOptions as exc:
        refused = exc
    else:
        return
    assert refused.details
    assert set(refused.details) <= set(FLUX_FIELDS)


@pytest.mark.parametrize("name", sorted(FEATHER_FIELDS))
def test_each_feather_field_out_of_type_is_named(property_app: Flask, name: str) -> None:
    data = MultiDict([(name, "not-a-value"), ("file", (io.BytesIO(PNG), "p.png"))])
    response = property_app.test_client().post("/api/compress", data=data)
    assert response.status_code == 400
    assert name in response.get_json()["error"]["details"]
