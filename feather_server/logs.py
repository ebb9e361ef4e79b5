"""Log lines as text for people, or as one JSON object per line for log shippers.

``LOG_FORMAT=json`` makes the app's records and gunicorn's error and access logs JSON,
each with the request id (``X-Request-Id``) of the request it belongs to, so a shipper
can join a request's access line with everything logged while it ran.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from gunicorn import glogging

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


def _timestamp(created: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + \
        f".{int(created % 1 * 1000):03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object a record: time, level, logger, message, request id, pid."""

    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "time": _timestamp(record.created), "level": record.levelname,
            "logger": record.name, "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"), "pid": record.process,
        }
        if record.exc_info:
            body["exception"] = self.formatException(record.exc_info)
        return json.dumps(body, ensure_ascii=False)


def configure(level: str, fmt: str) -> None:
    """Set the root logger's level and format (``text`` or ``json``) once per process."""
    root = logging.getLogger()
    root.setLevel(level.upper())
    formatter: logging.Formatter = JsonFormatter() if fmt == "json" else \
        logging.Formatter(TEXT_FORMAT)
    if not root.handlers:
        root.addHandler(logging.StreamHandler())
    for handler in root.handlers:
        handler.setFormatter(formatter)


class JsonGunicornLogger(glogging.Logger):  # type: ignore[misc]
    """gunicorn's error and access logs as JSON lines (``logger_class`` in gunicorn.conf.py)."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for handler in self.error_log.handlers:
            handler.setFormatter(JsonFormatter())

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        if not self.access_log_enabled:
            return
        atoms = self.atoms(resp, req, environ, request_time)
        line = {
            "time": _timestamp(time.time()), "level": "INFO", "logger": "gunicorn.access",
            "client": atoms.get("h"), "request": atoms.get("r"), "status": atoms.get("s"),
            "bytes": atoms.get("B"), "duration_ms": atoms.get("M"), "pid": atoms.get("p"),
            "request_id": atoms.get("{x-request-id}o", "-"), "user_agent": atoms.get("a"),
        }
        self.access_log.info(json.dumps(line, ensure_ascii=False))
