"""An HTTP proxy in front of moto's SQS that answers chosen calls with a real error response.

Why a proxy and not a mocked boto3: the worker's own botocore client (its retries, its error parsing,
kombu's channel) must meet the fault exactly as it would meet AWS's. Every request is forwarded unchanged
to moto and moto's answer returned, except the attempts of the calls a test picks with :meth:`fail`: those
are answered with an SQS JSON-protocol error (``ThrottlingException`` by default, HTTP 400). Calls are
told apart by botocore's ``amz-sdk-invocation-id`` header, which every retry of one call repeats, so "one
failed call" is one failed call as the worker's code sees it, whatever botocore retried underneath.

:meth:`hang` is the other fault: the next matching requests are read and never answered (the proxy holds
the connection open until :meth:`heal` or :meth:`close`, at most ``HANG_LIMIT`` seconds), as a network
that black-holes a call does; only the caller's own timeout gets it out.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

#: The longest a hung request is held (a bound, so a test that forgets to heal cannot leak a thread forever).
HANG_LIMIT = 300.0
_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection", "upgrade"}


@dataclass
class Call:
    """One request seen: when (monotonic), the SQS action, botocore's invocation id, and our answer."""

    at: float
    action: str
    invocation: str
    status: int
    faulted: bool
    message_ids: tuple[str, ...] = ()  # ReceiveMessage: the messages it handed out
    receipts: tuple[str, ...] = ()  # ReceiveMessage: their receipt handles; ChangeMessageVisibility: the one used


@dataclass
class _Fault:
    action: str
    calls: int  # invocations still to fail (from the first one seen after fail() was called)
    code: str
    status: int
    forever: bool = False
    hang: bool = False


class SqsFaultProxy:
    """``endpoint`` (http://127.0.0.1:PORT) stands for moto's; see the module docstring."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._lock = threading.Lock()
        self._faults: list[_Fault] = []
        self._failing: dict[str, _Fault] = {}  # invocation id -> the fault failing all its attempts
        self._released = threading.Event()  # set by heal() and close(): hung requests end (unanswered)
        self.calls: list[Call] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # quiet
                pass

            def do_POST(self) -> None:  # the http.server spelling
                proxy._handle(self)

            do_GET = do_POST

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._server.serve_forever, name="sqs-fault-proxy", daemon=True).start()

    def fail(self, action: str, *, calls: int = 1, code: str = "ThrottlingException", status: int = 400,
             forever: bool = False) -> None:
        """Answer the next ``calls`` calls of ``action`` (every attempt of each) with ``code``; or all of them."""
        with self._lock:
            self._faults.append(_Fault(action, calls, code, status, forever))

    def hang(self, action: str, *, calls: int = 1) -> None:
        """Never answer the next ``calls`` requests of ``action`` (each attempt is one request): a black hole."""
        with self._lock:
            self._released.clear()
            self._faults.append(_Fault(action, calls, "", 0, hang=True))

    def hung(self, action: str) -> list[Call]:
        """The requests of ``action`` that were held unanswered."""
        return [c for c in self.seen(action) if c.faulted and c.status == 0]

    def heal(self) -> None:
        with self._lock:
            self._faults.clear()
            self._failing.clear()
        self._released.set()

    def seen(self, action: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.action == action]

    def close(self) -> None:
        self._released.set()
        self._server.shutdown()
        self._server.server_close()

    # ------------------------------------------------------------------ serving (server threads)

    def _fault_for(self, action: str, invocation: str) -> _Fault | None:
        with self._lock:
            if invocation and invocation in self._failing:
                return self._failing[invocation]
            for fault in self._faults:
                if fault.action == action and (fault.forever or fault.calls > 0):
                    fault.calls -= 1
                    if invocation and not fault.hang:  # a hang is per request: a retry is a new request
                        self._failing[invocation] = fault
                    return fault
        return None

    def _handle(self, req: BaseHTTPRequestHandler) -> None:
        body = req.rfile.read(int(req.headers.get("Content-Length") or 0))
        target = req.headers.get("X-Amz-Target", "")
        action = target.rsplit(".", 1)[-1] if target else _query_action(body)
        invocation = req.headers.get("amz-sdk-invocation-id", "")
        fault = self._fault_for(action, invocation)
        if fault is not None and fault.hang:
            self._record(action, invocation, 0, True, b"", body)
            self._released.wait(HANG_LIMIT)  # the fault itself: the request is held, never answered
            req.close_connection = True
            return
        if fault is not None:
            payload = json.dumps({"__type": f"com.amazonaws.sqs#{fault.code}", "message": "injected by the test"})
            self._answer(req, fault.status, payload.encode(), {"Content-Type": "application/x-amz-json-1.0",
                                                                "x-amzn-query-error": f"{fault.code};Sender"})
            self._record(action, invocation, fault.status, True, b"", body)
            return
        conn = http.client.HTTPConnection(*self._upstream, timeout=60)
        try:
            headers = {k: v for k, v in req.headers.items() if k.lower() not in _HOP}
            conn.request(req.command, req.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            self._answer(req, resp.status, data, {k: v for k, v in resp.getheaders() if k.lower() not in _HOP})
            self._record(action, invocation, resp.status, False, data if action == "ReceiveMessage" else b"", body)
        finally:
            conn.close()

    @staticmethod
    def _answer(req: BaseHTTPRequestHandler, status: int, data: bytes, headers: dict[str, str]) -> None:
        req.send_response(status)
        for k, v in headers.items():
            req.send_header(k, v)
        req.send_header("Content-Length", str(len(data)))
        req.end_headers()
        req.wfile.write(data)

    def _record(self, action: str, invocation: str, status: int, faulted: bool, data: bytes, sent: bytes) -> None:
        ids: tuple[str, ...] = ()
        receipts: tuple[str, ...] = ()
        try:
            if data:
                messages = json.loads(data).get("Messages", ())
                ids = tuple(m["MessageId"] for m in messages)
                receipts = tuple(m["ReceiptHandle"] for m in messages)
            elif action == "ChangeMessageVisibility":
                receipts = (json.loads(sent).get("ReceiptHandle", ""),)
        except ValueError:
            pass
        with self._lock:
            self.calls.append(Call(time.monotonic(), action, invocation, status, faulted, ids, receipts))


def _query_action(body: bytes) -> str:
    """The Action of a query-protocol (form-encoded) request, for clients that still use it."""
    from urllib.parse import parse_qs

    return (parse_qs(body.decode("utf-8", "replace")).get("Action") or [""])[0]
