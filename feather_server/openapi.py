"""The OpenAPI 3.1 document of the whole API, served at GET /api/openapi.json.

Written to match the two contracts (``feather-api.txt`` and the FluxImage compress
document). Every form field, its type, range, choices, default and description comes
from ``feather_server.schema``, the table the parser reads, so the document cannot
drift from what the server accepts.
"""

from __future__ import annotations

from typing import Any

from feather_core.formats import INPUT_NAMES, OUTPUT_NAMES
from feather_server.schema import FEATHER, FLUX, Field, fields_of
from feather_server.services.model_cache import VARIANTS

Schema = dict[str, Any]

_TYPES = {"int": "integer", "float": "number", "bool": "boolean", "choice": "string",
          "text": "string"}


def field_schema(field: Field) -> Schema:
    """The JSON schema of one form field."""
    schema: Schema = {"description": field.help}
    if field.kind == "file":
        schema.update(type="string", format="binary")
        return schema
    if field.kind == "quality":
        assert field.range is not None
        schema["anyOf"] = [
            {"type": "integer", "minimum": field.range.low, "maximum": field.range.high},
            {"type": "string", "enum": list(field.choices)}]
        schema["default"] = field.default
        return schema
    schema["type"] = _TYPES[field.kind]
    if field.choices:
        schema["enum"] = [*field.choices, *field.aliases]
    if field.range is not None:
        schema["minimum"] = field.range.low
        schema["maximum"] = field.range.high
    if field.max_length is not None:
        schema["maxLength"] = field.max_length
    if field.default is not None:
        schema["default"] = field.default
    return schema


def _form(dialect: str, files: Schema, *, exclude: tuple[str, ...] = ()) -> Schema:
    properties: Schema = {name: field_schema(f) for name, f in fields_of(dialect).items()
                          if name not in exclude}
    properties["file"] = {**files, "description": properties["file"]["description"]}
    return {"type": "object", "required": ["file"], "properties": properties}


_BINARY = {"type": "string", "format": "binary"}
_IMAGE = {"type": "string", "format": "binary"}


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _error(description: str) -> Schema:
    return {"description": description, "content": {"application/json": {
        "schema": {"anyOf": [_ref("Error"), _ref("FluxError")]}}}}


def _errors(*statuses: int) -> dict[str, Schema]:
    reasons = {
        400: "INVALID_INPUT: missing file or invalid options (details name each field).",
        401: "UNAUTHORIZED: the API key is missing or invalid.",
        403: "Forbidden: plan limit, ia_not_available, no_credits, or a bad download signature.",
        404: "NOT_FOUND.",
        410: "GONE: the download link or stored output has expired.",
        413: "FILE_TOO_LARGE: the upload exceeds MAX_UPLOAD_MB.",
        415: "UNSUPPORTED_FORMAT: the bytes are a format Feather does not read.",
        408: "REQUEST_TIMEOUT: the request body stopped arriving.",
        409: "IDEMPOTENCY_KEY_IN_USE: a request with this Idempotency-Key still runs.",
        422: "INVALID_IMAGE; TOO_MANY_PIXELS (over MAX_PIXELS, over a job's memory, or an "
             "output format that cannot hold the asked size: details name the limit and "
             "how to get under it); IDEMPOTENCY_KEY_REUSED.",
        429: "RATE_LIMIT_EXCEEDED (with Retry-After).",
        500: "PROCESSING_FAILED or INTERNAL_ERROR.",
        502: "MODEL_FETCH_FAILED.",
        503: "SERVICE_UNAVAILABLE.",
        504: "TIMEOUT: processing exceeded REQUEST_TIMEOUT_MS.",
    }
    return {str(s): _error(reasons[s]) for s in statuses}


_RATE_HEADERS = {
    name: {"description": text, "schema": {"type": "string"}}
    for name, text in (("X-RateLimit-Limit", "Requests allowed per minute."),
                       ("X-RateLimit-Remaining", "Requests left in the current minute."),
                       ("X-RateLimit-Reset", "Unix time the window resets."))
}

_OUTPUT_HEADERS = {
    **{name: {"description": text, "schema": {"type": "string"}} for name, text in (
        ("Content-Disposition", 'attachment; filename="<name>-compressed.<ext>"'),
        ("X-Original-Bytes", "Input size in bytes."),
        ("X-Output-Bytes", "Output size in bytes."),
        ("X-Output-Quality", "Final quality used."),
        ("X-Output-Width", "Output width."),
        ("X-Output-Height", "Output height."),
        ("X-Output-Format", "Output format."),
        ("X-Compression-Ratio", "original / output, e.g. 3.42."),
        ("X-Processing-Time-Ms", "End-to-end processing time."),
        ("X-Target-Met", "true if targetMB was satisfied."),
        ("X-Resized", "true if the image was resized."),
        ("X-Iterations", "Encodes used by the target-size search."),
        ("X-Output-Unchanged", "true when the input was returned as it came."),
        ("X-Output-Score", "SSIMULACRA2 score of the output against the input (quality=auto)."),
        ("Vary", "Accept (on /api/compress: the dialect and auto's format depend on it)."),
    )},
    **_RATE_HEADERS,
}

_IMAGE_CONTENT = {f"image/{name}": {"schema": _BINARY} for name in OUTPUT_NAMES}

_SCHEMAS: dict[str, Schema] = {
    "Error": {
        "type": "object", "required": ["error"],
        "properties": {"error": {
            "type": "object", "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                           "details": {"type": "object",
                                       "additionalProperties": {"type": "string"}}}}},
    },
    "FluxError": {
        "type": "object", "required": ["error"],
        "properties": {"error": {"type": "string"}, "message": {"type": "string"},
                       "errors": {"type": "array", "items": _ref("BatchError")}},
    },
    "BatchItem": {
        "type": "object",
        "required": ["originalName", "newName", "originalSize", "optimizedSize", "downloadUrl"],
        "properties": {"originalName": {"type": "string"}, "newName": {"type": "string"},
                       "originalSize": {"type": "integer"}, "optimizedSize": {"type": "integer"},
                       "downloadUrl": {"type": "string"},
                       "altText": {"type": "string", "maxLength": 80}},
    },
    "BatchError": {
        "type": "object", "required": ["name", "code"],
        "properties": {"name": {"type": "string"}, "code": {"type": "string"},
                       "message": {"type": "string"}},
    },
    "BatchResponse": {
        "type": "object", "required": ["data"],
        "properties": {"data": {"type": "array", "items": _ref("BatchItem")},
                       "errors": {"type": "array", "items": _ref("BatchError")},
                       "sessionId": {"type": "string"},
                       "sessionZipUrl": {"type": "string"}},
    },
    "Usage": {
        "type": "object",
        "required": ["plan", "compressor_used", "compressor_limit", "ia_credits_used",
                     "ia_credits_monthly", "ia_topup_credits", "ia_credits_remaining",
                     "canCompress", "canUseIA"],
        "properties": {
            "plan": {"type": "string"},
            "compressor_used": {"type": "integer"},
            "compressor_limit": {"type": ["integer", "null"]},
            "ia_credits_used": {"type": "integer"},
            "ia_credits_monthly": {"type": "integer"},
            "ia_topup_credits": {"type": "integer"},
            "ia_credits_remaining": {"type": "integer"},
            "canCompress": {"type": "boolean"},
            "canUseIA": {"type": "boolean"},
            "periodStart": {"type": "string"},
            "periodEnd": {"type": "string"},
        },
    },
}


_IDEMPOTENCY_KEY: Schema = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
    "description": "A retry with the same key and the same request gets the first answer "
                   "again (fresh links, not charged again) for 24 hours.",
}


def _compress_operation(convert: bool) -> Schema:
    form = _form(FEATHER, _IMAGE, exclude=("targetMB",) if convert else ())
    if convert:
        form["required"] = ["file", "outputFormat"]
        choices = form["properties"]["outputFormat"]
        form["properties"]["outputFormat"] = {
            **{k: v for k, v in choices.items() if k != "default"},
            "enum": [c for c in choices["enum"] if c != "auto"],
            "description": "Required, not auto.",
        }
    ok_content: Schema = dict(_IMAGE_CONTENT)
    if not convert:
        ok_content["application/json"] = {"schema": _ref("BatchResponse")}
    summary = ("Pure format conversion" if convert else
               "Compress one image (Feather dialect), or a FluxImage batch when the request "
               "is one (several files, the format field, or Accept: application/json)")
    return {
        "summary": summary,
        "operationId": "convert" if convert else "compress",
        **({} if convert else {"parameters": [_IDEMPOTENCY_KEY]}),
        "requestBody": {"required": True,
                        "content": {"multipart/form-data": {"schema": form}}},
        "responses": {
            "200": {"description": "The encoded image; facts in X-* headers.",
                    "headers": _OUTPUT_HEADERS, "content": ok_content},
            **_errors(400, 401, 403, 408, 409, 413, 415, 422, 429, 500, 503, 504),
        },
    }


def _batch_operation() -> Schema:
    files = {"oneOf": [_IMAGE, {"type": "array", "maxItems": 20, "items": _BINARY}]}
    form = _form(FLUX, files)
    return {
        "summary": "FluxImage batch: up to 20 images, signed download URLs",
        "operationId": "batch",
        "security": [{}, {"bearer": []}],
        "parameters": [_IDEMPOTENCY_KEY],
        "requestBody": {"required": True, "content": {"multipart/form-data": {
            "schema": form, "encoding": {"file": {"contentType": "application/octet-stream"}}}}},
        "responses": {
            "200": {"description": "One item per optimised image.", "headers": _RATE_HEADERS,
                    "content": {"application/json": {"schema": _ref("BatchResponse")}}},
            **_errors(400, 401, 403, 408, 409, 413, 415, 422, 429, 500, 503, 504),
        },
    }


def _get(summary: str, operation_id: str, ok: Schema, errors: tuple[int, ...],
         parameters: list[Schema] | None = None, security: bool = False) -> Schema:
    operation: Schema = {"summary": summary, "operationId": operation_id,
                         "responses": {"200": ok, **_errors(*errors)}}
    if parameters:
        operation["parameters"] = parameters
    if security:
        operation["security"] = [{"bearer": []}]
    return {"get": operation}


def _signed_query() -> list[Schema]:
    return [{"name": name, "in": "query", "required": True, "schema": {"type": "string"}}
            for name in ("expires", "signature")]


_CHECK_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["state", "kind", "required", "latencyMs"],
    "properties": {"state": {"enum": ["up", "down"]}, "kind": {"type": "string"},
                   "required": {"type": "boolean"},
                   "latencyMs": {"type": ["number", "null"]},
                   "error": {"type": "string"}}}
_REPORT_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["ready", "checks"],
    "properties": {"ready": {"type": "boolean"},
                   "checks": {"type": "object", "additionalProperties": _CHECK_SCHEMA},
                   "error": {"type": "object", "required": ["code", "message"],
                             "properties": {"code": {"const": "SERVICE_UNAVAILABLE"},
                                            "message": {"type": "string"}}}}}
_READY: dict[str, Any] = {"get": {
    "summary": "Readiness probe: the database, the store and Redis",
    "operationId": "ready",
    "responses": {
        "200": {"description": "Every required part answers.",
                "content": {"application/json": {"schema": _REPORT_SCHEMA}}},
        "503": {"description": "A required part is down; the report says which.",
                "headers": {"Retry-After": {"schema": {"type": "integer"}}},
                "content": {"application/json": {"schema": _REPORT_SCHEMA}}}}}}


def build_document(version: str) -> Schema:
    """The OpenAPI 3.1 document of every /api endpoint."""
    health = {"type": "object", "required": ["ok", "version", "env", "timestamp"],
              "properties": {"ok": {"type": "boolean"}, "version": {"type": "string"},
                             "env": {"type": "string"}, "timestamp": {"type": "string"}}}
    formats = {"type": "object", "required": ["input", "output"],
               "properties": {"input": {"type": "array", "items": {"enum": list(INPUT_NAMES)}},
                              "output": {"type": "array",
                                         "items": {"enum": list(OUTPUT_NAMES)}}}}
    path_param = [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                  for n in ("scope", "object_id")]
    return {
        "openapi": "3.1.0",
        "info": {"title": "Feather", "version": version,
                 "description": "Self-hosted image compression: the Feather API and the "
                                "FluxImage batch API on one server."},
        "servers": [{"url": "/"}],
        "paths": {
            "/api/ready": _READY,
            "/api/health": _get("Liveness probe", "health", {
                "description": "The process is up.",
                "content": {"application/json": {"schema": health}}}, ()),
            "/api/formats": _get("Supported input and output formats", "formats", {
                "description": "Format names.",
                "content": {"application/json": {"schema": formats}}}, ()),
            "/api/compress": {"post": _compress_operation(convert=False)},
            "/api/convert": {"post": _compress_operation(convert=True)},
            "/api/batch": {"post": _batch_operation()},
            "/api/usage": _get("Plan and usage of the calling key (FluxImage shape)", "usage", {
                "description": "Usage this billing period.", "headers": _RATE_HEADERS,
                "content": {"application/json": {"schema": _ref("Usage")}}},
                (401, 429, 503), security=True),
            "/api/model": _get("An ONNX model for in-browser background removal (MODNet full "
                               "or quantized, bundled U²-Netp as lite)",
                               "model", {
                "description": "Model bytes (cached for a year).",
                "headers": {"ETag": {"schema": {"type": "string"}},
                            "Cache-Control": {"schema": {"type": "string"}}},
                "content": {"application/octet-stream": {"schema": _BINARY}}},
                (400, 429, 502, 503),
                parameters=[{"name": "variant", "in": "query", "required": False,
                             "schema": {"type": "string", "enum": list(VARIANTS),
                                        "default": "full"}}]),
            "/api/downloads/{scope}/{object_id}": _get(
                "A stored output behind a signed, expiring URL", "download", {
                    "description": "The stored image.",
                    "content": {"image/*": {"schema": _BINARY}}},
                (403, 404, 410, 503), parameters=path_param + _signed_query()),
            "/api/sessions/{session_id}.zip": _get(
                "Every stored output of a session as a ZIP (signed like downloads)",
                "sessionZip", {"description": "A ZIP archive.",
                               "content": {"application/zip": {"schema": _BINARY}}},
                (403, 404, 410, 503),
                parameters=[{"name": "session_id", "in": "path", "required": True,
                             "schema": {"type": "string"}},
                            {"name": "scope", "in": "query", "required": True,
                             "schema": {"type": "string"}}, *_signed_query()]),
            "/api/openapi.json": _get("This document", "openapi", {
                "description": "OpenAPI 3.1.",
                "content": {"application/json": {"schema": {"type": "object"}}}}, ()),
        },
        "components": {
            "schemas": _SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "flx_live_ + 40 hex characters"}},
        },
    }
