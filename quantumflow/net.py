"""Whether a server can listen where it was asked to, found before it starts (the API and the dashboards)."""

from __future__ import annotations

import errno
import socket


class PortUnavailable(OSError):
    """A host and port a server cannot listen on: in use, not an address of this machine, or refused."""


def check_port(host: str, port: int) -> None:
    """Bind ``host:port`` as the servers do (SO_REUSEADDR) and let it go; PortUnavailable saying why if
    that fails. Another program may still take the port in between: the server then fails as before."""
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as error:
        raise PortUnavailable(f"cannot listen on {host}:{port}: unknown host ({error.strerror or error})") from error
    for family, kind, protocol, _, address in addresses:
        with socket.socket(family, kind, protocol) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(address)
            except OSError as error:
                if error.errno == errno.EADDRINUSE:
                    why = "the port is in use (another server, or this one still running?); choose another with --port"
                else:
                    why = error.strerror or str(error)
                raise PortUnavailable(f"cannot listen on {host}:{port}: {why}") from error
