"""Structured logging: every record carries request id, user and tenant; JSON in production."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from apps.kernel.logcontext import request_id_var, tenant_var, user_var

_STANDARD_ATTRS = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "request_id", "user", "tenant"}


class RequestContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        record.user = user_var.get()
        record.tenant = tenant_var.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line, ready for a log shipper."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
            "user": getattr(record, "user", "-"),
            "tenant": getattr(record, "tenant", "-"),
        }
        entry.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD_ATTRS and not k.startswith("_")})
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)
