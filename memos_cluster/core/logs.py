"""Structured logs with request ids: the gateway sets the id of the request it serves (Serve's
request id, which a client may choose with `request_id` metadata), shard calls carry it to the
shard actor, and every log line of ours, in any actor, is one JSON object with it.

Who calls it: `configure_json_logging` once per actor process (gateway replicas, shards, the
scheduler, KV and LoRA actors); `request_id` is set by the gateway per request and by the shard
actor per call.
"""
from __future__ import annotations

import contextvars
import json
import logging
import time

# The request being served ("" outside one). A ContextVar: asyncio tasks and threads each see
# their own.
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("memos_request_id", default="")
LOGGERS = ("memos_cluster", "actors")  # ours; third-party loggers keep their own format


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (epoch s), level, logger, message, request_id, and the
    exception's type and text when there is one."""

    def __init__(self, component: str):
        super().__init__()
        self._component = component

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": round(record.created, 3), "level": record.levelname,
                 "logger": record.name, "component": self._component,
                 "message": record.getMessage(), "request_id": request_id.get()}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_json_logging(component: str, level: int = logging.INFO) -> None:
    """Route our loggers through one JSON handler on stderr (Ray captures it in the worker's
    .err file). Idempotent per process."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
            continue
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter(component))
        logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = False


def elapsed_ms(started: float) -> float:
    """Milliseconds since `started` (a time.perf_counter() reading), for logs and metrics."""
    return round(1000 * (time.perf_counter() - started), 2)
