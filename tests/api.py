"""Posting multipart forms to the app the way curl -F does."""

from __future__ import annotations

import io
from typing import Any

from flask.testing import FlaskClient
from werkzeug.test import TestResponse


def post_image(client: FlaskClient, data: bytes, filename: str = "photo.jpg",
               path: str = "/api/compress", content_type: str | None = None,
               **fields: Any) -> TestResponse:
    form: dict[str, Any] = {k: str(v) for k, v in fields.items()}
    part = (io.BytesIO(data), filename, content_type) if content_type else (io.BytesIO(data),
                                                                            filename)
    form["file"] = part
    return client.post(path, data=form, content_type="multipart/form-data")
