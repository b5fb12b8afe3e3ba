"""A real HTTP server on 127.0.0.1 for tests, demos and benchmarks (after scrapy's tests/mockserver).

    with LocalServer() as srv:
        srv.add("/feed.xml", Route(body=xml, headers={"Content-Type": "application/rss+xml"}))
        srv.url("/feed.xml")          # http://127.0.0.1:PORT/feed.xml

Routes map a path (optionally with its query string) to a `Route`: status, headers, body, plus scripted
behaviours: a delay before the headers, a stall before/inside the body, a slow drip, redirects, gzip
(including a gzip bomb), a huge streamed body, ETag/Last-Modified handling and a sequence of responses
(e.g. 429 with Retry-After, then 200). Routes can be changed while the server runs. Every request is
recorded in `srv.requests`. The server is threaded, binds only 127.0.0.1, and stops by itself when the
`with` block or the pytest fixture ends (and after `max_lifetime_s` at the latest).
"""

from __future__ import annotations

import functools
import gzip
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.support.paths import FIXTURES

HOST = "127.0.0.1"
FEED_TYPE = "application/rss+xml; charset=utf-8"


@dataclass
class Route:
    body: bytes | str = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None  # shortcut for headers["Content-Type"]
    delay_s: float = 0.0  # before the status line
    stall_s: float = 0.0  # after the headers, before the body
    stall_after_bytes: int | None = None  # send this many body bytes, then stall for stall_s
    drip_s: float = 0.0  # pause between chunks of drip_bytes
    drip_bytes: int = 1
    gzip: bool = False  # send the body gzip-compressed (Content-Encoding: gzip)
    deflate: bool = False  # send the body zlib-compressed (Content-Encoding: deflate)
    stream_bytes: int = 0  # instead of body: stream this many bytes (no Content-Length unless set)
    etag: str | None = None  # answer 304 to a matching If-None-Match
    last_modified: str | None = None  # answer 304 to an equal If-Modified-Since
    redirect_to: str | None = None  # path or URL for a Location header (status 302 unless set)
    sequence: list[Route] | None = None  # serve these one per request, then keep serving the last

    def body_bytes(self) -> bytes:
        return self.body.encode("utf-8") if isinstance(self.body, str) else self.body


def most_at_once(requests: list[RecordedRequest]) -> int:
    """The largest number of `requests` whose [arrival, answered] intervals overlap at one moment."""
    events = sorted(
        [(r.at, 1) for r in requests]
        + [(r.done if r.done is not None else float("inf"), -1) for r in requests],
        key=lambda e: (e[0], e[1]),  # at equal times an answer ends before the next request starts
    )
    most = now = 0
    for _, step in events:
        now += step
        most = max(most, now)
    return most


@functools.lru_cache(maxsize=4)
def gzip_bomb(decoded_size: int) -> bytes:
    """A small gzip stream that inflates to `decoded_size` zero bytes."""
    z = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b"\0" * 1_048_576
    out = []
    left = decoded_size
    while left > 0:
        n = min(left, len(block))
        out.append(z.compress(block[:n]))
        left -= n
    out.append(z.flush())
    return b"".join(out)


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]
    at: float  # time.monotonic() when the request arrived
    done: float | None = None  # ... and when the server finished answering it (None while it is in flight)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # silence stderr
        pass

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        self._serve(head=False)

    def _sleep(self, seconds: float) -> bool:
        """Sleep unless the server stops; False if it stopped."""
        return not self.server.stopping.wait(seconds)

    def _serve(self, head: bool) -> None:
        owner = self.server.owner
        recorded = owner._record(self.path, {k.lower(): v for k, v in self.headers.items()})
        route = owner._route_for(self.path)
        try:
            self._respond(route, head)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, OSError):
            self.close_connection = True
        finally:
            recorded.done = time.monotonic()

    def _respond(self, route: Route | None, head: bool) -> None:
        if route is None:
            body = b"<html><body><h1>404 Fant ikke siden</h1></body></html>"
            self.send_response(404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body)
            return
        if route.delay_s and not self._sleep(route.delay_s):
            return
        if route.etag and self.headers.get("If-None-Match") == route.etag:
            self._not_modified(route)
            return
        if route.last_modified and self.headers.get("If-Modified-Since") == route.last_modified:
            self._not_modified(route)
            return
        status = route.status
        headers = dict(route.headers)
        if route.content_type:
            headers["Content-Type"] = route.content_type
        if route.redirect_to:
            status = status if 300 <= status < 400 else 302
            headers["Location"] = route.redirect_to
        if route.etag:
            headers["ETag"] = route.etag
        if route.last_modified:
            headers["Last-Modified"] = route.last_modified
        body = route.body_bytes()
        if route.gzip:
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        elif route.deflate:
            body = zlib.compress(body)
            headers["Content-Encoding"] = "deflate"
        streaming = route.stream_bytes > 0
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        if streaming:
            if "Content-Length" not in headers:
                self.close_connection = True
                self.send_header("Connection", "close")
        elif "Content-Length" not in headers:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.flush()
        if head:
            return
        if route.stall_s and route.stall_after_bytes is None and not self._sleep(route.stall_s):
            return
        if streaming:
            block = b"x" * 65_536
            left = route.stream_bytes
            while left > 0:
                n = min(left, len(block))
                self.wfile.write(block[:n])
                left -= n
            return
        if route.stall_after_bytes is not None:
            self.wfile.write(body[: route.stall_after_bytes])
            self.wfile.flush()
            if not self._sleep(route.stall_s):
                return
            body = body[route.stall_after_bytes :]
        if route.drip_s:
            for i in range(0, len(body), route.drip_bytes):
                self.wfile.write(body[i : i + route.drip_bytes])
                self.wfile.flush()
                if not self._sleep(route.drip_s):
                    return
            return
        self.wfile.write(body)

    def _not_modified(self, route: Route) -> None:
        self.send_response(304)
        if route.etag:
            self.send_header("ETag", route.etag)
        if route.last_modified:
            self.send_header("Last-Modified", route.last_modified)
        self.send_header("Content-Length", "0")
        self.end_headers()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    owner: LocalServer
    stopping: threading.Event

    def handle_error(self, request: object, client_address: object) -> None:
        """Clients that hang up (timeouts, size caps, keep-alive closes) are part of the tests: stay quiet."""
        import sys

        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


class LocalServer:
    """Threaded HTTP server on 127.0.0.1 serving `routes` (path → Route), changeable at runtime."""

    def __init__(self, routes: dict[str, Route] | None = None, max_lifetime_s: float = 600.0) -> None:
        self.routes: dict[str, Route] = dict(routes or {})
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._served: dict[str, int] = {}
        self._httpd = _Server((HOST, 0), _Handler)
        self._httpd.owner = self
        self._httpd.stopping = threading.Event()
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"localserver-{self.port}",
            daemon=True,
        )
        self._thread.start()
        self._reaper = threading.Timer(max_lifetime_s, self.stop)
        self._reaper.daemon = True
        self._reaper.start()
        self._stopped = False

    # -- routes --------------------------------------------------------------------------------

    def add(self, path: str, route: Route | None = None, **kwargs: object) -> str:
        """Serve `route` (or Route(**kwargs)) at `path`; returns its URL."""
        with self._lock:
            self.routes[path] = route if route is not None else Route(**kwargs)  # type: ignore[arg-type]
            self._served.pop(path, None)
        return self.url(path)

    def add_file(self, path: str, file: Path | str, content_type: str | None = None, **kwargs: object) -> str:
        """Serve a fixture file; `{BASE}` in it becomes this server's base URL (http://127.0.0.1:PORT)
        and `{SEARCH}` the same server under the name localhost (a second host for redirect tests)."""
        file = Path(file)
        if not file.is_absolute():
            file = FIXTURES / file
        body = (
            file.read_bytes()
            .replace(b"{BASE}", self.url("").encode())
            .replace(b"{SEARCH}", self.url("", host="localhost").encode())
        )
        return self.add(path, Route(body=body, content_type=content_type, **kwargs))  # type: ignore[arg-type]

    def remove(self, path: str) -> None:
        with self._lock:
            self.routes.pop(path, None)

    def url(self, path: str = "/", host: str = HOST) -> str:
        return f"http://{host}:{self.port}{path}"

    def hits(self, path: str) -> int:
        """How many requests asked for `path` (query string included if given)."""
        with self._lock:
            return sum(1 for r in self.requests if r.path == path or r.path.split("?", 1)[0] == path)

    def _record(self, path: str, headers: dict[str, str]) -> RecordedRequest:
        recorded = RecordedRequest(path, headers, time.monotonic())
        with self._lock:
            self.requests.append(recorded)
        return recorded

    def _route_for(self, path: str) -> Route | None:
        with self._lock:
            key = path if path in self.routes else path.split("?", 1)[0]
            route = self.routes.get(key)
            if route is None or not route.sequence:
                return route
            i = self._served.get(key, 0)
            self._served[key] = i + 1
            return route.sequence[min(i, len(route.sequence) - 1)]

    def most_at_once(self, *others: LocalServer) -> int:
        """The most requests this server (and `others`) were answering at the same moment, from the servers'
        own request log: how many fetches a client really ran in parallel."""
        return most_at_once([r for srv in (self, *others) for r in list(srv.requests)])

    # -- lifetime ------------------------------------------------------------------------------

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._reaper.cancel()
        self._httpd.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> LocalServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- the fixture site: a dozen Norwegian feeds, a news-search feed, a union site and broken sources --------

RSS = "application/rss+xml"
GOOD_FEEDS: dict[str, tuple[str, str, dict[str, object]]] = {
    # name: (path, fixture file, route options)
    "nrk-trondelag": (
        "/feeds/nrk-trondelag.xml",
        "feeds/nrk_trondelag.xml",
        {"content_type": f"{RSS}; charset=utf-8", "etag": '"nrk-trd-1"'},
    ),
    "nrk-more-og-romsdal": (
        "/feeds/nrk-mr.xml",
        "feeds/nrk_more_og_romsdal.xml",
        {"content_type": RSS, "last_modified": "Wed, 25 Nov 2026 16:00:00 GMT"},
    ),
    "adresseavisen": ("/feeds/adresseavisen.xml", "feeds/adresseavisen_paywalled.xml", {"content_type": RSS}),
    "sunnmorsposten": ("/feeds/smp.xml", "feeds/smp_latin1_declared.xml", {"content_type": RSS}),
    "romsdals-budstikke": (
        "/feeds/rbnett.xml",
        "feeds/rbnett_latin1_http_charset.xml",
        {"content_type": f"{RSS}; charset=ISO-8859-1"},
    ),
    "dagens-medisin": (
        "/feeds/dagensmedisin.xml",
        "feeds/dagensmedisin_latin1_undeclared.xml",
        {"content_type": "application/xml"},
    ),
    "sykepleien": (
        "/feeds/sykepleien.atom",
        "feeds/sykepleien_atom.xml",
        {"content_type": "application/atom+xml"},
    ),
    "digi": ("/feeds/digi.xml", "feeds/digi_duplicates_nodates.xml", {"content_type": RSS, "gzip": True}),
    "helse-midt-norge": ("/feeds/helse-midt.xml", "feeds/helse_midt_malformed.xml", {"content_type": RSS}),
}
NEWS_SEARCH = ("/search/rss?q=Helseplattformen&hl=no", "feeds/news_search_helseplattformen.xml")
PAGES: dict[str, str] = {
    "/trondelag/ansatte-ved-st.-olavs-melder-om-nye-feil-i-helseplattformen-1.17012345": "pages/nrk_article_legemiddellister.html",
    "/nyheter/i/Xy7Ab2/leger-helseplattformen-stjeler-tid": "pages/adresseavisen_paywalled_article.html",
    "/ta/nyheter/kommunene-vil-ut-av-helseplattformen": "pages/publisher_article_kommunene.html",
    "/nyheter/": "pages/legeforeningen_listing.html",
    "/nyheter/2026/tillitsvalgte-krever-handling-helseplattformen/": "pages/legeforeningen_article_helseplattformen.html",
    "/nyheter/2026/legeforeningen-om-statsbudsjettet/": "pages/legeforeningen_article_budsjett.html",
}
SEARCH_REDIRECTS = {
    "/rss/articles/CBMiXWh0dHBzOi8vd3d3LnQtYS5ubw": "/ta/nyheter/kommunene-vil-ut-av-helseplattformen",
    "/rss/articles/CBMiTmh0dHBzOi8vd3d3Lm5yay5ubw": "/nrk/helsami-pasientene-leser-journalen",  # 404 there
    "/rss/articles/CBMiQWRyZXNzYS1YeTdBYjI": "/nyheter/i/Xy7Ab2/leger-helseplattformen-stjeler-tid",
    # CBMiUnVzdGFudC1kZXRoYWduYXQ: no route, the search service answers 404: the link stays unresolved
}
BROKEN: dict[str, tuple[str, Route]] = {
    "html-instead": (
        "/feeds/trondheim24.xml",
        Route(content_type="text/html; charset=utf-8"),
    ),  # body set below
    "gone": ("/feeds/gone.xml", Route(status=410, body="<html><body>Gone</body></html>")),
    "missing": ("/feeds/missing.xml", Route(status=404, body="<html><body>Fant ikke siden</body></html>")),
    "server-error": ("/feeds/error.xml", Route(status=500, body="<html><body>Internal error</body></html>")),
    "rate-limited": ("/feeds/busy.xml", Route(status=429, headers={"Retry-After": "3600"})),
    "stalled": ("/feeds/stalled.xml", Route(body="<rss/>", stall_s=60)),
    "oversized": ("/feeds/huge.xml", Route(stream_bytes=12_000_000, content_type=RSS)),
    "gzip-bomb": ("/feeds/bomb.xml", Route(body=b"", headers={"Content-Encoding": "gzip"}, content_type=RSS)),
    "redirect-loop": ("/feeds/loop.xml", Route(redirect_to="/feeds/loop2.xml")),
}


def mount_fixture_site(srv: LocalServer, broken: bool = True) -> dict[str, str]:
    """Serve every fixture feed and page on `srv`; returns source name → URL (see tests/fixtures/README.md).

    The news-search feed is served under the host name `localhost` (its redirect links point there) and
    redirects to publisher pages on 127.0.0.1, as a search service redirects to other sites."""
    urls = {}
    for name, (path, file, opts) in GOOD_FEEDS.items():
        urls[name] = srv.add_file(path, file, **opts)
    srv.add_file(NEWS_SEARCH[0], NEWS_SEARCH[1], content_type=f"{RSS}; charset=utf-8")
    urls["news-search"] = srv.url(NEWS_SEARCH[0], host="localhost")
    for path, file in PAGES.items():
        srv.add_file(path, file, content_type="text/html; charset=utf-8")
    for path, target in SEARCH_REDIRECTS.items():
        srv.add(path, Route(redirect_to=srv.url(target), status=302))
    urls["legeforeningen"] = srv.url("/nyheter/")
    if broken:
        for name, (path, route) in BROKEN.items():
            srv.add(path, route)
            urls[name] = srv.url(path)
        srv.add_file(
            BROKEN["html-instead"][0],
            "pages/frontpage_not_a_feed.html",
            content_type="text/html; charset=utf-8",
        )
        srv.add("/feeds/loop2.xml", Route(redirect_to="/feeds/loop.xml"))
        srv.add(
            "/feeds/bomb.xml",
            Route(body=gzip_bomb(12_000_000), headers={"Content-Encoding": "gzip"}, content_type=RSS),
        )
    return urls


@pytest.fixture
def local_server() -> Iterator[LocalServer]:
    """A fresh LocalServer per test (registered for every test module by tests/conftest.py)."""
    with LocalServer() as srv:
        yield srv
