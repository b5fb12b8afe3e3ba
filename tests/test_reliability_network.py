"""Reliability catalogue, network rows (docs/reliability.md): faults no other test covers, tried for real.

Every test here runs under `no_outside_traffic`: a Python audit hook that sees every name lookup and every
socket connect of this process, refuses (before the resolver is asked) any name that is not a literal loopback
address or `localhost`, refuses any connect outside 127.0.0.0/8 and ::1, and records both, so that a test that
would have sent a packet off the machine fails instead. DNS failures are produced two ways without ever asking
a DNS server: the hook answers a lookup with the resolver's own "Name or service not known" error (the real
`socket.getaddrinfo` call site, the real exception), and a host name that the IDNA codec refuses fails inside
Python before any lookup is made (the hook proves that no lookup happened).
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.support.config import local_client
from tests.support.localserver import LocalServer, Route
from tests.support.network import Guard, OutsideTraffic
from tonevakt import pipeline
from tonevakt.collectors import http as http_module
from tonevakt.collectors.http import HttpClient
from tonevakt.config import Settings
from tonevakt.models import FetchStatus

pytestmark = pytest.mark.usefixtures("no_outside_traffic")  # nothing leaves 127.0.0.0/8

FEED = (
    "<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>Nyheter</title></channel></rss>"
)


def make_client(**overrides: object) -> HttpClient:
    return local_client(**{"total_timeout_s": 4, **overrides})


def source_health(settings: Settings, source_id: str) -> dict[str, Any]:
    con = duckdb.connect(str(settings.db_path), read_only=True)
    try:
        cur = con.execute("SELECT * FROM sources WHERE id = ?", [source_id])
        cols = [d[0] for d in cur.description]
        row = dict(zip(cols, cur.fetchone(), strict=True))
        row["documents"] = con.execute("SELECT count(*) FROM documents").fetchone()[0]
        return row
    finally:
        con.close()


def feed_source(sid: str, url: str) -> dict[str, object]:
    return {"id": sid, "kind": "rss", "voice": "media", "url": url, "respect_robots": False}


# -- DNS --------------------------------------------------------------------------------------------------


def test_the_guard_refuses_outside_lookups_and_connects(no_outside_traffic: Guard) -> None:
    # The guard itself, so that the DNS rows below prove something: a real lookup or connect is stopped.
    with pytest.raises(OutsideTraffic):
        socket.getaddrinfo("feeds.example.org", 80)
    with socket.socket() as s, pytest.raises(OutsideTraffic):
        s.connect(("192.0.2.1", 80))  # TEST-NET-1, and refused before the SYN anyway
    assert no_outside_traffic.leaks == [
        "lookup of 'feeds.example.org'",
        "socket.connect to ('192.0.2.1', 80)",
    ]
    no_outside_traffic.leaks.clear()


@pytest.mark.parametrize("allow_private", [False, True])
def test_dns_failure_is_temporary_and_names_the_host(no_outside_traffic: Guard, allow_private: bool) -> None:
    host = "nyheter.helseplattformen-test.invalid"
    no_outside_traffic.nxdomain.add(host)
    with make_client(allow_private_addresses=allow_private) as c:
        res = c.fetch(f"http://{host}/rss.xml")
    assert res.status is FetchStatus.TEMPORARY and res.body == b""
    assert host in res.reason and "Name or service not known" in res.reason, res.reason
    # allowance off: our own address check asks first; on: the connection does, and says so
    assert res.reason.startswith("could not resolve host" if not allow_private else "could not connect to")
    assert no_outside_traffic.lookups == [host] and no_outside_traffic.connects == []


def test_host_name_the_codec_refuses_fails_before_any_lookup(no_outside_traffic: Guard) -> None:
    host = "a" * 70 + ".invalid"  # a DNS label is at most 63 characters: refused by Python's IDNA codec
    for allow_private in (False, True):
        with make_client(allow_private_addresses=allow_private) as c:
            res = c.fetch(f"http://{host}/feed.xml")
        assert res.status is FetchStatus.TEMPORARY, res.reason
        assert res.reason.startswith(f"could not resolve host '{host}'"), res.reason
    assert no_outside_traffic.lookups == [] and no_outside_traffic.connects == []


def test_dns_failure_in_a_pass_marks_the_source_and_keeps_stored_data(
    no_outside_traffic: Guard, local_server: LocalServer, make_settings: Callable[..., Settings]
) -> None:
    host = "feed.nedlagt-avis.invalid"
    no_outside_traffic.nxdomain.add(host)
    good = local_server.add(
        "/feed.xml",
        Route(
            body=(
                "<?xml version='1.0'?><rss version='2.0'><channel><title>T</title><item><guid>1</guid>"
                "<title>Helseplattformen: ny versjon</title><link>/sak/1</link></item></channel></rss>"
            ),
            content_type="application/rss+xml",
        ),
    )
    settings = make_settings(sources=[feed_source("god", good), feed_source("borte", f"http://{host}/rss")])
    first = pipeline.collect(settings)
    assert first.sources_ok == 1 and first.sources_failed == 1 and first.documents_new == 1
    assert first.failures == [("borte", first.failures[0][1])] and host in first.failures[0][1]
    health = source_health(settings, "borte")
    assert health["last_status"] == "temporary" and host in health["last_error"]
    assert health["consecutive_failures"] == 1 and health["failing_since"] is not None
    assert health["documents"] == 1  # the good source's document is stored; nothing from the failed one
    again = pipeline.collect(settings, force=True)
    assert again.documents_new == 0 and source_health(settings, "borte")["consecutive_failures"] == 2
    assert source_health(settings, "borte")["documents"] == 1


# -- refused connection ------------------------------------------------------------------------------------


def test_refused_connection_marks_the_source(
    no_outside_traffic: Guard, make_settings: Callable[..., Settings]
) -> None:
    closed = LocalServer()
    url = closed.url("/feed.xml")
    closed.stop()  # the port is closed: the kernel answers RST
    settings = make_settings(sources=[feed_source("lukket", url)])
    summary = pipeline.collect(settings)
    assert summary.sources_failed == 1 and summary.documents_new == 0
    health = source_health(settings, "lukket")
    assert health["last_status"] == "temporary" and health["last_error"].startswith(
        "could not connect to 127.0.0.1"
    )
    assert health["next_due_at"] is not None and health["consecutive_failures"] == 1
    assert all(h == "127.0.0.1" for h, _ in no_outside_traffic.connects)


# -- a 100 MB body -----------------------------------------------------------------------------------------


def test_a_100_mb_body_is_cut_at_the_cap_in_bounded_memory(local_server: LocalServer) -> None:
    streamed = local_server.add(
        "/stor.xml", Route(stream_bytes=100_000_000, content_type="application/rss+xml")
    )
    declared = local_server.add(
        "/stor-erklaert.xml", Route(stream_bytes=100_000_000, headers={"Content-Length": "100000000"})
    )
    with make_client(total_timeout_s=20) as c:  # default cap: http.max_body_bytes = 10,000,000
        tracemalloc.start()
        try:
            res = c.fetch(streamed)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        res2 = c.fetch(declared)
    assert res.status is FetchStatus.SOFT_ERROR and res.reason == "body larger than 10,000,000 bytes"
    assert res.body == b""  # cut at the cap (the reason says so), not read to the end
    assert peak < 40_000_000, f"peak {peak:,} bytes while refusing a 100 MB body"
    assert res2.status is FetchStatus.SOFT_ERROR and "(Content-Length 100,000,000)" in res2.reason


# -- redirects to private addresses (tested with loopback only) ---------------------------------------------


PRIVATE_TARGETS = [
    ("http://127.0.0.2:{port}/intern", "127.0.0.2 is a loopback address"),
    ("http://[::1]:{port}/intern", "::1 is a loopback address"),
    ("http://2130706434:{port}/intern", "127.0.0.2 is a loopback address"),  # 127.0.0.2 as one decimal number
    ("http://0x7f.2:{port}/intern", "127.0.0.2 is a loopback address"),  # hex, inet_aton style
    ("http://[::ffff:127.0.0.2]:{port}/intern", "127.0.0.2 is a loopback address"),
    ("http://10.20.30.40/journal", "10.20.30.40 is a private address"),
    ("http://192.168.1.1/admin", "192.168.1.1 is a private address"),
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
    ("http://[fd00::1]/", "fd00::1 is a private address"),
    ("http://0.0.0.0:{port}/", "0.0.0.0 is an unspecified address"),
]


def test_redirects_to_private_addresses_are_refused_before_any_connect(
    local_server: LocalServer, no_outside_traffic: Guard, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 127.0.0.1 plays a public site here (the only change to the real rules); every redirect target is then
    # judged by the real rules, and the guard shows that no socket went anywhere but the front server.
    real = http_module.address_problem
    monkeypatch.setattr(http_module, "address_problem", lambda ip: None if ip == "127.0.0.1" else real(ip))
    with make_client(allow_private_addresses=False) as c:
        for i, (target, problem) in enumerate(PRIVATE_TARGETS):
            path = f"/videre-{i}"
            url = local_server.add(path, Route(redirect_to=target.format(port=local_server.port), status=302))
            res = c.fetch(url)
            assert res.status is FetchStatus.HARD_ERROR, (target, res.reason)
            assert res.reason == f"refused: {problem} (http.allow_private_addresses is off)", (
                target,
                res.reason,
            )
            assert local_server.hits(path) == 1
    assert {addr for addr, _ in no_outside_traffic.connects} == {"127.0.0.1"}
    assert {port for _, port in no_outside_traffic.connects} == {local_server.port}


# -- TLS -----------------------------------------------------------------------------------------------------


class TlsServer(LocalServer):
    """LocalServer speaking HTTPS with the given certificate (the handshake happens in accept)."""

    def __init__(self, cert: Path, key: Path) -> None:
        super().__init__()
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self._httpd.socket = ctx.wrap_socket(self._httpd.socket, server_side=True)

    def url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        return f"https://{host}:{self.port}{path}"


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is needed to make a self-signed certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return cert, key


def test_self_signed_certificate_is_refused_with_a_clear_reason(self_signed: tuple[Path, Path]) -> None:
    srv = TlsServer(*self_signed)
    try:
        srv.add("/feed.xml", Route(body=FEED, content_type="application/rss+xml"))
        with make_client() as c:
            res = c.fetch(srv.url("/feed.xml"))
    finally:
        srv.stop()
    assert res.status is FetchStatus.HARD_ERROR and res.body == b""
    assert res.reason.startswith(f"TLS certificate of 127.0.0.1:{srv.port} not accepted: "), res.reason
    assert "self-signed certificate" in res.reason or "self signed certificate" in res.reason, res.reason
    assert srv.hits("/feed.xml") == 0  # no request was sent over the untrusted connection


def test_plain_http_on_an_https_url_is_a_tls_handshake_failure(local_server: LocalServer) -> None:
    local_server.add("/feed.xml", Route(body=FEED))
    with make_client() as c:
        res = c.fetch(f"https://127.0.0.1:{local_server.port}/feed.xml")
    assert res.status is FetchStatus.TEMPORARY and res.body == b""
    assert res.reason.startswith(f"TLS handshake with 127.0.0.1:{local_server.port} failed: "), res.reason


def test_tls_failure_in_a_pass_marks_the_source(
    self_signed: tuple[Path, Path], make_settings: Callable[..., Settings]
) -> None:
    srv = TlsServer(*self_signed)
    try:
        srv.add("/feed.xml", Route(body=FEED, content_type="application/rss+xml"))
        settings = make_settings(sources=[feed_source("selvsignert", srv.url("/feed.xml"))])
        summary = pipeline.collect(settings)
    finally:
        srv.stop()
    assert summary.sources_failed == 1 and summary.documents_new == 0
    health = source_health(settings, "selvsignert")
    assert health["last_status"] == "hard_error" and "not accepted" in health["last_error"]
