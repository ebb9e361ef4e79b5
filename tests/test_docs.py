"""GET /api/docs, and the README parts that must not drift from the code."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask, jsonify
from flask.testing import FlaskClient

from feather_cli.main import cli
from feather_server.api import docs
from feather_server.http.errors import STATUS_BY_CODE
from feather_server.readme_tables import TABLES, table_in
from feather_server.settings import settings_table
from tests.paths import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")

SAMPLE: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "Sample Feather", "version": "9.9.9", "description": "For the page."},
    "paths": {
        "/api/compress": {
            "post": {
                "summary": "Compress an image",
                "requestBody": {"required": True, "content": {"multipart/form-data": {
                    "schema": {"$ref": "#/components/schemas/CompressForm"}}}},
                "responses": {
                    "200": {"description": "The image",
                            "headers": {"X-Output-Bytes": {"description": "Output size",
                                                           "schema": {"type": "integer"}}},
                            "content": {"image/webp": {"schema": {"type": "string",
                                                                  "format": "binary"}}}},
                    "400": {"$ref": "#/components/responses/Invalid"},
                },
            },
        },
        "/api/model": {
            "get": {
                "summary": "The model",
                "parameters": [{"name": "variant", "in": "query", "schema": {
                    "type": "string", "enum": ["full", "quantized"], "default": "full"}}],
                "responses": {"200": {"description": "ONNX bytes"}},
            },
        },
    },
    "components": {
        "schemas": {
            "CompressForm": {"type": "object", "required": ["file"], "properties": {
                "file": {"type": "string", "format": "binary", "description": "Image"},
                "quality": {"type": "integer", "minimum": 1, "maximum": 100, "default": 80,
                            "description": "Encoder quality"},
                "self": {"$ref": "#/components/schemas/Loop"},
            }},
            "Loop": {"$ref": "#/components/schemas/Loop"},
            "Error": {"type": "object", "properties": {"error": {"type": "object"}}},
        },
        "responses": {"Invalid": {"description": "Invalid <options>", "content": {
            "application/json": {"example": {"error": {"code": "INVALID_INPUT"}}}}}},
    },
}


@pytest.fixture
def sample_client() -> FlaskClient:
    """An app serving SAMPLE at /api/openapi.json, with the docs page."""
    app = Flask(__name__)

    @app.get("/api/openapi.json")
    def openapi() -> Any:
        return jsonify(SAMPLE)

    app.register_blueprint(docs.bp)
    return app.test_client()


def _no_outside_requests(html: str) -> None:
    assert "<script" not in html.lower()
    for attr in re.findall(r'(?:src|href|action)\s*=\s*"([^"]*)"', html, re.I):
        assert not re.match(r"^(?:[a-z]+:)?//", attr, re.I), attr
    assert "@import" not in html
    assert "url(" not in html


def test_docs_page_renders_the_document(sample_client: FlaskClient) -> None:
    answer = sample_client.get("/api/docs")
    assert answer.status_code == 200
    assert answer.mimetype == "text/html"
    assert "default-src 'none'" in answer.headers["Content-Security-Policy"]
    html = answer.get_data(as_text=True)
    _no_outside_requests(html)
    assert "Sample Feather" in html
    assert "9.9.9" in html
    for text in ("/api/compress", "/api/model", "Compress an image", "Encoder quality",
                 "1–100", "default 80", "one of full, quantized", "X-Output-Bytes",
                 "multipart/form-data", "CompressForm", "INVALID_INPUT"):
        assert text in html, text
    # Text from the document is escaped, never injected as markup.
    assert "Invalid &lt;options&gt;" in html


def test_docs_page_of_the_app(client: FlaskClient) -> None:
    spec = client.get("/api/openapi.json")
    answer = client.get("/api/docs")
    assert answer.mimetype == "text/html"
    html = answer.get_data(as_text=True)
    _no_outside_requests(html)
    if spec.status_code != 200:
        assert answer.status_code == 503
        assert "not available" in html
        return
    assert answer.status_code == 200
    for path in spec.get_json()["paths"]:
        assert path.replace("<", "&lt;") in html or path in html, path


def test_readme_sections_in_order() -> None:
    names = re.findall(r"<!-- section: (\w+) -->", README)
    assert names == ["api", "processing", "configuration", "errors", "service", "accounts",
                     "ai", "form", "cli", "bench", "security"]
    assert README.startswith("# Feather\n")


@pytest.mark.parametrize("name", sorted(TABLES))
def test_generated_tables_are_current(name: str) -> None:
    assert table_in(README, name) == TABLES[name](), (
        "stale: run python -m feather_server.readme_tables --write")


def test_configuration_table_names_every_setting() -> None:
    table = table_in(README, "settings-table")
    for name, _, _, _ in settings_table():
        assert f"`{name}`" in table


def _section(name: str) -> str:
    start = README.index(f"<!-- section: {name} -->")
    following = README.find("<!-- section:", start + 1)
    return README[start: following if following != -1 else None]


def test_api_section_has_curl_for_every_endpoint() -> None:
    api = _section("api")
    for path in ("/api/health", "/api/formats", "/api/compress", "/api/convert", "/api/batch",
                 "/api/usage", "/api/model", "/api/downloads/", "/api/sessions/",
                 "/api/openapi.json", "/api/docs"):
        assert path in api, path
    assert api.count("curl ") >= 12


def test_error_table_has_every_code() -> None:
    errors = _section("errors")
    for code, status in STATUS_BY_CODE.items():
        assert re.search(rf"\| {status} \| `{code}` \|", errors), code
    for flux in ("Maximum 20 images allowed per batch", "File <name> exceeds the 20MB limit",
                 "`Unauthorized`", "`ia_not_available`", "`no_credits`"):
        assert flux in errors, flux


def test_cli_section_names_every_option() -> None:
    section = _section("cli")
    for name in ("compress", "convert"):
        command = cli.commands[name]
        for param in command.params:
            for opt in (*param.opts, *param.secondary_opts):
                if opt.startswith("--") and opt != "--help":
                    assert opt in section, f"{name} {opt}"
    for command in cli.commands:
        assert f"feather {command}" in section, command
