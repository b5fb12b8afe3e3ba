"""Many RSS feeds on 127.0.0.1, one port per feed (each port is its own host for per-host spacing), every
response after a fixed delay. Runs as its own process (asyncio, one thread), so that serving costs the
measured process nothing:

    python benchmarks/feedserver.py N DELAY_S     # prints {"ports": [...]} then serves until stdin closes

Even feeds send an ETag and answer 304 to a matching If-None-Match; odd feeds send no validators, so an
unchanged feed is caught by the body hash. GET /__stats on any port returns the request counts as JSON.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

ITEMS = 5
TOPICS = [
    "Helseplattformen ved St. Olavs hospital: ansatte melder om merarbeid",
    "Ny vei åpnet i Orkdal etter to års arbeid",
    "HelsaMi får ny funksjon for timebestilling",
    "Kommunestyret i Molde vedtok budsjettet",
    "Helse Midt-Norge legger fram rapport om Helseplattformen",
]


def feed_xml(i: int) -> bytes:
    base = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
    items = []
    for k in range(ITEMS):
        items.append(
            f"<item><title>{TOPICS[(i + k) % len(TOPICS)]} ({i}-{k})</title>"
            f"<link>https://kilde{i}.example.no/sak/{k}</link><guid>kilde{i}-sak-{k}</guid>"
            f"<pubDate>{format_datetime(base - timedelta(hours=i + k))}</pubDate>"
            f"<description>Sak {k} fra kilde {i}. {TOPICS[(i + k) % len(TOPICS)]}. Les mer om saken her.</description>"
            "</item>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Kilde {i}</title><link>https://kilde{i}.example.no/</link><description>Nyheter</description>"
        + "".join(items)
        + "</channel></rss>"
    ).encode()


class Server:
    def __init__(self, n: int, delay_s: float) -> None:
        self.n, self.delay_s = n, delay_s
        self.bodies = [feed_xml(i) for i in range(n)]
        self.stats = {"requests": 0, "feed_200": 0, "feed_304": 0, "robots": 0, "other": 0}

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, i: int) -> None:
        try:
            while True:
                line = await reader.readline()
                if not line.strip():
                    break
                headers = {}
                while True:
                    h = await reader.readline()
                    if h in (b"\r\n", b"\n", b""):
                        break
                    k, _, v = h.decode("latin-1").partition(":")
                    headers[k.strip().lower()] = v.strip()
                path = line.split()[1].decode()
                status, body, extra = self.respond(i, path, headers)
                if self.delay_s and path != "/__stats":
                    await asyncio.sleep(self.delay_s)
                head = [
                    f"HTTP/1.1 {status} {'OK' if status == 200 else 'X'}",
                    f"Content-Length: {len(body)}",
                    *extra,
                ]
                writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    break
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    def respond(self, i: int, path: str, headers: dict[str, str]) -> tuple[int, bytes, list[str]]:
        if path == "/__stats":
            return 200, json.dumps(self.stats).encode(), ["Content-Type: application/json"]
        self.stats["requests"] += 1
        if path == "/feed.xml":
            etag = f'"kilde-{i}-v1"' if i % 2 == 0 else None
            if etag and headers.get("if-none-match") == etag:
                self.stats["feed_304"] += 1
                return 304, b"", [f"ETag: {etag}"]
            self.stats["feed_200"] += 1
            extra = ["Content-Type: application/rss+xml; charset=utf-8"] + ([f"ETag: {etag}"] if etag else [])
            return 200, self.bodies[i], extra
        if path == "/robots.txt":
            self.stats["robots"] += 1
        else:
            self.stats["other"] += 1
        return 404, b"not found", ["Content-Type: text/plain"]

    async def main(self) -> None:
        servers, ports = [], []
        for i in range(self.n):
            srv = await asyncio.start_server(
                lambda r, w, i=i: self.handle(r, w, i), "127.0.0.1", 0, backlog=64
            )
            servers.append(srv)
            ports.append(srv.sockets[0].getsockname()[1])
        print(json.dumps({"ports": ports}), flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)  # until the parent closes our stdin
        for srv in servers:
            srv.close()


if __name__ == "__main__":
    asyncio.run(Server(int(sys.argv[1]), float(sys.argv[2])).main())
