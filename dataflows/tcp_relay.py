"""A loopback TCP relay: connections to a port of one's choosing, piped both ways to another address.

``quantumflow broker --port N`` uses it because librdkafka's mock cluster picks its own port: the
relay gives clients a fixed bootstrap address. Kafka clients use the bootstrap address only for their
first metadata request and then connect to the brokers the cluster announces (the cluster's own
loopback port), so the relay carries little more than that first exchange.
"""

from __future__ import annotations

import contextlib
import socket
import threading

from quantumflow.net import check_port

LOOPBACK = "127.0.0.1"
CHUNK_BYTES = 65_536


class TcpRelay:
    """Listens on ``127.0.0.1:port`` until ``close``, piping each connection to ``target`` (HOST:PORT).
    PortUnavailable, saying why, when the port cannot be listened on."""

    def __init__(self, port: int, target: str) -> None:
        check_port(LOOPBACK, port)
        host, _, target_port = target.rpartition(":")
        self._target = (host, int(target_port))
        self._listener = socket.create_server((LOOPBACK, port))
        self.address = f"{LOOPBACK}:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, name="relay", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:  # closed
                return
            try:
                upstream = socket.create_connection(self._target, timeout=5)
            except OSError:  # the target is gone: the client sees its connection closed, as with no relay
                client.close()
                continue
            upstream.settimeout(None)
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pipe, args=(source, sink), name="relay-pipe", daemon=True).start()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread (a close alone would not)
        self._listener.close()

    def __enter__(self) -> TcpRelay:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    """Bytes from ``source`` to ``sink`` until either side closes; then both are closed (the other
    direction's thread, woken by the shutdown, ends too)."""
    try:
        while data := source.recv(CHUNK_BYTES):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()
