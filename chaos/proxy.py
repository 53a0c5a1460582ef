"""A loopback TCP proxy that a scenario cuts and restores: a server outage without touching the server.

Why a proxy: the RabbitMQ on 127.0.0.1:5672 and moto's S3 are shared (by other scenarios, other tests,
other engineers), so they are never stopped. Every worker a scenario starts reaches them only through a
proxy of its own; cutting it makes the server really unreachable for that worker and nobody else.

While cut, every proxied connection is reset and every new one is accepted and reset at once (SO_LINGER 0:
the client sees "connection reset", as from a node that is going down). The listening socket stays open, so
the port cannot be taken by another process during the outage and comes back at the same address.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading

#: SO_LINGER with a zero timeout: close() sends RST instead of FIN.
_RESET = struct.pack("ii", 1, 0)


def _reset(sock: socket.socket, *, in_use: bool = False) -> None:
    """Close ``sock`` with a reset. ``in_use``: a pump thread may be blocked on it; only shutdown() wakes it
    (close() from another thread does not interrupt a blocked recv on Linux)."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
    if in_use:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


class TcpProxy:
    """Forwards 127.0.0.1:``port`` to ``upstream``; :meth:`cut` and :meth:`restore` switch it off and on."""

    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._cut = False
        self._closed = False
        self.refused = 0  # connections reset while cut: evidence that a client tried during the outage
        threading.Thread(target=self._accept, name=f"proxy-{self.port}", daemon=True).start()

    @property
    def is_cut(self) -> bool:
        return self._cut

    def cut(self) -> None:
        """Reset every proxied connection and refuse new ones until :meth:`restore`."""
        with self._lock:
            self._cut = True
            sockets, self._sockets = self._sockets, set()
        for s in sockets:
            _reset(s, in_use=True)

    def restore(self) -> None:
        with self._lock:
            self._cut = False

    def close(self) -> None:
        self._closed = True
        self.cut()
        with contextlib.suppress(OSError):
            self._listener.close()

    # ------------------------------------------------------------------------------------ plumbing
    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._cut:
                self.refused += 1
                _reset(client)
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=10)
                server.settimeout(None)
            except OSError:
                _reset(client)
                continue
            with self._lock:
                if self._cut:  # cut while connecting
                    _reset(client)
                    _reset(server)
                    continue
                self._sockets.update((client, server))
            ended: list[int] = []  # directions of this pair that have finished
            for src, dst in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(src, dst, ended), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, ended: list[int]) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)
        with self._lock:
            ended.append(1)
            both = len(ended) == 2
            if both:
                self._sockets.difference_update((src, dst))
        if both:  # the last direction to end closes the pair
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.close()
