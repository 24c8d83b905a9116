"""Server logs: one line per request tagged with its request id, as text or as JSON.

Follows the twelve-factor app's "logs are an event stream on stdout" and the JSON-lines shape
log shippers (Loki, Fluent Bit, CloudWatch) parse without a regex. The request id lives in a
context variable, so any log line written while serving a request (an engine error, say)
carries the id of the request it belongs to.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time

LOG_FORMATS = ("text", "json")
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
# Fields a LogRecord always has; anything else was passed through `extra=` and is logged too.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "request_id",
                                                    "color_message"}  # uvicorn's ANSI copy


class RequestIdFilter(logging.Filter):
    """Stamps each record with the id of the request being served (or "-")."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


class JSONFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id and any extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                 + f".{int(record.msecs):03d}Z",
                 "level": record.levelname.lower(), "logger": record.name,
                 "message": record.getMessage(),
                 "request_id": getattr(record, "request_id", "-")}
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def setup_logging(log_format: str = "text", level: str = "info") -> None:
    """Route lmstack's and uvicorn's loggers to stdout in `log_format` ("text" or "json")."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"--log-format must be one of {', '.join(LOG_FORMATS)}, "
                         f"not {log_format!r}")
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JSONFormatter() if log_format == "json" else logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"))
    for name in ("lmstack", "uvicorn"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level.upper())
        logger.propagate = False
    # uvicorn's own access log lacks the request id; lmstack.access writes the richer line.
    logging.getLogger("uvicorn.access").disabled = True
