"""The one network chokepoint: every byte Tonevakt reads from the web comes through `HttpClient.fetch`.

What it guarantees, whatever the server does:
- only http/https; every hop of a redirect chain is checked (scheme, address, loop, limit);
- loopback, private, link-local and reserved addresses are refused unless `http.allow_private_addresses`;
- connect/read timeouts plus a hard total deadline that also cuts a stalled or slow-drip body;
- a time budget shared by several fetches (`with_deadline`): a source's budget and the pass's deadline cut
  every fetch of the source at that moment, and no fetch starts after it;
- a body-size cap while streaming, and gzip/deflate decoded here with the same cap on the decoded size;
- conditional GET (ETag / Last-Modified) and a body hash, because some feeds lie about both;
- per-host spacing (a lock per host), concurrency across hosts (the client is thread-safe);
- 429/503 with `Retry-After`: one polite retry when the wait is short, otherwise a `temporary` outcome;
- robots.txt fetched once per host and honoured (a source may opt out), matched by Protego as Google and
  RFC 9309 do: `*` and `$` wildcards, and the longest matching rule wins (`Allow` over `Disallow` on a tie);
- a classified `FetchResult`, never an exception and never None, with a reason a person can act on.
"""

from __future__ import annotations

import copy
import email.utils
import hashlib
import ipaddress
import logging
import socket
import ssl
import threading
import time
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx
from protego import Protego

from tonevakt.config import HttpSettings
from tonevakt.errors import ConfigError
from tonevakt.models import FetchResult, FetchStatus

logger = logging.getLogger(__name__)

REDIRECT_CODES = {301, 302, 303, 307, 308}
HARD_CODES = {400, 401, 403, 404, 405, 410, 451}
TEMPORARY_CODES = {408, 425, 429}
ROBOTS_MAX_BYTES = 500_000
CHUNK = 65_536


class _Abort(Exception):
    """Internal: stop this fetch with a classified outcome."""

    def __init__(self, status: FetchStatus, reason: str, http_status: int | None = None) -> None:
        super().__init__(reason)
        self.status, self.reason, self.http_status = status, reason, http_status


@dataclass
class _HostSlot:
    lock: threading.Lock
    next_at: float = 0.0


def _fmt_s(seconds: float) -> str:
    return f"{round(seconds, 1):g}s"


def status_phrase(code: int) -> str:
    try:
        return f"HTTP {code} {HTTPStatus(code).phrase}"
    except ValueError:
        return f"HTTP {code}"


def classify_http_status(code: int) -> FetchStatus:
    if 200 <= code < 300:
        return FetchStatus.OK
    if code == 304:
        return FetchStatus.NOT_MODIFIED
    if code in HARD_CODES:
        return FetchStatus.HARD_ERROR
    if code in TEMPORARY_CODES or code >= 500:
        return FetchStatus.TEMPORARY
    return FetchStatus.SOFT_ERROR


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date); None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now_dt = datetime.fromtimestamp(now if now is not None else time.time(), UTC)
    return max(0.0, (when - now_dt).total_seconds())


def address_problem(ip: str) -> str | None:
    """Why an address may not be fetched (None if it is a public address)."""
    addr = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    for attr, word in (
        ("is_loopback", "a loopback"),
        ("is_link_local", "a link-local"),
        ("is_multicast", "a multicast"),
        ("is_unspecified", "an unspecified"),
        ("is_reserved", "a reserved"),
        ("is_private", "a private"),
    ):
        if getattr(addr, attr):
            return f"{addr} is {word} address"
    if not addr.is_global:
        return f"{addr} is not a public address"
    return None


class _Decoder:
    """Content-Encoding decoder with a cap on the decoded size (gzip bomb safe)."""

    def __init__(self, encoding: str, limit: int) -> None:
        self.limit = limit
        self.size = 0
        enc = encoding.strip().lower()
        self._deflate_fallback = False
        if enc in ("", "identity"):
            self._z = None
        elif enc in ("gzip", "x-gzip"):
            self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif enc == "deflate":
            self._z = zlib.decompressobj(zlib.MAX_WBITS)
            self._deflate_fallback = True
        else:
            raise _Abort(FetchStatus.SOFT_ERROR, f"unsupported content encoding {encoding!r}")

    def _check(self, n: int, decoded: bool) -> None:
        self.size += n
        if self.size > self.limit:
            after = " after decompression" if decoded else ""
            raise _Abort(FetchStatus.SOFT_ERROR, f"body larger than {self.limit:,} bytes{after}")

    def feed(self, data: bytes) -> bytes:
        if self._z is None:
            self._check(len(data), False)
            return data
        out = []
        buf = data
        while buf:
            try:
                piece = self._z.decompress(buf, self.limit - self.size + 1)
            except zlib.error as e:
                if self._deflate_fallback and self.size == 0:  # "deflate" sent as raw deflate
                    self._z = zlib.decompressobj(-zlib.MAX_WBITS)
                    self._deflate_fallback = False
                    continue
                raise _Abort(FetchStatus.SOFT_ERROR, f"corrupt compressed body: {e}") from e
            self._deflate_fallback = False
            self._check(len(piece), True)
            out.append(piece)
            buf = self._z.unconsumed_tail
            if self._z.eof:
                break
        return b"".join(out)

    def flush(self) -> bytes:
        if self._z is None:
            return b""
        piece = self._z.flush()
        self._check(len(piece), True)
        return piece


class _GuardedBackend(httpcore.SyncBackend):
    """Checks the address at connect time, with the same DNS answer the socket then uses, so that a host
    cannot pass the check with a public address and connect to a private one (DNS rebinding)."""

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as e:
            raise httpcore.ConnectError(f"could not resolve host {host!r}: {e}") from e
        for info in infos:
            problem = address_problem(str(info[4][0]))
            if problem:
                raise httpcore.ConnectError(f"refused: {problem} (http.allow_private_addresses is off)")
        ip = str(infos[0][4][0])
        return super().connect_tcp(
            ip, port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )


def install_guard(transport: httpx.HTTPTransport) -> None:
    """Put `_GuardedBackend` under the transport's connection pool. httpx offers no public way to choose the
    pool's network backend, so this reaches one private attribute (`HTTPTransport._pool`, an
    `httpcore.ConnectionPool`, whose `_network_backend` it replaces); pyproject.toml pins httpx to the versions
    where that is so, and when it is not, the client refuses to start rather than run without the guard."""
    pool = getattr(transport, "_pool", None)
    if not isinstance(pool, httpcore.ConnectionPool) or not hasattr(pool, "_network_backend"):
        raise ConfigError(
            f"cannot install the private-address guard in this httpx ({httpx.__version__}): its transport has no "
            "httpcore connection pool with a network backend; install the httpx version pinned in pyproject.toml"
        )
    pool._network_backend = _GuardedBackend()


ROBOTS_TTL_S = 6 * 3600.0
_ROBOTS_CACHE: dict[tuple[str, str], tuple[float, Protego]] = {}
_ROBOTS_CACHE_LOCK = threading.Lock()


def clear_robots_cache() -> None:
    """Forget every cached robots.txt (tests; a changed robots.txt is otherwise seen after ROBOTS_TTL_S)."""
    with _ROBOTS_CACHE_LOCK:
        _ROBOTS_CACHE.clear()


class HttpClient:
    """Thread-safe HTTP client built from `HttpSettings`. Use as a context manager or call `close()`."""

    def __init__(self, settings: HttpSettings) -> None:
        self.settings = settings
        ua = settings.user_agent
        self.user_agent = f"{ua} (+{settings.contact})" if settings.contact else ua
        self.robots_agent = ua.split("/", 1)[0].split()[0] or "Tonevakt"
        transport = httpx.HTTPTransport(retries=0)
        if not settings.allow_private_addresses:
            install_guard(transport)
        self._client = httpx.Client(
            transport=transport,
            follow_redirects=False,
            trust_env=False,
            limits=httpx.Limits(
                max_connections=max(4, settings.max_concurrency * 2), max_keepalive_connections=16
            ),
            headers={"User-Agent": self.user_agent, "Accept-Encoding": "gzip, deflate"},
        )
        self._hosts: dict[str, _HostSlot] = {}
        self._hosts_lock = threading.Lock()
        self._robots: dict[str, Protego | None] = {}
        self._robots_locks: dict[str, threading.Lock] = {}
        self.deadline: float | None = None  # time.monotonic() by which every fetch ends (with_deadline)
        self.deadline_reason = ""

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def with_deadline(self, deadline: float | None, reason: str = "the time budget") -> HttpClient:
        """A view of this client (same connections, host spacing and robots.txt) whose fetches all end by
        `deadline` (a `time.monotonic()` value): a fetch still running then is cut, and none starts after it.
        `reason` names the bound in the fetch's reason (e.g. "the source's time budget of 120s")."""
        view = copy.copy(self)
        view.deadline = deadline
        view.deadline_reason = reason
        return view

    @property
    def out_of_time(self) -> bool:
        """Has this client's deadline passed? (Collectors leave what is left for the next pass.)"""
        return self.deadline is not None and time.monotonic() >= self.deadline

    # -- public ---------------------------------------------------------------------------------

    def fetch(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        previous_hash: str | None = None,
        respect_robots: bool = True,
        accept: str | None = None,
        headers: dict[str, str] | None = None,
        read_body: bool = True,
    ) -> FetchResult:
        """GET `url` (following checked redirects). Never raises for network or HTTP problems.

        `read_body=False` stops after the final response's headers (to resolve a redirect link)."""
        t0 = time.monotonic()
        try:
            if self.out_of_time:
                raise _Abort(FetchStatus.TEMPORARY, f"not started: {self.deadline_reason} is spent")
            result = self._fetch_with_retry(
                url, etag, last_modified, previous_hash, respect_robots, accept, headers, read_body
            )
        except _Abort as a:
            result = FetchResult(url=url, status=a.status, http_status=a.http_status, reason=a.reason)
        except Exception as e:  # a bug or an exotic library error must still give a classified outcome
            logger.exception("unexpected error fetching %s", url)
            result = FetchResult(url=url, status=FetchStatus.TEMPORARY, reason=f"unexpected error: {e!r}")
        result.duration_s = time.monotonic() - t0
        if result.status.failed:
            logger.info("fetch %s: %s (%s)", url, result.status.value, result.reason)
        else:
            logger.debug("fetch %s: %s in %.2fs", url, result.status.value, result.duration_s)
        return result

    def robots_allowed(self, url: str) -> bool:
        """Does robots.txt of the URL's site allow us to fetch it? Fetched once per site and kept for
        ROBOTS_TTL_S across clients (so the daemon's passes do not fetch it, and wait out the host's spacing,
        every time); a robots.txt that could not be read is asked for again by the next client."""
        parts = urlsplit(url)
        site = f"{parts.scheme}://{parts.netloc}"
        with self._hosts_lock:
            lock = self._robots_locks.setdefault(site, threading.Lock())
        with lock:
            if site not in self._robots:
                key = (site, self.robots_agent)
                with _ROBOTS_CACHE_LOCK:
                    cached = _ROBOTS_CACHE.get(key)
                if cached and cached[0] > time.monotonic():
                    self._robots[site] = cached[1]
                else:
                    parser = self._load_robots(site)
                    self._robots[site] = parser
                    if parser is not None:
                        with _ROBOTS_CACHE_LOCK:
                            _ROBOTS_CACHE[key] = (time.monotonic() + ROBOTS_TTL_S, parser)
        parser = self._robots[site]
        return True if parser is None else parser.can_fetch(url, self.robots_agent)

    # -- internals ------------------------------------------------------------------------------

    def _load_robots(self, site: str) -> Protego | None:
        res = self._fetch_with_retry(
            site + "/robots.txt",
            None,
            None,
            None,
            False,
            "text/plain",
            None,
            True,
            max_bytes=ROBOTS_MAX_BYTES,
            retry=False,
        )
        if res.http_status in (401, 403):
            logger.info("robots.txt of %s answers %s: treating the site as closed", site, res.http_status)
            return Protego.parse("User-agent: *\nDisallow: /\n")
        if not res.ok:
            logger.info("no usable robots.txt at %s (%s): allowed", site, res.reason)
            return None
        return Protego.parse(res.body.decode("utf-8", errors="replace"))

    def _fetch_with_retry(
        self,
        url: str,
        etag: str | None,
        last_modified: str | None,
        previous_hash: str | None,
        respect_robots: bool,
        accept: str | None,
        headers: dict[str, str] | None,
        read_body: bool,
        *,
        max_bytes: int | None = None,
        retry: bool = True,
    ) -> FetchResult:
        res = self._fetch_once(
            url, etag, last_modified, respect_robots, accept, headers, read_body, max_bytes
        )
        if res.http_status in (429, 503) and retry:
            wait = res.retry_after_s
            left = None if self.deadline is None else self.deadline - time.monotonic()
            if wait is not None and wait <= self.settings.max_retry_after_s and (left is None or wait < left):
                logger.info(
                    "%s: %s, Retry-After %.0fs: waiting once", url, status_phrase(res.http_status), wait
                )
                time.sleep(wait)
                res = self._fetch_once(
                    url, etag, last_modified, respect_robots, accept, headers, read_body, max_bytes
                )
                if res.http_status in (429, 503):
                    res.reason += " (again after waiting for Retry-After)"
        if res.ok and read_body and previous_hash is not None and res.body_hash == previous_hash:
            res.status = FetchStatus.NOT_MODIFIED
            res.reason = "unchanged (same body hash as last time)"
        return res

    def _check_target(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https"):
            raise _Abort(
                FetchStatus.HARD_ERROR, f"refused: only http and https URLs are fetched (got {url!r})"
            )
        host = parts.hostname
        if not host:
            raise _Abort(FetchStatus.HARD_ERROR, f"refused: no host in {url!r}")
        if self.settings.allow_private_addresses:
            return
        try:
            ips = [host] if _is_ip(host) else sorted({ai[4][0] for ai in socket.getaddrinfo(host, None)})
        except (socket.gaierror, UnicodeError) as e:
            raise _Abort(FetchStatus.TEMPORARY, f"could not resolve host {host!r}: {e}") from e
        for ip in ips:
            problem = address_problem(ip)
            if problem:
                raise _Abort(
                    FetchStatus.HARD_ERROR, f"refused: {problem} (http.allow_private_addresses is off)"
                )

    def _wait_turn(self, netloc: str) -> None:
        """Per-host spacing: request starts to one host are at least `per_host_interval_s` apart."""
        interval = self.settings.per_host_interval_s
        if interval <= 0:
            return
        with self._hosts_lock:
            slot = self._hosts.setdefault(netloc.lower(), _HostSlot(threading.Lock()))
        with slot.lock:
            now = time.monotonic()
            start = max(now, slot.next_at)
            if self.deadline is not None and start >= self.deadline:  # the turn would come too late
                raise _Abort(FetchStatus.TEMPORARY, f"not started: {self.deadline_reason} is spent")
            slot.next_at = start + interval
        if start > now:
            time.sleep(start - now)

    def _fetch_once(
        self,
        url: str,
        etag: str | None,
        last_modified: str | None,
        respect_robots: bool,
        accept: str | None,
        headers: dict[str, str] | None,
        read_body: bool,
        max_bytes: int | None,
    ) -> FetchResult:
        s = self.settings
        limit = max_bytes or s.max_body_bytes
        t0 = time.monotonic()
        deadline = t0 + s.total_timeout_s
        total = s.total_timeout_s
        if self.deadline is not None and self.deadline < deadline:
            deadline, total = self.deadline, max(0.0, self.deadline - t0)
        req_headers = {"Accept": accept or "*/*"}
        if etag:
            req_headers["If-None-Match"] = etag
        if last_modified:
            req_headers["If-Modified-Since"] = last_modified
        req_headers.update(headers or {})
        seen: set[str] = set()
        current = url
        hops = 0
        while True:
            self._check_target(current)
            if current in seen:
                raise _Abort(FetchStatus.SOFT_ERROR, f"redirect loop (back to {current})")
            seen.add(current)
            if respect_robots and s.respect_robots and not self.robots_allowed(current):
                raise _Abort(
                    FetchStatus.HARD_ERROR, f"robots.txt disallows {current} for {self.robots_agent}"
                )
            self._wait_turn(urlsplit(current).netloc)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _Abort(
                    FetchStatus.TEMPORARY,
                    f"timed out after {_fmt_s(total)} ({self._deadline_cut(total) or 'total limit'})",
                )
            timeout = httpx.Timeout(
                connect=min(s.connect_timeout_s, remaining),
                read=min(s.read_timeout_s, remaining),
                write=min(s.read_timeout_s, remaining),
                pool=min(s.connect_timeout_s, remaining),
            )
            try:
                request = self._client.build_request("GET", current, headers=req_headers, timeout=timeout)
                response = self._client.send(request, stream=True)
            except httpx.ConnectTimeout as e:
                raise _Abort(
                    FetchStatus.TEMPORARY,
                    f"timed out after {_fmt_s(min(s.connect_timeout_s, remaining))} while connecting",
                ) from e
            except (httpx.ReadTimeout, httpx.WriteTimeout, httpx.PoolTimeout) as e:
                raise _Abort(
                    FetchStatus.TEMPORARY,
                    f"timed out after {_fmt_s(timeout.read or 0)} waiting for the response",
                ) from e
            except httpx.ConnectError as e:
                if str(e).startswith("refused: "):
                    raise _Abort(FetchStatus.HARD_ERROR, str(e)) from e
                tls = _tls_problem(e, urlsplit(current).netloc)
                if tls is not None:
                    raise _Abort(*tls) from e
                raise _Abort(
                    FetchStatus.TEMPORARY, f"could not connect to {urlsplit(current).netloc}: {e}"
                ) from e
            except (httpx.TransportError, httpx.InvalidURL, httpx.UnsupportedProtocol) as e:
                raise _Abort(FetchStatus.TEMPORARY, f"connection failed: {type(e).__name__}: {e}") from e
            except UnicodeError as e:  # a host name the IDNA codec refuses: no lookup was made
                raise _Abort(
                    FetchStatus.TEMPORARY, f"could not resolve host {urlsplit(current).hostname!r}: {e}"
                ) from e
            try:
                code = response.status_code
                if code in REDIRECT_CODES and "location" in response.headers:
                    location = urljoin(current, response.headers["location"])
                    hops += 1
                    if hops > s.max_redirects:
                        raise _Abort(
                            FetchStatus.SOFT_ERROR, f"too many redirects (more than {s.max_redirects})", code
                        )
                    current = location
                    continue
                return self._finish(
                    url, current, response, timeout.read or 0, deadline, limit, read_body, total
                )
            finally:
                response.close()

    def _deadline_cut(self, total: float) -> str | None:
        """Which bound cut a fetch allowed `total` seconds: the deadline of `with_deadline` ("<reason> ran
        out"), or None for the request's own total limit."""
        return None if total >= self.settings.total_timeout_s else f"{self.deadline_reason} ran out"

    def _finish(
        self,
        url: str,
        final_url: str,
        response: httpx.Response,
        read_s: float,
        deadline: float,
        limit: int,
        read_body: bool,
        total: float,
    ) -> FetchResult:
        code = response.status_code
        hdrs = {k.lower(): v for k, v in response.headers.items()}
        status = classify_http_status(code)
        result = FetchResult(
            url=url,
            final_url=final_url,
            status=status,
            http_status=code,
            headers=hdrs,
            etag=hdrs.get("etag"),
            last_modified=hdrs.get("last-modified"),
        )
        if code in (429, 503):
            result.retry_after_s = parse_retry_after(hdrs.get("retry-after"))
        if status is FetchStatus.NOT_MODIFIED:
            result.reason = "not modified (HTTP 304)"
            return result
        if status is not FetchStatus.OK:
            result.reason = status_phrase(code)
            if result.retry_after_s is not None:
                result.reason += f", Retry-After {result.retry_after_s:.0f}s"
            return result
        if not read_body:
            result.reason = status_phrase(code)
            return result
        length = hdrs.get("content-length", "")
        if length.isdigit() and not hdrs.get("content-encoding") and int(length) > limit:
            raise _Abort(
                FetchStatus.SOFT_ERROR,
                f"body larger than {limit:,} bytes (Content-Length {int(length):,})",
                code,
            )
        result.body = self._read_body(
            response, hdrs.get("content-encoding", ""), read_s, deadline, limit, code, total
        )
        result.body_hash = hashlib.sha256(result.body).hexdigest()
        result.reason = status_phrase(code)
        return result

    def _read_body(
        self,
        response: httpx.Response,
        encoding: str,
        read_s: float,
        deadline: float,
        limit: int,
        code: int,
        total: float,
    ) -> bytes:
        """Stream the body with the size cap and the total deadline. A watchdog shuts the socket down
        at the deadline so that even a read blocked inside the socket returns."""
        by_deadline = self._deadline_cut(total)
        cut = f" ({by_deadline})" if by_deadline else ""
        decoder = _Decoder(encoding, limit)
        sock = _socket_of(response)
        guard = threading.Lock()
        state = {"done": False, "killed": False}

        def kill() -> None:
            with guard:
                if state["done"] or sock is None:
                    return
                state["killed"] = True
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        timer = threading.Timer(max(0.0, deadline - time.monotonic()), kill)
        timer.daemon = True
        timer.start()
        chunks: list[bytes] = []
        raw = 0
        try:
            for chunk in response.iter_raw(CHUNK):
                raw += len(chunk)
                if raw > limit:
                    raise _Abort(FetchStatus.SOFT_ERROR, f"body larger than {limit:,} bytes", code)
                chunks.append(decoder.feed(chunk))
                if time.monotonic() > deadline:
                    raise _Abort(
                        FetchStatus.TEMPORARY,
                        f"timed out after {_fmt_s(total)} while reading the body (slow body){cut}",
                        code,
                    )
            chunks.append(decoder.flush())
        except httpx.ReadTimeout as e:
            raise _Abort(
                FetchStatus.TEMPORARY,
                f"timed out after {_fmt_s(read_s)} while reading the body (no data)",
                code,
            ) from e
        except httpx.TransportError as e:
            if state["killed"] or time.monotonic() >= deadline:
                raise _Abort(
                    FetchStatus.TEMPORARY,
                    f"timed out after {_fmt_s(total)} while reading the body{cut}",
                    code,
                ) from e
            raise _Abort(FetchStatus.TEMPORARY, f"connection broken while reading the body: {e}", code) from e
        finally:
            with guard:
                state["done"] = True
            timer.cancel()
        if state["killed"]:
            raise _Abort(
                FetchStatus.TEMPORARY, f"timed out after {_fmt_s(total)} while reading the body{cut}", code
            )
        return b"".join(chunks)


def _tls_problem(e: BaseException, netloc: str) -> tuple[FetchStatus, str] | None:
    """A classified outcome when a connection failed in the TLS handshake (None for other failures).
    A certificate we do not trust needs a person (the site's or ours): hard. Other handshake failures may pass."""
    seen: set[int] = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, ssl.SSLCertVerificationError):
            why = cur.verify_message or cur.reason or str(cur)
            return FetchStatus.HARD_ERROR, f"TLS certificate of {netloc} not accepted: {why}"
        if isinstance(cur, ssl.SSLError):
            return FetchStatus.TEMPORARY, f"TLS handshake with {netloc} failed: {cur.reason or cur}"
        cur = cur.__cause__ or cur.__context__
    return None


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    return True


def _socket_of(response: httpx.Response) -> socket.socket | None:
    stream = response.extensions.get("network_stream")
    if stream is None:
        return None
    try:
        sock = stream.get_extra_info("socket")
    except Exception:  # an exotic transport: fall back to the per-read timeout and the per-chunk check
        return None
    return sock if isinstance(sock, socket.socket) else None
