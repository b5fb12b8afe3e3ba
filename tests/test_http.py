"""The HTTP chokepoint against a real server on 127.0.0.1: every failure is classified with a clear reason."""

from __future__ import annotations

import gzip
import threading
import time

import httpcore
import httpx
import pytest

from tests.support.config import local_client
from tests.support.guard import guard_in_client, guard_in_transport
from tests.support.localserver import LocalServer, Route, gzip_bomb
from tonevakt.collectors.http import (
    HttpClient,
    _GuardedBackend,
    address_problem,
    clear_robots_cache,
    install_guard,
    parse_retry_after,
)
from tonevakt.errors import ConfigError
from tonevakt.models import FetchStatus

FEED = (
    "<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>Nyheter</title></channel></rss>"
)


def make_client(**overrides: object) -> HttpClient:
    return local_client(**{"contact": "tonevakt@example.org", **overrides})


@pytest.fixture
def client() -> HttpClient:
    c = make_client()
    yield c
    c.close()


def test_ok_sends_user_agent_with_contact_and_hashes_body(
    local_server: LocalServer, client: HttpClient
) -> None:
    url = local_server.add("/feed.xml", Route(body=FEED, content_type="application/rss+xml; charset=utf-8"))
    res = client.fetch(url)
    assert res.status is FetchStatus.OK
    assert res.http_status == 200 and res.reason == "HTTP 200 OK"
    assert res.body == FEED.encode()
    assert res.headers["content-type"].startswith("application/rss+xml")
    assert res.body_hash and len(res.body_hash) == 64
    ua = local_server.requests[-1].headers["user-agent"]
    assert ua.startswith("Tonevakt/0.1") and ua.endswith("(+tonevakt@example.org)")


def test_conditional_get_etag_last_modified_and_body_hash(
    local_server: LocalServer, client: HttpClient
) -> None:
    lm = "Tue, 24 Nov 2026 08:00:00 GMT"
    url = local_server.add("/etag.xml", Route(body=FEED, etag='"v1"', last_modified=lm))
    first = client.fetch(url)
    assert first.ok and first.etag == '"v1"' and first.last_modified == lm
    second = client.fetch(url, etag=first.etag, last_modified=first.last_modified)
    assert second.status is FetchStatus.NOT_MODIFIED and second.http_status == 304
    assert local_server.requests[-1].headers["if-none-match"] == '"v1"'
    # A server that ignores validators: the unchanged body hash still says "not modified".
    url2 = local_server.add("/liar.xml", Route(body=FEED))
    third = client.fetch(url2, previous_hash=first.body_hash)
    assert third.status is FetchStatus.NOT_MODIFIED and "same body hash" in third.reason
    local_server.add("/liar.xml", Route(body=FEED + "<!-- ny -->"))
    assert client.fetch(url2, previous_hash=first.body_hash).status is FetchStatus.OK


@pytest.mark.parametrize(
    ("status", "expected", "reason"),
    [
        (404, FetchStatus.HARD_ERROR, "HTTP 404 Not Found"),
        (410, FetchStatus.HARD_ERROR, "HTTP 410 Gone"),
        (500, FetchStatus.TEMPORARY, "HTTP 500 Internal Server Error"),
        (418, FetchStatus.SOFT_ERROR, "HTTP 418"),
    ],
)
def test_http_errors_are_classified(
    local_server: LocalServer, client: HttpClient, status: int, expected: FetchStatus, reason: str
) -> None:
    url = local_server.add("/x", Route(status=status, body="<html>feil</html>"))
    res = client.fetch(url)
    assert res.status is expected and res.http_status == status
    assert res.reason.startswith(reason)


def test_retry_after_short_wait_then_success(
    local_server: LocalServer, caplog: pytest.LogCaptureFixture
) -> None:
    seq = [Route(status=429, headers={"Retry-After": "1"}), Route(body=FEED)]
    url = local_server.add("/busy", Route(sequence=seq))
    with make_client(max_retry_after_s=5) as c, caplog.at_level("INFO", logger="tonevakt.collectors.http"):
        res = c.fetch(url)
    assert res.ok and local_server.hits("/busy") == 2
    # The client read the Retry-After and waited it out once before asking again.
    waits = [r.getMessage() for r in caplog.records if "Retry-After" in r.getMessage()]
    assert waits == [f"{url}: HTTP 429 Too Many Requests, Retry-After 1s: waiting once"]
    first, second = (r for r in local_server.requests if r.path == "/busy")
    assert first.done is not None and second.at > first.done  # the retry came after the first answer


def test_retry_after_too_long_is_temporary(local_server: LocalServer) -> None:
    url = local_server.add("/busy", Route(status=503, headers={"Retry-After": "3600"}))
    with make_client(max_retry_after_s=5) as c:
        res = c.fetch(url)
    assert res.status is FetchStatus.TEMPORARY and res.retry_after_s == 3600
    assert res.reason == "HTTP 503 Service Unavailable, Retry-After 3600s"
    assert local_server.hits("/busy") == 1


def test_parse_retry_after_http_date() -> None:
    assert parse_retry_after("Wed, 25 Nov 2026 10:00:30 GMT", now=1795600800.0) == 30.0
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("snart") is None


def test_stall_before_body_hits_read_timeout(local_server: LocalServer) -> None:
    url = local_server.add("/stall", Route(body=FEED, stall_s=30))
    with make_client(read_timeout_s=1, total_timeout_s=5) as c:
        t0 = time.monotonic()
        res = c.fetch(url)
        took = time.monotonic() - t0
    assert res.status is FetchStatus.TEMPORARY
    assert res.reason.startswith("timed out after 1s while reading the body"), res.reason  # the read timeout
    # A timeout: cut at the 1 s read timeout, not after the 30 s stall nor the 5 s total (the reason says which
    # limit cut it; 4.5 s leaves a busy machine room and stays under the total limit).
    assert took < 4.5, took


def test_stall_before_headers_times_out(local_server: LocalServer) -> None:
    url = local_server.add("/slow", Route(body=FEED, delay_s=30))
    with make_client(read_timeout_s=1, total_timeout_s=5) as c:
        res = c.fetch(url)
    assert res.status is FetchStatus.TEMPORARY and "waiting for the response" in res.reason


def test_slow_drip_is_cut_at_the_total_deadline(local_server: LocalServer) -> None:
    # Every byte arrives within the read timeout, but the whole body would take minutes.
    url = local_server.add("/drip", Route(body=FEED * 20, drip_s=0.2, drip_bytes=4))
    with make_client(read_timeout_s=1, total_timeout_s=2) as c:
        t0 = time.monotonic()
        res = c.fetch(url)
        took = time.monotonic() - t0
    assert res.status is FetchStatus.TEMPORARY
    assert res.reason.startswith("timed out after 2s while reading the body")
    # A timeout: the whole drip would take minutes; cut at 2 s (10 s of margin for a busy machine).
    assert took < 10, took


def test_stall_inside_body_longer_than_total_is_cut_by_watchdog(local_server: LocalServer) -> None:
    url = local_server.add("/half", Route(body=FEED * 5, stall_after_bytes=50, stall_s=30))
    with make_client(read_timeout_s=10, total_timeout_s=1.5) as c:
        t0 = time.monotonic()
        res = c.fetch(url)
        took = time.monotonic() - t0
    assert res.status is FetchStatus.TEMPORARY and "while reading the body" in res.reason
    assert res.reason.startswith("timed out after 1.5s"), res.reason  # the total limit, not the read timeout
    # A timeout: the watchdog cuts the 30 s stall at 1.5 s (8 s of margin for a busy machine).
    assert took < 8, took


def test_oversized_body(local_server: LocalServer) -> None:
    url = local_server.add("/huge", Route(stream_bytes=3_000_000))
    url2 = local_server.add("/huge-declared", Route(body=b"x" * 2_000_000))
    with make_client(max_body_bytes=1_000_000) as c:
        res = c.fetch(url)
        res2 = c.fetch(url2)
    assert res.status is FetchStatus.SOFT_ERROR and res.reason == "body larger than 1,000,000 bytes"
    assert res2.status is FetchStatus.SOFT_ERROR and "Content-Length 2,000,000" in res2.reason


def test_gzip_is_decoded_and_gzip_bomb_refused(local_server: LocalServer) -> None:
    ok = local_server.add("/gz", Route(body=FEED, gzip=True))
    dfl = local_server.add("/deflate", Route(body=FEED, deflate=True))
    bomb = gzip_bomb(200_000_000)
    assert len(bomb) < 300_000
    url = local_server.add("/bomb", Route(body=bomb, headers={"Content-Encoding": "gzip"}))
    with make_client(max_body_bytes=5_000_000) as c:
        assert c.fetch(ok).body == FEED.encode()
        assert c.fetch(dfl).body == FEED.encode()
        res = c.fetch(url)
    assert res.status is FetchStatus.SOFT_ERROR
    assert (
        res.reason == "body larger than 5,000,000 bytes after decompression"
    )  # cut at the cap, not inflated
    assert gzip.decompress(gzip.compress(b"x")) == b"x"


def test_redirects_followed_loop_and_limit(local_server: LocalServer, client: HttpClient) -> None:
    final = local_server.add("/final", Route(body=FEED))
    local_server.add("/r1", Route(redirect_to="/r2", status=301))
    local_server.add("/r2", Route(redirect_to=final, status=307))
    res = client.fetch(local_server.url("/r1"))
    assert res.ok and res.final_url == final and res.url == local_server.url("/r1")
    local_server.add("/loop-a", Route(redirect_to="/loop-b"))
    local_server.add("/loop-b", Route(redirect_to="/loop-a"))
    loop = client.fetch(local_server.url("/loop-a"))
    assert loop.status is FetchStatus.SOFT_ERROR and loop.reason.startswith("redirect loop")
    for i in range(8):
        local_server.add(f"/chain{i}", Route(redirect_to=f"/chain{i + 1}"))
    chain = client.fetch(local_server.url("/chain0"))
    assert chain.status is FetchStatus.SOFT_ERROR and chain.reason == "too many redirects (more than 5)"


def test_redirect_to_other_scheme_refused(local_server: LocalServer, client: HttpClient) -> None:
    local_server.add("/ftp", Route(redirect_to="ftp://example.org/feed.xml"))
    res = client.fetch(local_server.url("/ftp"))
    assert res.status is FetchStatus.HARD_ERROR and "only http and https" in res.reason
    assert client.fetch("file:///etc/passwd").status is FetchStatus.HARD_ERROR


def test_loopback_refused_when_private_addresses_not_allowed(local_server: LocalServer) -> None:
    url = local_server.add("/feed.xml", Route(body=FEED))
    with make_client(allow_private_addresses=False) as c:
        res = c.fetch(url)
        res2 = c.fetch(local_server.url("/feed.xml", host="localhost"))
    assert res.status is FetchStatus.HARD_ERROR
    assert res.reason == "refused: 127.0.0.1 is a loopback address (http.allow_private_addresses is off)"
    assert res2.status is FetchStatus.HARD_ERROR and "loopback" in res2.reason
    assert local_server.hits("/feed.xml") == 0


def test_connect_time_guard_refuses_loopback(local_server: LocalServer) -> None:
    # The check made when the socket connects (against DNS rebinding), beside the check before each hop.
    local_server.add("/x", Route(body="x"))
    with pytest.raises(httpcore.ConnectError, match=r"^refused: \S+ is a loopback address"):
        _GuardedBackend().connect_tcp("localhost", local_server.port, timeout=2)
    assert local_server.hits("/x") == 0
    with make_client(allow_private_addresses=False) as c:  # installed in the client's connection pool
        assert guard_in_client(c)


def test_client_refuses_to_start_when_the_guard_cannot_be_installed() -> None:
    """The guard reaches one private attribute of httpx (pinned in pyproject.toml): a transport without the
    connection pool it expects is refused with a clear error, never used without the guard."""

    class TransportOfAnotherHttpx(httpx.BaseTransport):  # what a future httpx might hand out
        pass

    with pytest.raises(ConfigError, match="cannot install the private-address guard"):
        install_guard(TransportOfAnotherHttpx())  # type: ignore[arg-type]
    transport = httpx.HTTPTransport(retries=0)
    install_guard(transport)
    assert guard_in_transport(transport)


def test_address_classification_without_network() -> None:
    assert address_problem("127.0.0.1") == "127.0.0.1 is a loopback address"
    assert address_problem("::1") == "::1 is a loopback address"
    assert address_problem("::ffff:127.0.0.1") == "127.0.0.1 is a loopback address"
    assert "private" in address_problem("10.1.2.3") and "link-local" in address_problem("169.254.169.254")
    assert address_problem("151.101.1.1") is None  # parsed only, never contacted


def test_robots_txt_honoured_and_fetched_once(local_server: LocalServer) -> None:
    local_server.add(
        "/robots.txt", Route(body="User-agent: *\nDisallow: /privat/\n", content_type="text/plain")
    )
    open_url = local_server.add("/nyheter/sak", Route(body="<html>ok</html>"))
    closed_url = local_server.add("/privat/sak", Route(body="<html>hemmelig</html>"))
    with make_client(respect_robots=True) as c:
        assert c.fetch(open_url).ok
        res = c.fetch(closed_url)
        assert c.fetch(closed_url, respect_robots=False).ok  # per-source override
    assert res.status is FetchStatus.HARD_ERROR and res.reason.startswith("robots.txt disallows")
    assert local_server.hits("/robots.txt") == 1
    assert local_server.hits("/privat/sak") == 1
    # The next pass (a new client in the same process, as in the daemon) uses the cached robots.txt.
    with make_client(respect_robots=True) as c:
        assert c.fetch(closed_url).status is FetchStatus.HARD_ERROR
    assert local_server.hits("/robots.txt") == 1
    clear_robots_cache()
    with make_client(respect_robots=True) as c:
        assert c.fetch(open_url).ok
    assert local_server.hits("/robots.txt") == 2


ROBOTS_WILDCARDS = "User-agent: *\nDisallow: /*.pdf$\nDisallow: /private*\nAllow: /private/open\n"
ROBOTS_OWN_GROUP = (
    ROBOTS_WILDCARDS + "\nUser-agent: Tonevakt\nDisallow: /*/kladd/\nAllow: /*/kladd/publisert$\n"
)


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/dokumenter/rapport.pdf", False),  # '*' inside the path and '$' at its end
        ("/dokumenter/rapport.pdf.html", True),  # '$': only paths that end in .pdf
        ("/rapport.PDF", True),  # paths are matched case-sensitively
        ("/private-notater", False),  # '/private*' covers more than the folder
        ("/private/sak", False),
        ("/private/open/sak", True),  # the longer Allow rule wins
        ("/nyheter/sak", True),
    ],
)
def test_robots_txt_wildcards_and_allow_override(local_server: LocalServer, path: str, allowed: bool) -> None:
    """`*` and `$` as Google and RFC 9309 read them (urllib.robotparser took them literally and let every
    one of these through); the longest matching rule decides."""
    local_server.add("/robots.txt", Route(body=ROBOTS_WILDCARDS, content_type="text/plain"))
    url = local_server.add(path, Route(body="<html>ok</html>"))
    clear_robots_cache()
    with make_client(respect_robots=True, user_agent="Tonevakt/0.1") as c:
        res = c.fetch(url)
    clear_robots_cache()
    if allowed:
        assert res.ok, res.reason
        assert local_server.hits(path) == 1
    else:
        assert res.status is FetchStatus.HARD_ERROR
        assert res.reason == f"robots.txt disallows {url} for Tonevakt"
        assert local_server.hits(path) == 0


@pytest.mark.parametrize(
    ("path", "allowed"),
    [("/a/kladd/utkast", False), ("/a/kladd/publisert", True), ("/a/kladd/publisert/2", False)],
)
def test_robots_txt_group_for_our_agent(local_server: LocalServer, path: str, allowed: bool) -> None:
    """The group naming our agent replaces the '*' group; its own wildcard rules apply."""
    local_server.add("/robots.txt", Route(body=ROBOTS_OWN_GROUP, content_type="text/plain"))
    url = local_server.add(path, Route(body="<html>ok</html>"))
    clear_robots_cache()
    with make_client(respect_robots=True, user_agent="Tonevakt/0.1") as c:
        assert c.robots_allowed(url) is allowed
        assert c.robots_allowed(local_server.url("/dokumenter/rapport.pdf"))  # the '*' group does not apply
    clear_robots_cache()


def test_robots_txt_401_closes_the_site(local_server: LocalServer) -> None:
    local_server.add("/robots.txt", Route(body="nei", status=401, content_type="text/plain"))
    url = local_server.add("/nyheter/sak", Route(body="<html>ok</html>"))
    clear_robots_cache()
    with make_client(respect_robots=True) as c:
        res = c.fetch(url)
    clear_robots_cache()
    assert res.status is FetchStatus.HARD_ERROR and res.reason.startswith("robots.txt disallows")
    assert local_server.hits("/nyheter/sak") == 0


def test_per_host_spacing_and_concurrency_across_hosts(local_server: LocalServer) -> None:
    with LocalServer() as other:
        local_server.add("/a", Route(body="a", delay_s=0.3))
        other.add("/b", Route(body="b", delay_s=0.3))
        with make_client(per_host_interval_s=0.4) as c:
            threads = [
                threading.Thread(target=c.fetch, args=(u,))
                for u in [local_server.url("/a")] * 3 + [other.url("/b")] * 3
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
    # Per host, the server's own log shows the requests spaced by per_host_interval_s (0.4 s; 0.35 for the
    # clock granularity of two threads) ...
    for srv in (local_server, other):
        starts = sorted(r.at for r in srv.requests)
        gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
        assert len(starts) == 3 and all(g >= 0.35 for g in gaps), gaps
    # ... while the two hosts were fetched in parallel: one host's spacing does not hold up the other.
    assert local_server.most_at_once(other) == 2


def test_connection_refused_is_temporary() -> None:
    srv = LocalServer()
    url = srv.url("/gone")
    srv.stop()
    with make_client() as c:
        res = c.fetch(url)
    assert res.status is FetchStatus.TEMPORARY and res.reason.startswith("could not connect")


def test_read_body_false_resolves_redirect_without_body(
    local_server: LocalServer, client: HttpClient
) -> None:
    target = local_server.add("/artikkel", Route(stream_bytes=50_000_000))
    local_server.add("/lenke", Route(redirect_to=target))
    res = client.fetch(local_server.url("/lenke"), read_body=False)
    assert res.ok and res.final_url == target and res.body == b""
