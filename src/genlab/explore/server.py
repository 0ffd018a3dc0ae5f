"""The explorer's HTTP server: the standard library's ThreadingHTTPServer, four routes, nothing else.

``GET /`` is the one static page (inline CSS and JavaScript, no external assets), ``GET /info``
describes the model to the page, ``GET /render?view=...`` returns one PNG and ``POST /upload`` takes
an image file as the request body and answers with the id of its latent code. No route reads a
path from the client, so no file but the page can be served. Bad input gets a 400 with a one-line
reason. Bound to 127.0.0.1, the server also refuses requests whose Host header names another
machine, so a web page elsewhere cannot reach it through DNS rebinding.
"""
from __future__ import annotations

import json
import logging
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import urlsplit

from ..errors import GenlabError
from .render import BadParameter, Explorer, png_bytes

log = logging.getLogger(__name__)

LOOPBACK = ("127.0.0.1", "localhost", "::1")
# Inline script and style only; images from this server (blob: URLs of fetched PNGs); nothing else.
CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                           "img-src 'self' blob:; connect-src 'self' blob:; base-uri 'none'; form-action 'none'; "
                           "frame-ancestors 'none'")


def page_html() -> bytes:
    return resources.files(__package__).joinpath("page.html").read_bytes()


class ExploreServer(ThreadingHTTPServer):
    """Serves one :class:`Explorer`, one daemon thread per request.

    Closing waits (at most ``close_wait`` seconds) for requests still in flight: a request thread
    that is still inside torch when the interpreter shuts down is torn down mid-call and aborts the
    process, so Ctrl-C lets a render finish, yet never hangs on a long projection.
    """

    daemon_threads = True
    allow_reuse_address = True
    close_wait = 10.0

    def __init__(self, explorer: Explorer, host: str = "127.0.0.1", port: int = 8765) -> None:
        self.explorer = explorer
        self.page = page_html()
        self.local_only = host in LOOPBACK
        self._requests: set[threading.Thread] = set()
        self._requests_lock = threading.Lock()
        super().__init__((host, port), ExploreHandler)

    def process_request_thread(self, request, client_address) -> None:
        with self._requests_lock:  # finished threads are dropped here; live ones are joined on close
            self._requests = {thread for thread in self._requests if thread.is_alive()}
            self._requests.add(threading.current_thread())
        super().process_request_thread(request, client_address)

    def handle_error(self, request, client_address) -> None:
        # a client that goes away (a closed tab, a kept-alive connection dropped with a reply unread) resets
        # the connection: nothing went wrong here, so no traceback; anything else is reported as usual
        if isinstance(sys.exc_info()[1], (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)):
            return
        super().handle_error(request, client_address)

    def server_close(self) -> None:
        super().server_close()
        deadline = time.monotonic() + self.close_wait
        with self._requests_lock:
            in_flight = list(self._requests)
        for thread in in_flight:
            thread.join(max(0.0, deadline - time.monotonic()))

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = "127.0.0.1" if host in ("0.0.0.0", "") else host
        return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


class ExploreHandler(BaseHTTPRequestHandler):
    server: ExploreServer
    server_version = "genlab-explore"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    # ------------------------------------------------------------------ routes
    def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
        url = urlsplit(self.path)
        if not self._host_allowed():
            return
        if url.path == "/":
            self._send(HTTPStatus.OK, self.server.page, "text/html; charset=utf-8",
                       {"Content-Security-Policy": CONTENT_SECURITY_POLICY})
        elif url.path == "/info":
            self._send(HTTPStatus.OK, json.dumps(self.server.explorer.info()).encode(), "application/json")
        elif url.path == "/render":
            self._guarded(lambda: self._render(url.query))
        else:
            self._fail(HTTPStatus.NOT_FOUND, f"not found: {url.path[:80]} (this server has /, /info, /render and /upload)")

    def do_POST(self) -> None:  # noqa: N802
        url = urlsplit(self.path)
        self.close_connection = True  # an upload is rare; never leave an unread body on a kept-alive connection
        if not self._host_allowed():
            return
        if url.path != "/upload" or url.query:
            self._fail(HTTPStatus.NOT_FOUND, f"not found: POST {url.path[:80]} (uploads go to POST /upload)")
            return
        self._guarded(self._upload)

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
        result = self.server.explorer.upload(self.rfile.read(length))
        self._send(HTTPStatus.OK, json.dumps(result).encode(), "application/json")

    # ------------------------------------------------------------------ plumbing
    def _guarded(self, action) -> None:
        try:
            action()
        except GenlabError as exc:  # BadParameter, and the latent tools' own one-line errors
            self._fail(HTTPStatus.BAD_REQUEST, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
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

    def _fail(self, status: HTTPStatus, reason: str) -> None:
        self._send(status, (reason + "\n").encode(), "text/plain; charset=utf-8")

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
