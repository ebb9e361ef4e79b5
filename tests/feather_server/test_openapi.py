"""GET /api/openapi.json: a valid OpenAPI 3.1 document of every endpoint, true to the contracts.

The last test runs schemathesis against a real gunicorn: 0 server errors, 0 schema violations.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openapi_spec_validator import validate

from tests.server import GunicornServer


@pytest.fixture
def document(client: FlaskClient) -> dict[str, Any]:
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.get_json()
    assert isinstance(body, dict)
    return body


def test_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    validate(document)


def test_every_api_route_is_documented(app: Flask, document: dict[str, Any]) -> None:
    documented = {re.sub(r"\{[^}]+\}", "{}", path): set(ops) for path, ops in
                  document["paths"].items()}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/") or rule.endpoint == "docs.docs":
            continue
        path = re.sub(r"<(?:[^:>]+:)?[^>]+>", "{}", rule.rule)
        if path == "/api/sessions/{}":
            path = "/api/sessions/{}.zip"  # the route takes "<id>.zip" as one segment
        assert path in documented, rule.rule
        methods = {m.lower() for m in rule.methods or ()} - {"head", "options"}
        assert methods <= documented[path], (rule.rule, methods)


def _form(document: dict[str, Any], path: str) -> dict[str, Any]:
    body = document["paths"][path]["post"]["requestBody"]["content"]["multipart/form-data"]
    schema: dict[str, Any] = body["schema"]
    return schema


# From feather-api.txt: every field of /api/compress with its type and documented range.
FEATHER_CONTRACT: dict[str, tuple[str, float | None, float | None]] = {
    "maxWidth": ("integer", None, None),
    "maxHeight": ("integer", None, None), "stripMetadata": ("boolean", None, None),
    "targetMB": ("number", None, None), "progressive": ("boolean", None, None),
    "effort": ("integer", 0, 9), "cropX": ("integer", None, None),
    "cropY": ("integer", None, None), "cropWidth": ("integer", None, None),
    "cropHeight": ("integer", None, None), "rotate": ("number", -360, 360),
    "flip": ("boolean", None, None), "flop": ("boolean", None, None),
    "brightness": ("number", 0.1, 3), "saturation": ("number", 0, 3),
    "contrast": ("number", 0.1, 3), "grayscale": ("boolean", None, None),
    "blur": ("number", 0, 10), "sharpen": ("boolean", None, None),
}


def test_feather_fields_match_the_contract(document: dict[str, Any]) -> None:
    form = _form(document, "/api/compress")
    props = form["properties"]
    assert form["required"] == ["file"]
    assert props["file"]["format"] == "binary"
    assert {"auto", "jpeg", "png", "webp", "avif"} <= set(props["outputFormat"]["enum"])
    assert set(props["mode"]["enum"]) == {"final", "preview"}
    for name, (kind, low, high) in FEATHER_CONTRACT.items():
        assert props[name]["type"] == kind, name
        if low is not None:
            assert (props[name]["minimum"], props[name]["maximum"]) == (low, high), name
    # quality: the document's integer 1-100, or the auto levels.
    number, words = props["quality"]["anyOf"]
    assert (number["type"], number["minimum"], number["maximum"]) == ("integer", 1, 100)
    assert set(words["enum"]) == {"auto", "auto:high", "auto:good", "auto:eco"}


def test_convert_requires_a_concrete_format(document: dict[str, Any]) -> None:
    form = _form(document, "/api/convert")
    assert "outputFormat" in form["required"]
    assert "auto" not in form["properties"]["outputFormat"]["enum"]
    assert "targetMB" not in form["properties"]


def test_flux_fields_match_the_contract(document: dict[str, Any]) -> None:
    props = _form(document, "/api/batch")["properties"]
    assert set(props["format"]["enum"]) >= {"webp", "avif", "jpg", "png"}
    number, _ = props["quality"]["anyOf"]
    assert (number["minimum"], number["maximum"]) == (40, 100)
    assert (props["watermarkScale"]["minimum"], props["watermarkScale"]["maximum"]) == (5, 50)
    assert (props["watermarkOpacity"]["minimum"],
            props["watermarkOpacity"]["maximum"]) == (0, 100)
    assert set(props["watermarkPosition"]["enum"]) == {"TL", "TC", "TR", "ML", "MC", "MR",
                                                      "BL", "BC", "BR"}
    for name in ("sessionId", "autoAltText", "autoRenameSEO", "language", "aiContext",
                 "seoKeywords", "maxWidth", "maxHeight", "watermarkFile"):
        assert name in props, name
    item = document["components"]["schemas"]["BatchItem"]
    assert set(item["required"]) == {"originalName", "newName", "originalSize",
                                     "optimizedSize", "downloadUrl"}
    assert item["properties"]["altText"]["maxLength"] == 80


def test_documented_statuses_and_headers(document: dict[str, Any]) -> None:
    compress = document["paths"]["/api/compress"]["post"]["responses"]
    for status in ("400", "413", "415", "422", "429", "500", "504"):
        assert status in compress, status
    headers = compress["200"]["headers"]
    for name in ("X-Original-Bytes", "X-Output-Bytes", "X-Output-Quality", "X-Output-Width",
                 "X-Output-Height", "X-Compression-Ratio", "X-Processing-Time-Ms",
                 "X-Target-Met", "X-Resized", "X-Iterations", "X-RateLimit-Remaining"):
        assert name in headers, name
    usage = document["components"]["schemas"]["Usage"]["required"]
    assert usage == ["plan", "compressor_used", "compressor_limit", "ia_credits_used",
                     "ia_credits_monthly", "ia_topup_credits", "ia_credits_remaining",
                     "canCompress", "canUseIA"]
    model = document["paths"]["/api/model"]["get"]
    assert model["parameters"][0]["schema"]["enum"] == ["full", "quantized", "lite"]
    assert "502" in model["responses"]


@pytest.fixture(scope="module")
def schema_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GunicornServer]:
    """A gunicorn with every part configured, so no endpoint answers 503 for lack of setup."""
    data = tmp_path_factory.mktemp("schemathesis")
    models = data / "models"
    models.mkdir()
    for variant in ("full", "quantized"):
        (models / f"modnet-{variant}.onnx").write_bytes(b"\x08\x07" + variant.encode() * 64)
    # The placed files are the model (checked against no hash); nothing is fetched.
    unchecked = {f"MODEL_{variant}_{name}": "none" for variant in ("FULL", "QUANTIZED")
                 for name in ("URL", "SHA256")}
    server = GunicornServer({"DATA_DIR": str(data), "RATE_LIMIT_PER_MINUTE": "0",
                             "MODEL_CACHE_DIR": str(models), "REQUEST_TIMEOUT_MS": "20000",
                             **unchecked}, workers=2)
    server.start(data)
    yield server
    server.stop()


def test_schemathesis_finds_no_server_error_or_schema_violation(
        schema_server: GunicornServer) -> None:
    st = Path(sys.executable).with_name("st")
    done = subprocess.run(
        [str(st), "run", f"{schema_server.url}/api/openapi.json",
         "--checks", "not_a_server_error,response_schema_conformance,"
                     "status_code_conformance,content_type_conformance",
         "--mode", "all", "--max-examples", "8", "--request-timeout", "60",
         "--generation-deterministic", "--no-color"],
        capture_output=True, text=True, timeout=240, check=False,
    )
    tail = "\n".join(done.stdout.splitlines()[-40:])
    assert done.returncode == 0, tail + done.stderr[-2000:]
    assert schema_server.process is not None
    assert schema_server.process.poll() is None
    assert len(schema_server.worker_pids()) == 2
