"""The network guard shared by the reliability tests: an audit hook that refuses, and records, any DNS lookup
or connection beyond 127.0.0.0/8 while a test runs. The fixture `no_outside_traffic` is registered for
every module by tests/conftest.py; a module turns it on for all its tests with
`pytestmark = pytest.mark.usefixtures("no_outside_traffic")`."""

from __future__ import annotations

import ipaddress
import socket
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

# -- the guard: nothing leaves 127.0.0.0/8 -----------------------------------------------------------------


class OutsideTraffic(Exception):
    """Raised inside the socket call that would have reached beyond the loopback interface."""


@dataclass
class Guard:
    active: bool = False
    lookups: list[str] = field(default_factory=list)
    connects: list[tuple[str, int]] = field(default_factory=list)
    leaks: list[str] = field(default_factory=list)
    nxdomain: set[str] = field(default_factory=set)  # names the "resolver" answers with EAI_NONAME
    lock: threading.Lock = field(default_factory=threading.Lock)


GUARD = Guard()


def _loopback_literal(host: str) -> bool:
    """Is `host` a loopback address written as a literal (including inet_aton's 2130706433 and 0x7f.1)?"""
    h = host.strip("[]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        pass
    try:
        return socket.inet_aton(h)[0] == 127  # pure parsing, no network
    except OSError:
        return False


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if not GUARD.active or not event.startswith("socket."):
        return
    if event in ("socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex"):
        host = args[0]
        host = host.decode("ascii", "replace") if isinstance(host, bytes) else str(host)
        with GUARD.lock:
            GUARD.lookups.append(host)
        if host in GUARD.nxdomain:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        if host != "localhost" and not _loopback_literal(host):
            with GUARD.lock:
                GUARD.leaks.append(f"lookup of {host!r}")
            raise OutsideTraffic(f"a DNS lookup of {host!r} would leave the machine")
    elif event in ("socket.connect", "socket.sendto", "socket.sendmsg"):
        address = args[1] if len(args) > 1 else None
        if isinstance(address, tuple) and address and isinstance(address[0], str):
            with GUARD.lock:
                GUARD.connects.append((address[0], int(address[1]) if len(address) > 1 else 0))
            if not _loopback_literal(address[0]):
                with GUARD.lock:
                    GUARD.leaks.append(f"{event} to {address!r}")
                raise OutsideTraffic(f"{event} to {address!r} would leave the machine")


sys.addaudithook(_audit)  # audit hooks cannot be removed; it does nothing while GUARD.active is False


@pytest.fixture
def no_outside_traffic() -> Iterator[Guard]:
    GUARD.lookups.clear()
    GUARD.connects.clear()
    GUARD.leaks.clear()
    GUARD.nxdomain.clear()
    GUARD.active = True
    try:
        yield GUARD
    finally:
        GUARD.active = False
    assert GUARD.leaks == [], f"traffic outside 127.0.0.0/8 attempted: {GUARD.leaks}"
