"""Structured logs: one JSON object per line, context from ``extra``, emails masked, no API key."""

from __future__ import annotations

import io
import json
import logging

import pytest

from worker.privacy import logs
from worker.privacy.masking import mask_credentials
from worker.privacy.secret import Secret

KEY = "k3y-abcdef0123456789-secret"


@pytest.fixture
def capture() -> io.StringIO:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    handler.addFilter(logs.MaskEmails())
    logger = logging.getLogger("segment_export.test_logs")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield stream
    logger.removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_line_with_context_and_masked_emails(capture):
    log = logging.getLogger("segment_export.test_logs")
    log.info("contact %s failed: %s", "jane.doe@example.com", "bad phone",
             extra={"run_id": "r-1", "export": "vip", "segment": "vip-customers", "event_id": "e-1",
                    "failures": [{"email": "bob@example.org", "error": "x"}], "key": Secret(KEY)})
    try:
        raise ValueError("rejected: carol@example.net")
    except ValueError:
        log.exception("batch failed", extra={"run_id": "r-1"})
    out = capture.getvalue()
    assert "jane.doe@example.com" not in out and "bob@example.org" not in out and "carol@example.net" not in out
    assert KEY not in out
    first, second = lines(capture)
    assert first["msg"] == "contact j***@example.com failed: bad phone"
    assert (first["run_id"], first["export"], first["segment"], first["event_id"]) == ("r-1", "vip", "vip-customers",
                                                                                        "e-1")
    assert first["failures"] == [{"email": "b***@example.org", "error": "x"}]
    assert first["level"] == "info" and first["logger"] == "segment_export.test_logs" and first["ts"]
    assert second["level"] == "error" and "c***@example.net" in second["exc"]


def test_text_format_and_setup_keeps_foreign_handlers():
    stream = io.StringIO()
    root = logging.getLogger()
    saved = list(root.handlers), root.level
    try:
        for h in list(root.handlers):
            root.removeHandler(h)
        logs.setup("DEBUG", "text", stream)
        handler = logs.setup("DEBUG", "text", stream)  # replaces its own handler: no double lines
        assert len(root.handlers) == 1
        logging.getLogger("segment_export.x").warning("to %s", "a.b@example.com", extra={"export": "vip"})
        text = stream.getvalue()
        assert "a***@example.com" in text and "a.b@example.com" not in text and "export=vip" in text
        root.removeHandler(handler)
        foreign = logging.StreamHandler(io.StringIO())
        root.addHandler(foreign)
        assert logs.setup("INFO", "json", stream) is None and root.handlers == [foreign]
        assert any(isinstance(f, logs.MaskEmails) for f in foreign.filters)
        root.removeHandler(foreign)
    finally:
        for h in list(root.handlers):
            root.removeHandler(h)
        for h in saved[0]:
            root.addHandler(h)
        root.setLevel(saved[1])


def test_credentials_in_urls_are_masked_in_every_record(capture):
    """Issue 19 review, defect 7: the log filter masks ``user:pass@`` wherever a URL appears."""
    log = logging.getLogger("segment_export.test_logs")
    log.warning("cannot connect to %s", "amqp://guest:hunter2@rabbit.example.com:5672//",
                extra={"where": "s3://AKIAEXAMPLE:hunter2@bucket/x", "people": ["a@example.com"]})
    text = capture.getvalue()
    assert "hunter2" not in text and "AKIAEXAMPLE" not in text
    assert "amqp://***@rabbit.example.com:5672//" in text and "s3://***@bucket/x" in text


@pytest.mark.parametrize(("text", "shown"), [
    ("s3://AKIAEXAMPLE:wJalr/K7MDENG/bPxhunter2@bucket/vip/seg.jsonl", "s3://***@bucket/vip/seg.jsonl"),
    ("az://user:wJal/hunter2@container/x.csv", "az://***@container/x.csv"),
    ("https://user:p@hunter2/x@host/a", "https://***@host/a"),                 # an '@' in the password too
    ("s3%3A%2F%2FAKIA%3AwJal%2Fhunter2%40bucket/x", "s3%3A%2F%2F***%40bucket/x"),
    ('uri="s3://AKIA:hunter2/x@b/k" then s3://b2/ok', 'uri="s3://***@b/k" then s3://b2/ok'),
])
def test_a_password_holding_a_slash_or_an_at_is_masked_whole(text: str, shown: str) -> None:
    """Third review: ``[^/@]`` stopped at the '/' of an AWS secret key and left the URL unmasked."""
    assert mask_credentials(text) == shown


@pytest.mark.parametrize("text", ["s3://bucket/exports/u@example.com.csv", "file:///data/a@b.io/x.csv"])
def test_an_at_in_a_path_is_not_taken_for_credentials(text: str) -> None:
    assert mask_credentials(text) == text
