"""Logging setup: one JSON object per line on stderr (or plain text), with emails masked.

Context travels in ``extra`` (run_id, export, segment, event_id, counts, ...): the JSON formatter
copies every non-standard record attribute into the line. ``MaskEmails`` is a safety net: whatever a
message or an extra value contains, an email address leaves the process as ``a***@example.com``.
API keys never reach a record (they live in :class:`worker.privacy.secret.Secret`, which renders as ``***``).
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
from typing import Any

import orjson

from worker.privacy.masking import EMAIL_RE, mask_text

__all__ = ["EMAIL_RE", "JsonFormatter", "MaskEmails", "TextFormatter", "setup"]

_STANDARD = set(vars(logging.LogRecord("x", 0, "x", 0, "x", None, None))) | {"message", "asctime", "taskName"}


_mask_str = mask_text


def _mask(value: Any) -> Any:
    if isinstance(value, str):
        return _mask_str(value)
    if isinstance(value, dict):
        return {k: _mask(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask(v) for v in value]
    return value


class MaskEmails(logging.Filter):
    """Rewrites the record in place: message, args, extras and exception text."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string still gets logged, masked
            message = str(record.msg)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = _mask_str(record.exc_text)
        if record.stack_info:
            record.stack_info = _mask_str(record.stack_info)
        record.msg, record.args = _mask_str(message), None
        for key, value in list(vars(record).items()):
            if key not in _STANDARD:
                setattr(record, key, _mask(value))
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(), "logger": record.name, "msg": record.getMessage()}
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in line:
                line[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exc"] = record.exc_text
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    """Plain text with the context extras appended as ``key=value``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extras = [f"{k}={v}" for k, v in vars(record).items() if k not in _STANDARD]
        if extras:
            first, nl, rest = text.partition("\n")
            text = f"{first} " + " ".join(extras) + nl + rest
        return text


def setup(level: str = "INFO", fmt: str = "json", stream: Any = None) -> logging.Handler | None:
    """One masked handler on ``stream`` (stderr) for the root logger.

    Like ``logging.basicConfig``: when the root logger already has handlers someone else installed
    (an embedding application, pytest), they are kept and only get the masking filter. A previous
    call's handler is replaced, so calling this twice does not double the lines.
    """
    root = logging.getLogger()
    foreign = [h for h in root.handlers if not getattr(h, "_segment_export", False)]
    if foreign:
        for h in foreign:
            if not any(isinstance(f, MaskEmails) for f in h.filters):
                h.addFilter(MaskEmails())
        return None
    for old in list(root.handlers):
        root.removeHandler(old)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler._segment_export = True  # type: ignore[attr-defined]
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(MaskEmails())
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    return handler
