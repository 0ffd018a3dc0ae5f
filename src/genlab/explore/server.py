"""The explorer's HTTP server: the standard library's ThreadingHTTPServer, five routes, nothing else.

``GET /`` is the one static page (inline CSS and JavaScript, no external assets), ``GET /info``
describes the model to the page, ``GET /render?view=...`` returns one PNG and ``POST /upload`` takes
an image file as the request body and answers with the id of its latent code; ``/favicon.ico`` is a
built-in icon. No route reads a path from the client, so no file but the page can be served. Bad
input gets a 400 with a one-line reason, another method a 405 with ``Allow``, and every other error
one line of text too. Bound to 127.0.0.1, the server also refuses requests whose Host header names another
machine, so a web page elsewhere cannot reach it through DNS rebinding.
"""
from __future__ import annotations

import functools
import json
import logging
import math
import socket
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import urlsplit

import numpy as np

from ..errors import GenlabError
from .render import BadParameter, Explorer, Stopping, png_bytes

log = logging.getLogger(__name__)

LOOPBACK = ("127.0.0.1", "localhost", "::1")
# Inline script and style only; images from this server (blob: URLs of fetched PNGs); nothing else.
CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                           "img-src 'self' blob:; connect-src 'self' blob:; base-uri 'none'; form-action 'none'; "
                           "frame-ancestors 'none'")


def page_html() -> bytes:
    return resources.files(__package__).joinpath("page.html").read_bytes()


@functools.lru_cache(maxsize=1)
def favicon_png() -> bytes:
    """A 16x16 icon (a 2x2 grid of samples in the page's blue), so browsers log no 404 for /favicon.ico."""
    icon = np.zeros((16, 16, 3), np.uint8)
    for (top, left), shade in zip(((1, 1), (1, 9), (9, 1), (9, 9)), (255, 200, 170, 230)):
        icon[top:top + 6, left:left + 6] = (47 * shade // 255, 111 * shade // 255, 221 * shade // 255)
    return png_bytes(icon)


# which methods each route answers; anything else gets a one-line 405 that lists them
ROUTES = {"/": "GET, HEAD", "/info": "GET, HEAD", "/render": "GET, HEAD", "/favicon.ico": "GET, HEAD", "/upload": "POST"}


class ExploreServer(ThreadingHTTPServer):
    """Serves one :class:`Explorer`, one daemon thread per connection, at most ``max_connections`` at once.

    A connection that sends nothing for ``request_timeout`` seconds (an idle kept-alive one, a client
    that went silent mid-request, an upload shorter than its Content-Length), or has not sent a whole
    request line and headers within that time (one that trickles them), is closed, and a connection
    beyond ``max_connections`` gets a 503 at once instead of a thread, so idle or lying clients cannot
    pile up threads. Closing stops the explorer (a projection in progress ends within one step and its
    client gets a 503) and waits at most ``close_wait`` seconds for requests still in flight: a request
    thread still inside torch when the interpreter shuts down is torn down mid-call and aborts the process.

    ``explorer`` may be None at first and set before serving, so the port is bound (and a busy port
    reported) before a model spends seconds loading.
    """

    daemon_threads = True
    allow_reuse_address = True
    close_wait = 10.0
    request_timeout: float | None = 20.0
    max_connections = 32

    def __init__(self, explorer: Explorer | None, host: str = "127.0.0.1", port: int = 8765) -> None:
        self.explorer = explorer
        self.page = page_html()
        self.local_only = host in LOOPBACK
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET  # an IPv6 literal needs an IPv6 socket
        self._requests: set[threading.Thread] = set()
        self._requests_lock = threading.Lock()
        self._connections = 0
        super().__init__((host, port), ExploreHandler)

    def process_request(self, request, client_address) -> None:
        with self._requests_lock:
            full = self._connections >= self.max_connections
            if not full:
                self._connections += 1
        if full:  # answered here, in the serving thread, without reading the request: it costs no thread
            log.debug("explore: %d connections open, refusing %s", self.max_connections, client_address[0])
            try:
                request.setblocking(False)  # a few bytes into an empty send buffer; never wait for the client
                request.sendall(BUSY_REPLY)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:  # no thread started: the slot is free again
            with self._requests_lock:
                self._connections -= 1
            raise

    def process_request_thread(self, request, client_address) -> None:
        with self._requests_lock:  # finished threads are dropped here; live ones are joined on close
            self._requests = {thread for thread in self._requests if thread.is_alive()}
            self._requests.add(threading.current_thread())
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._requests_lock:
                self._connections -= 1

    def handle_error(self, request, client_address) -> None:
        # a client that goes away (a closed tab, a kept-alive connection dropped with a reply unread) resets
        # the connection: nothing went wrong here, so no traceback; anything else is reported as usual
        if isinstance(sys.exc_info()[1], (ConnectionResetError, ConnectionAbortedError, BrokenPipeError, TimeoutError)):
            return
        super().handle_error(request, client_address)

    def server_close(self) -> None:
        super().server_close()
        if self.explorer is not None:
            self.explorer.stop()  # projections end within a step; renders finish
        deadline = time.monotonic() + self.close_wait
        with self._requests_lock:
            in_flight = list(self._requests)
        for thread in in_flight:
            thread.join(max(0.0, deadline - time.monotonic()))

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)
        return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


_BUSY_BODY = b"server busy: too many open connections; try again\n"
BUSY_REPLY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: "
              + str(len(_BUSY_BODY)).encode() + b"\r\nRetry-After: 1\r\nConnection: close\r\n\r\n" + _BUSY_BODY)


class _HeadDeadline:
    """A connection's reader with one deadline for a request's line and headers together, so a client
    that trickles them a byte at a time holds its thread no longer than an idle one; reading a body
    keeps the socket's timeout per read."""

    def __init__(self, rfile, connection: socket.socket, seconds: float | None) -> None:
        self._rfile, self._connection, self._seconds = rfile, connection, seconds
        self.start()

    def start(self) -> None:
        self.deadline = math.inf if self._seconds is None else time.monotonic() + self._seconds

    def readline(self, limit: int = -1) -> bytes:  # the request line and each header line
        if self._seconds is None:  # no timeout at all (request_timeout = None): wait as long as it takes
            return self._rfile.readline(limit)
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"request line and headers not complete within {self._seconds:g} s")
        self._connection.settimeout(remaining)
        try:
            return self._rfile.readline(limit)
        finally:
            self._connection.settimeout(self._seconds)

    def __getattr__(self, name: str):  # read, close, ...: the reader's own
        return getattr(self._rfile, name)


class ExploreHandler(BaseHTTPRequestHandler):
    server: ExploreServer
    server_version = "genlab-explore"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        self.timeout = self.server.request_timeout  # every read (and write) on the connection; None: wait forever
        super().setup()
        self.rfile = _HeadDeadline(self.rfile, self.connection, self.timeout)

    def handle_one_request(self) -> None:
        self.rfile.start()  # the idle wait and the request's head share one deadline
        super().handle_one_request()

    # ------------------------------------------------------------------ routes
    def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
        url = urlsplit(self.path)
        if not self._host_allowed():
            return
        if url.path == "/":
            self._send(HTTPStatus.OK, self.server.page, "text/html; charset=utf-8",
                       {"Content-Security-Policy": CONTENT_SECURITY_POLICY})
        elif url.path == "/favicon.ico":
            self._send(HTTPStatus.OK, favicon_png(), "image/png")
        elif "GET" not in ROUTES.get(url.path, "GET"):
            self._not_allowed(url.path)
        elif self.server.explorer is None:
            self._fail(HTTPStatus.SERVICE_UNAVAILABLE, "the model is still loading; try again in a few seconds")
        elif url.path == "/info":
            self._send(HTTPStatus.OK, json.dumps(self.server.explorer.info()).encode(), "application/json")
        elif url.path == "/render":
            self._guarded(lambda: self._render(url.query))
        else:
            self._fail(HTTPStatus.NOT_FOUND, f"not found: {url.path[:80]} (this server has /, /info, /render and /upload)")

    do_HEAD = do_GET  # the same reply without its body (see _send)

    def do_POST(self) -> None:  # noqa: N802
        url = urlsplit(self.path)
        self.close_connection = True  # an upload is rare; never leave an unread body on a kept-alive connection
        if not self._host_allowed():
            return
        if url.path in ROUTES and url.path != "/upload":
            self._not_allowed(url.path)
        elif url.path != "/upload" or url.query:
            self._fail(HTTPStatus.NOT_FOUND, f"not found: POST {url.path[:80]} (uploads go to POST /upload)")
        elif self.server.explorer is None:
            self._fail(HTTPStatus.SERVICE_UNAVAILABLE, "the model is still loading; try again in a few seconds")
        else:
            self._guarded(self._upload)

    def _method_not_allowed(self) -> None:
        self.close_connection = True  # a body may follow, unread
        self._not_allowed(urlsplit(self.path).path)

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _method_not_allowed

    def _not_allowed(self, path: str) -> None:
        allow = ROUTES.get(path, "GET, HEAD")
        self._fail(HTTPStatus.METHOD_NOT_ALLOWED, f"method {self.command} not allowed on {path[:80]}; allowed: {allow}",
                   {"Allow": allow})

    def _render(self, query: str) -> None:
        start = time.perf_counter()
        image = self.server.explorer.render(self.server.explorer.parse(query))
        body = png_bytes(image)
        ms = 1000 * (time.perf_counter() - start)
        self._send(HTTPStatus.OK, body, "image/png", {"X-Render-Ms": f"{ms:.1f}"})

    def _upload(self) -> None:
        limit = self.server.explorer.max_upload_bytes
        length_header = self.headers.get("Content-Length")
        if length_header is None or not length_header.isdigit():
            raise BadParameter("an upload needs a Content-Length header with the size of the image file")
        length = int(length_header)
        if length > limit:  # the body stays unread
            raise BadParameter(f"upload too large: {length} bytes (limit {limit})")
        data = self.rfile.read(length)  # a body shorter than its Content-Length ends in TimeoutError
        if len(data) < length:
            raise BadParameter(f"upload ended after {len(data)} of the {length} bytes its Content-Length announced")
        result = self.server.explorer.upload(data)
        self._send(HTTPStatus.OK, json.dumps(result).encode(), "application/json")

    # ------------------------------------------------------------------ plumbing
    def _guarded(self, action) -> None:
        try:
            action()
        except Stopping:
            self.close_connection = True
            self._fail(HTTPStatus.SERVICE_UNAVAILABLE, "server stopping: try again when it is back")
        except GenlabError as exc:  # BadParameter, and the latent tools' own one-line errors
            self._fail(HTTPStatus.BAD_REQUEST, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        except TimeoutError:  # the client stopped sending mid-request
            self.close_connection = True
            self._fail(HTTPStatus.REQUEST_TIMEOUT, f"request timed out: nothing received for {self.timeout:g} s")
        except Exception:  # a bug: log it here, tell the client only that it happened
            log.exception("explore: failed to answer %s", self.path[:200])
            self._fail(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error (see the server's log)")

    def _host_allowed(self) -> bool:
        if not self.server.local_only:
            return True
        host = (self.headers.get("Host") or "").strip().lower()
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        if name.strip("[]") in LOOPBACK:
            return True
        self._fail(HTTPStatus.FORBIDDEN, f"refused Host {host[:80]!r}: this server answers only on localhost")
        return False

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The standard library's errors (a malformed request line, an unknown method, headers too long)
        in one line of text, like every other error here, instead of its HTML page."""
        status = HTTPStatus(code)
        self.close_connection = True
        self._fail(status, message or status.phrase)

    def _fail(self, status: HTTPStatus, reason: str, headers: dict[str, str] | None = None) -> None:
        self._send(status, (reason + "\n").encode(), "text/plain; charset=utf-8", headers)

    def _send(self, status: HTTPStatus, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the standard library's name)
        log.debug("explore: %s - %s", self.address_string(), format % args)


def serve(server: ExploreServer) -> None:
    """Serve until Ctrl-C, then close the socket. Returns normally on Ctrl-C."""
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        log.debug("explore: interrupted")
    finally:
        server.server_close()
