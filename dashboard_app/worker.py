"""The production server's worker: a request is read whole before a thread takes it.

gunicorn's threaded worker hands a connection to a thread as soon as it sends a byte, and the thread
then waits for the rest of the request: 140 clients sending a header one byte every 5 s held all of
its threads, and every page and ``/-/healthy`` timed out for everyone. This worker reads the request
line, the headers and a body of known length (up to ``BODY_BUFFER``) in its event loop, without a
thread, and gives the connection to a thread only once the request is complete. A connection that
has not sent a whole request ``REQUEST_TIMEOUT`` seconds after its first byte is closed, as is one
idle for the keep-alive time; headers longer than ``HEAD_LIMIT`` are answered 431. Slow or idle
connections therefore cost a file descriptor each, never a thread.
"""

from __future__ import annotations

import errno
import re
import selectors
import socket
import time
from functools import partial

from gunicorn.workers.gthread import ThreadWorker

REQUEST_TIMEOUT = 30.0  # seconds from a request's first byte to its last
HEAD_LIMIT = 64 * 1024  # bytes of request line and headers
BODY_BUFFER = 1 << 20  # a body of known length up to this is read before a thread takes it
BUFFERED_LIMIT = 256 << 20  # bytes all connections being read may hold at once

_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d{1,12})[ \t]*\r\n", re.IGNORECASE)
_CHUNKED = re.compile(rb"\r\ntransfer-encoding:[^\r\n]*chunked", re.IGNORECASE)
_CONTINUE = re.compile(rb"\r\nexpect:[ \t]*100-continue", re.IGNORECASE)
_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: text/plain\r\nConnection: close\r\n"
    b"Content-Length: 44\r\n\r\nthe request line and headers are over 64 KiB"
)


class Buffered:
    """A client socket that first gives back the bytes already read from it."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buffer = bytearray()

    def recv(self, size: int, flags: int = 0) -> bytes:
        if self.buffer:
            data = bytes(self.buffer[:size])
            del self.buffer[:size]
            return data
        return self.sock.recv(size, flags)

    def recv_into(self, target, size: int = 0, flags: int = 0) -> int:
        if self.buffer:
            data = self.recv(size or len(target))
            target[: len(data)] = data
            return len(data)
        return self.sock.recv_into(target, size, flags)

    def fileno(self) -> int:
        return self.sock.fileno()

    def __getattr__(self, name: str):
        return getattr(self.sock, name)


def complete(data: bytes | bytearray) -> bool | None:
    """Return True when ``data`` holds a whole request (or all a thread must wait for), False when more
    must come, None when its head is over ``HEAD_LIMIT``."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None if len(data) > HEAD_LIMIT else False
    head = bytes(data[: end + 2])
    if _CONTINUE.search(head):
        return True  # the client waits for "100 Continue" before it sends the body
    if _CHUNKED.search(head):
        return data.endswith(b"0\r\n\r\n") or len(data) - end > BODY_BUFFER
    found = _LENGTH.search(head)
    if found is None:
        return True
    length = int(found.group(1))
    return length > BODY_BUFFER or len(data) >= end + 4 + length


class WholeRequestWorker(ThreadWorker):
    """gunicorn's threaded worker, reading each request whole in its event loop first."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.reading: dict = {}  # conn -> (deadline while idle, deadline once a byte came)
        self.buffered = 0

    def enqueue_req(self, conn) -> None:
        if not isinstance(conn.sock, Buffered):
            conn.sock = Buffered(conn.sock)
        if conn.initialized and conn.parser.unreader.buf.getvalue():
            super().enqueue_req(conn)  # the parser holds the next request already
            return
        conn.sock.setblocking(False)
        self.reading[conn] = time.monotonic() + self.cfg.keepalive
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._readable, conn))

    def _readable(self, conn, _sock) -> None:
        buffered = conn.sock.buffer
        try:
            data = conn.sock.sock.recv(65536)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                return
            data = b""
        if not data:  # the client went away
            self._drop(conn)
            return
        if not buffered:
            self.reading[conn] = min(self.reading[conn], time.monotonic() + REQUEST_TIMEOUT)
        buffered += data
        self.buffered += len(data)
        whole = complete(buffered)
        if whole is None:
            try:
                conn.sock.sock.send(_TOO_LARGE)
            except OSError:
                pass
            self._drop(conn)
        elif whole or self.buffered > BUFFERED_LIMIT:
            self._done_reading(conn)
            conn.data_ready = True
            super().enqueue_req(conn)

    def _done_reading(self, conn) -> None:
        self.poller.unregister(conn.sock)
        del self.reading[conn]
        self.buffered -= len(conn.sock.buffer)

    def _drop(self, conn) -> None:
        self._done_reading(conn)
        self.nr_conns -= 1
        conn.close()

    def murder_pending(self) -> None:
        super().murder_pending()
        now = time.monotonic()
        for conn, deadline in list(self.reading.items()):
            if deadline <= now or not self.alive:
                self._drop(conn)
