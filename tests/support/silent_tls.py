"""A TLS upstream that starts a stream and then goes silent, and a count of open sockets.

:class:`SilentTlsUpstream` answers a watch (``watch=true``) with the response head and one
bookmark, then never reads from that connection again, so it never answers a TLS close
either: a client's connection to it ends only when the client drops it. Other GETs get
the JSON ``answers`` holds for their path (404 for any other), on a keep-alive
connection. It runs in threads with blocking sockets, so the event loop under test
cannot help it along.

:func:`sockets_to` counts this process's TCP sockets connected to a port (Linux ``/proc``).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import ssl
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

from tests.support.certs import make_server_certificate

#: A bookmark: every watcher here takes it in its stride (no object to act on).
EVENT = b'{"type":"BOOKMARK","object":{"kind":"Upgrade","metadata":{"resourceVersion":"2"}}}\n'
#: How long any thread here waits for anything before it gives up by itself.
LIMIT = 30.0


def sockets_to(port: int) -> int:
    """How many of this process's TCP sockets have ``port`` as their remote port."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[2].rsplit(":", 1)[1], 16) == port and fields[9] in inodes:
            count += 1
    return count


class SilentTlsUpstream:
    def __init__(self, directory: Path, answers: dict[str, Any]) -> None:
        self.certificate = make_server_certificate(directory)
        self._answers = {path: json.dumps(body).encode() for path, body in answers.items()}
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._context.load_cert_chain(self.certificate.cert_file, self.certificate.key_file)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port: int = self._listener.getsockname()[1]
        self.url = f"https://127.0.0.1:{self.port}"
        self.watches = 0
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.certificate.ca_file))

    def __enter__(self) -> SilentTlsUpstream:
        self._spawn(self._accept)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stopping.set()
        for thread in list(self._threads):
            thread.join(LIMIT)
        self._listener.close()

    def _spawn(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._spawn(self._serve, conn)

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(LIMIT)
        with contextlib.suppress(OSError), self._context.wrap_socket(conn, server_side=True) as tls:
            pending = b""
            while not self._stopping.is_set():
                while b"\r\n\r\n" not in pending:
                    data = tls.recv(65536)
                    if not data:
                        return
                    pending += data
                head, _, pending = pending.partition(b"\r\n\r\n")
                target = head.split(b"\r\n", 1)[0].split(b" ")[1].decode()
                if "watch=true" in target.lower():
                    self.watches += 1
                    tls.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        b"Transfer-Encoding: chunked\r\n\r\n"
                        + f"{len(EVENT):x}\r\n".encode()
                        + EVENT
                        + b"\r\n"
                    )
                    self._stopping.wait(LIMIT)  # silent from here on: no reads, no TLS close
                    return
                body = self._answers.get(target.split("?", 1)[0])
                status = b"200 OK" if body is not None else b"404 Not Found"
                body = body if body is not None else b'{"kind":"Status","code":404}'
                tls.sendall(
                    b"HTTP/1.1 "
                    + status
                    + b"\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
