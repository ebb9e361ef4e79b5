"""GET /api/docs: the OpenAPI document of /api/openapi.json as a readable page.

Rendered on the server from the same document the JSON endpoint serves, with one
template and inline CSS: no script, no CDN, no request leaves the machine, and the
page reads the same in a terminal browser.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, current_app, render_template
from werkzeug.exceptions import HTTPException

bp = Blueprint("docs", __name__, url_prefix="/api", template_folder="templates")

OPENAPI_PATH = "/api/openapi.json"
_METHODS = ("get", "post", "put", "patch", "delete", "head", "options")


def load_openapi() -> dict[str, Any] | None:
    """The document the app serves at /api/openapi.json, or None when it serves none."""
    adapter = current_app.url_map.bind("localhost")
    try:
        endpoint, args = adapter.match(OPENAPI_PATH, method="GET")
    except HTTPException:
        return None
    answer: Any = current_app.view_functions[endpoint](**args)
    response = current_app.make_response(answer)
    if response.status_code != 200:
        return None
    document = json.loads(response.get_data(as_text=True))
    return document if isinstance(document, dict) else None


class Resolver:
    """Follows local ``$ref`` pointers (``#/components/...``), guarding against cycles."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = document

    def resolve(self, node: Any, depth: int = 0) -> Any:
        while isinstance(node, Mapping) and "$ref" in node and depth < 20:
            node = self._pointer(str(node["$ref"]))
            depth += 1
        return node

    def _pointer(self, ref: str) -> Any:
        if not ref.startswith("#/"):
            return {"description": f"(external reference {ref})"}
        node: Any = self.document
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, Mapping) or part not in node:
                return {"description": f"(unresolved reference {ref})"}
            node = node[part]
        return node

    def type_of(self, schema: Any, depth: int = 0) -> str:
        """A short type label: ``integer (int32)``, ``array of string``, ``Error``."""
        if not isinstance(schema, Mapping) or depth > 5:
            return ""
        if "$ref" in schema:
            return str(schema["$ref"]).rsplit("/", 1)[-1]
        for combiner in ("oneOf", "anyOf", "allOf"):
            if combiner in schema:
                joiner = " & " if combiner == "allOf" else " | "
                return joiner.join(self.type_of(s, depth + 1) for s in schema[combiner])
        kind = schema.get("type", "object" if "properties" in schema else "")
        if isinstance(kind, list):
            kind = " | ".join(str(k) for k in kind)
        if kind == "array":
            return f"array of {self.type_of(schema.get('items', {}), depth + 1) or 'any'}"
        if schema.get("format"):
            return f"{kind} ({schema['format']})"
        return str(kind)

    def constraints(self, schema: Any) -> str:
        """Enum, range, default and length limits, as one readable line."""
        schema = self.resolve(schema)
        if not isinstance(schema, Mapping):
            return ""
        parts = []
        if "enum" in schema:
            parts.append("one of " + ", ".join(str(v) for v in schema["enum"]))
        low = schema.get("minimum", schema.get("exclusiveMinimum"))
        high = schema.get("maximum", schema.get("exclusiveMaximum"))
        if low is not None and high is not None:
            parts.append(f"{low}–{high}")
        elif low is not None:
            parts.append(f"≥ {low}")
        elif high is not None:
            parts.append(f"≤ {high}")
        if "maxItems" in schema:
            parts.append(f"at most {schema['maxItems']} items")
        if "maxLength" in schema:
            parts.append(f"at most {schema['maxLength']} characters")
        if "pattern" in schema:
            parts.append(f"pattern {schema['pattern']}")
        if "default" in schema:
            parts.append(f"default {json.dumps(schema['default'])}")
        return "; ".join(parts)

    def properties(self, schema: Any) -> list[dict[str, Any]]:
        """Rows (name, type, required, constraints, description) of an object schema."""
        schema = self.resolve(schema)
        if not isinstance(schema, Mapping):
            return []
        merged: dict[str, Any] = {}
        required: set[str] = set(schema.get("required", []))
        for part in schema.get("allOf", []):
            part = self.resolve(part)
            if isinstance(part, Mapping):
                merged.update(part.get("properties", {}))
                required |= set(part.get("required", []))
        merged.update(schema.get("properties", {}))
        rows = []
        for name, prop in merged.items():
            resolved = self.resolve(prop)
            rows.append({
                "name": name,
                "type": self.type_of(prop),
                "required": name in required,
                "constraints": self.constraints(prop),
                "description": (resolved.get("description", "")
                                if isinstance(resolved, Mapping) else ""),
            })
        return rows


def operations(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every (path, method) of the document, flattened for the template."""
    resolver = Resolver(document)
    found = []
    for path, item in (document.get("paths") or {}).items():
        item = resolver.resolve(item)
        shared = item.get("parameters", [])
        for method in _METHODS:
            op = item.get(method)
            if not isinstance(op, Mapping):
                continue
            params = [resolver.resolve(p) for p in (*shared, *op.get("parameters", []))]
            body = resolver.resolve(op.get("requestBody")) or {}
            found.append({
                "id": f"{method}-{path}".replace("/", "-").replace("{", "").replace("}", ""),
                "method": method.upper(),
                "path": path,
                "summary": op.get("summary", ""),
                "description": op.get("description", ""),
                "tags": op.get("tags", []),
                "security": op.get("security", document.get("security")),
                "parameters": [{
                    "name": p.get("name", ""), "in": p.get("in", ""),
                    "required": bool(p.get("required")),
                    "type": resolver.type_of(p.get("schema", {})),
                    "constraints": resolver.constraints(p.get("schema", {})),
                    "description": p.get("description", ""),
                } for p in params if isinstance(p, Mapping)],
                "body": [{
                    "media": media,
                    "fields": resolver.properties(content.get("schema", {})),
                    "type": resolver.type_of(content.get("schema", {})),
                } for media, content in (body.get("content") or {}).items()],
                "body_required": bool(body.get("required")),
                "responses": _responses(resolver, op.get("responses") or {}),
            })
    return found


def _responses(resolver: Resolver, responses: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for status, answer in responses.items():
        answer = resolver.resolve(answer)
        if not isinstance(answer, Mapping):
            continue
        contents = []
        for media, content in (answer.get("content") or {}).items():
            example = content.get("example")
            if example is None and content.get("examples"):
                first = resolver.resolve(next(iter(content["examples"].values())))
                example = first.get("value") if isinstance(first, Mapping) else None
            if example is None:
                example = resolver.resolve(content.get("schema", {})).get("example") \
                    if isinstance(resolver.resolve(content.get("schema", {})), Mapping) else None
            contents.append({
                "media": media,
                "type": resolver.type_of(content.get("schema", {})),
                "fields": resolver.properties(content.get("schema", {})),
                "example": None if example is None else (
                    example if isinstance(example, str)
                    else json.dumps(example, indent=2, ensure_ascii=False)),
            })
        rows.append({
            "status": str(status),
            "description": answer.get("description", ""),
            "headers": [{
                "name": name,
                "type": resolver.type_of(resolver.resolve(h).get("schema", {})),
                "description": resolver.resolve(h).get("description", ""),
            } for name, h in (answer.get("headers") or {}).items()],
            "contents": contents,
        })
    return rows


# Nothing on the page loads from elsewhere; the browser is told so too.
CONTENT_SECURITY_POLICY = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
                           "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


@bp.get("/docs")
def docs() -> Response:
    document = load_openapi()
    if document is None:
        html = render_template("docs.html", document=None, info={}, operations=[],
                               schemas=[], servers=[], openapi_path=OPENAPI_PATH)
        response = Response(html, status=503, mimetype="text/html")
    else:
        resolver = Resolver(document)
        components = (document.get("components") or {}).get("schemas") or {}
        schemas = [{"name": name, "type": resolver.type_of(schema),
                    "description": schema.get("description", "")
                    if isinstance(schema, Mapping) else "",
                    "fields": resolver.properties(schema)}
                   for name, schema in components.items()]
        html = render_template("docs.html", document=document,
                               info=document.get("info") or {},
                               operations=operations(document), schemas=schemas,
                               servers=document.get("servers") or [],
                               openapi_path=OPENAPI_PATH)
        response = Response(html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return response
