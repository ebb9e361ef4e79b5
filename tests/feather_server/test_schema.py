"""One field table: the parser, OpenAPI, the command line and the form all agree with it."""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

import pytest
from flask.testing import FlaskClient

from feather_cli.main import cli
from feather_cli.options import cli_fields, option_name
from feather_core.errors import InvalidOptions
from feather_server.openapi import build_document
from feather_server.schema import (
    FEATHER,
    FEATHER_ONLY,
    FLUX,
    FLUX_ONLY,
    FormValues,
    fields_of,
    read_values,
)


def _form_properties(document: dict[str, Any], path: str) -> dict[str, Any]:
    body = document["paths"][path]["post"]["requestBody"]["content"]["multipart/form-data"]
    properties: dict[str, Any] = body["schema"]["properties"]
    return properties


@pytest.mark.parametrize(("dialect", "path"), [(FEATHER, "/api/compress"), (FLUX, "/api/batch")])
def test_openapi_is_the_schema(dialect: str, path: str) -> None:
    properties = _form_properties(build_document("test"), path)
    fields = fields_of(dialect)
    assert set(properties) == set(fields)
    for name, field in fields.items():
        documented = properties[name]
        assert documented["description"] == field.help, name
        if field.kind == "quality":
            assert field.range is not None
            number, words = documented["anyOf"]
            assert (number["minimum"], number["maximum"]) == (field.range.low, field.range.high)
            assert set(words["enum"]) == set(field.choices)
        elif field.range is not None:
            assert (documented["minimum"], documented["maximum"]) == (
                field.range.low, field.range.high), name
        if field.choices and field.kind != "quality":
            assert set(field.choices) <= set(documented["enum"]), name
        if field.default is not None:
            assert documented["default"] == field.default, name


RANGED = sorted(n for n, f in fields_of(FEATHER, files=False).items() if f.range is not None)


@pytest.mark.parametrize("name", RANGED)
def test_parser_takes_the_edges_of_each_range_and_refuses_past_them(name: str) -> None:
    field = fields_of(FEATHER)[name]
    assert field.range is not None
    low, high = field.range.low, field.range.high
    # The crop fields come all four or none.
    others = {n: "1" for n in ("cropX", "cropY", "cropWidth", "cropHeight")} \
        if name.startswith("crop") else {}
    for value in (low, high):
        form = FormValues({**others, name: f"{value:g}"})
        assert read_values(form, FEATHER)[name] == value
    step = 1 if field.kind == "int" else 0.0001 * max(1.0, abs(high))
    for value in (low - step, high + step):
        with pytest.raises(InvalidOptions) as refused:
            read_values(FormValues({**others, name: repr(value)}), FEATHER)
        assert name in refused.value.details


def test_cli_help_is_the_schema() -> None:
    command = cli.commands["compress"]
    options = {opt.name: opt for opt in command.params}
    for name, field in cli_fields().items():
        option = options[option_name(name).replace("-", "_")]
        assert field.help in (option.help or ""), name
        assert "--" + option_name(name) in option.opts


def test_dialect_only_fields() -> None:
    assert {"outputFormat"} == FEATHER_ONLY
    assert {"format", "sessionId", "autoAltText", "autoRenameSEO", "language",
                         "aiContext", "seoKeywords"} == FLUX_ONLY


def test_form_limits_are_the_schema(client: FlaskClient) -> None:
    html = client.get("/").get_data(as_text=True)
    for name, field in fields_of(FEATHER, files=False).items():
        if field.range is None:
            continue
        match = re.search(rf'<input[^>]*name="{name}"[^>]*>', html)
        if match is None:
            continue  # not every field is on the form (effort, rotate's free angles)
        tag = match.group(0)
        assert f'min="{field.range.low:g}"' in tag or name == "targetMB", tag
        assert f'max="{field.range.high:g}"' in tag or name == "targetMB", tag


def test_the_command_line_imports_no_flask() -> None:
    code = ("import sys; from feather_cli.main import cli;"
            "from feather_cli import compress, info, options, run;"
            "bad = [m for m in sys.modules if m.split('.')[0] in"
            " ('flask', 'werkzeug', 'sqlalchemy')]; print(','.join(bad))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == ""
    helped = subprocess.run([sys.executable, "-m", "feather_cli.main", "--help"],
                            capture_output=True, text=True, check=True)
    assert "compress" in helped.stdout
