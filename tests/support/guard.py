"""Is the private-address guard really in place? httpx offers no public way to see (or choose) the network
backend under its connection pool, and tonevakt's HttpClient keeps its httpx client to itself. The guard tests
must still see that the backend is there, so the one reach into private attributes lives here: if httpx or
HttpClient changes them, this fails loudly (AttributeError) rather than the guard going missing silently."""

from __future__ import annotations

import httpx

from tonevakt.collectors.http import HttpClient, _GuardedBackend


def guard_in_transport(transport: httpx.HTTPTransport) -> bool:
    """The transport's httpcore connection pool connects through tonevakt's `_GuardedBackend`."""
    return isinstance(transport._pool._network_backend, _GuardedBackend)


def guard_in_client(client: HttpClient) -> bool:
    """`client` fetches through a transport whose pool has the guard (see `guard_in_transport`)."""
    return guard_in_transport(client._client._transport)
