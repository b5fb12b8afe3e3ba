"""URL canonicalisation: one story, one URL, whatever tracking junk or casing it arrived with."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

_TRACKING_EXACT = {
    "fbclid",
    "gclid",
    "dclid",
    "msclkid",
    "mc_cid",
    "mc_eid",
    "ref",
    "ref_src",
    "referrer",
    "igshid",
    "yclid",
    "_ga",
    "_gl",
    "ocid",
    "cmpid",
    "xtor",
    "spm",
    "_hsenc",
    "_hsmi",
    "wt.mc_id",
    "wt_mc",
    "s_cid",
    "icid",
    "guccounter",
    "guce_referrer",
    "guce_referrer_sig",
    "vero_id",
    "oly_enc_id",
    "oly_anon_id",
    "rb_clickid",
    "twclid",
    "ttclid",
    "li_fat_id",
}
_TRACKING_PREFIX = ("utm_", "pk_", "mtm_", "at_", "ns_")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _is_tracking(key: str) -> bool:
    k = key.lower()
    return k in _TRACKING_EXACT or k.startswith(_TRACKING_PREFIX)


def _ascii_host(host: str) -> str:
    """IDN hosts in their ASCII (punycode) form, so 'trøndelag.no' and 'xn--trndelag-e1a.no' are one host."""
    if host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


def canonical_url(url: str) -> str:
    """Canonical form used for ids and dedup.

    Lower-case scheme and host, http and https treated as one, default port, ``www.`` and fragment
    dropped, tracking parameters removed, remaining parameters sorted, trailing slash removed
    (except the root), percent-encoding normalised.
    """
    url = url.strip()
    parts = urlsplit(url)
    scheme = parts.scheme.lower() or "https"
    if scheme == "http":
        scheme = "https"
    host = (parts.hostname or "").lower().rstrip(".")
    if host.startswith("www."):
        host = host[4:]
    host = _ascii_host(host)
    try:
        port = parts.port
    except ValueError:  # a port that is not a number: keep what was given
        port = None
    netloc = host
    if port and port not in (_DEFAULT_PORTS.values()):
        netloc = f"{host}:{port}"
    path = quote(unquote(parts.path), safe="/:@!$&'()*+,;=-._~")
    path = re.sub(r"/{2,}", "/", path)
    if len(path) > 1 and path.endswith("/"):
        path = path.rstrip("/")
    if not path:
        path = "/"
    query_pairs = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _is_tracking(k)]
    query = urlencode(sorted(query_pairs))
    return urlunsplit((scheme, netloc, path, query, ""))
