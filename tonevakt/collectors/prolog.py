"""The XML prolog of a feed, read properly: what comes before the root element, and the DTD in it.

A feed needs no DTD of its own. An internal subset (`<!DOCTYPE rss [ … ]>`) is how entity expansion ("billion
laughs": a 1.8 MB feed became a 170 MB title and 1.9 GB of memory) and external entities (XXE:
`<!ENTITY x SYSTEM "file:///etc/passwd">`) get in. feedparser, and a plain regular expression, take the first
`<letter>` for the root element, so a comment such as `<!-- <x> -->` before the DOCTYPE hides it from them.

So the prolog is read as XML defines it: a byte-order mark, the XML declaration, processing instructions,
comments and whitespace, and the DOCTYPE with its internal subset (quoted strings, comments and processing
instructions inside it included), up to the root element. Feeds that declare any entity are refused, as
defusedxml refuses them; a DTD without entities is removed before parsing.

The reader works on text: UTF-8 and the other ASCII-compatible encodings are read byte for byte (as Latin-1,
so that offsets are byte offsets); UTF-16 and UTF-32 (by byte-order mark or by the first bytes, XML 1.0
appendix F) are decoded first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_WIDE = (  # (first bytes, codec): byte-order marks first, then '<?' in each wide encoding
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\xfe\xff", "utf-16-be"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\x00\x00\x00<", "utf-32-be"),
    (b"<\x00\x00\x00", "utf-32-le"),
    (b"\x00<\x00?", "utf-16-be"),
    (b"<\x00?\x00", "utf-16-le"),
)
_SPACE = " \t\r\n"
_ENTITY = re.compile(r"<!ENTITY\s+(?:%\s+)?([^\s>\"']*)")
_NAME_START = re.compile(r"[A-Za-z_:]|[^\x00-\x7f]")


@dataclass
class Prolog:
    """What stands before a feed's root element."""

    wide: bool = False  # UTF-16/32: offsets below are in characters, not bytes
    root: int = 0  # where the root element starts (or where reading stopped)
    doctype: tuple[int, int] | None = None  # the span of the (last) DOCTYPE declaration
    subset: bool = False  # the DOCTYPE has an internal subset ([ … ])
    entities: list[str] = field(default_factory=list)  # entity names declared (parameter entities too)
    problem: str = ""  # why reading stopped before a root element ("" when it reached one)


def _text(body: bytes) -> tuple[str, bool]:
    for start, codec in _WIDE:
        if body.startswith(start):
            text = body.decode(codec, errors="replace")
            return text.removeprefix("\ufeff"), True
    return body.decode("latin-1"), False


def _skip(text: str, i: int, close: str, what: str) -> tuple[int, str]:
    end = text.find(close, i)
    return (len(text), f"{what} is never closed") if end < 0 else (end + len(close), "")


def _doctype(text: str, i: int, prolog: Prolog) -> int:
    """Read a DOCTYPE starting at `i` (after `<!DOCTYPE`); returns the offset after its `>`."""
    n = len(text)
    in_subset = False
    while i < n:
        c = text[i]
        if c in "\"'":
            i, prolog.problem = _skip(text, i + 1, c, "a quoted string in the DOCTYPE")
        elif in_subset and text.startswith("<!--", i):
            i, prolog.problem = _skip(text, i + 4, "-->", "a comment in the DOCTYPE")
        elif in_subset and text.startswith("<?", i):
            i, prolog.problem = _skip(text, i + 2, "?>", "a processing instruction in the DOCTYPE")
        elif in_subset and text.startswith("<!ENTITY", i):
            m = _ENTITY.match(text, i)
            prolog.entities.append(m.group(1) if m else "?")
            i += 8
        elif c == "[" and not in_subset:
            in_subset, prolog.subset = True, True
            i += 1
        elif c == "]" and in_subset:
            in_subset = False
            i += 1
        elif c == ">" and not in_subset:
            return i + 1
        else:
            i += 1
        if prolog.problem:
            return n
    prolog.problem = "the DOCTYPE is never closed"
    return n


def read_prolog(body: bytes) -> Prolog:
    """Read the prolog of a feed (see the module docstring)."""
    text, wide = _text(body)
    prolog = Prolog(wide=wide)
    i, n = 0, len(text)
    if not wide and text.startswith("\xef\xbb\xbf"):  # the UTF-8 byte-order mark, read as Latin-1
        i = 3
    while i < n:
        if text[i] in _SPACE:
            i += 1
        elif text.startswith("<?", i):
            i, prolog.problem = _skip(text, i + 2, "?>", "a processing instruction")
        elif text.startswith("<!--", i):
            i, prolog.problem = _skip(text, i + 4, "-->", "a comment")
        elif text[i : i + 9].upper() == "<!DOCTYPE":
            start = i
            i = _doctype(text, i + 9, prolog)
            prolog.doctype = (start, i)
        elif text[i] == "<" and _NAME_START.match(text, i + 1):
            prolog.root = i
            return prolog
        else:
            prolog.problem = prolog.problem or f"unexpected {text[i : i + 20]!r} before the root element"
        if prolog.problem:
            break
    prolog.root = min(i, n)
    prolog.problem = prolog.problem or "no root element"
    return prolog


def declares_entities(body: bytes, prolog: Prolog) -> list[str]:
    """The entity names a parser could pick up from `body`: those of its prolog, and, when the prolog could not
    be read to the root element, any `<!ENTITY` before the first `<letter>` (where feedparser's own DOCTYPE
    filter looks for them)."""
    names = list(prolog.entities)
    if prolog.problem and not prolog.wide:
        first = re.search(rb"<\w", body)
        head = body[: first.start() if first else len(body)].decode("latin-1")
        names += [m.group(1) for m in _ENTITY.finditer(head, prolog.root)]
    return names
