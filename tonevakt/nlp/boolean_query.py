"""Tokenisation, terms and the boolean query language used by relevance and topics.

Query syntax (operators in upper case, everything else case-insensitive):

    helseplattform*                      a word; ``*`` at the end stands for any ending
    "en innbygger en journal"            a phrase (punctuation and dashes between the words are ignored)
    a AND b, a b                         both (adjacent terms are joined by AND)
    a OR b                               either
    a NOT b, NOT b                       a without b
    a NEAR/5 b                           a and b with at most 5 words between them, in either order
    ( ... )                              grouping

Text is split into words of letters and digits (Norwegian letters included); a hyphen splits a compound into
its parts, and the hyphen-joined form is tried as well, so ``helseplattform*`` matches
"helseplattform-prosjektet" and "Helse-plattformen" alike.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from tonevakt.errors import ConfigError

_WORD_RE = re.compile(r"[^\W_]+(?:[-\u2010\u2011][^\W_]+)*", re.UNICODE)
_PART_RE = re.compile(r"[^\W_]+", re.UNICODE)


@dataclass(frozen=True)
class Token:
    """One word of a text: its casefolded form, its surface form, its word position and character span."""

    norm: str
    surface: str
    pos: int
    start: int  # character offsets in the (NFC-normalised) text
    end: int
    joined: str = ""  # the hyphen-joined compound it is the first part of ("" if none)
    joined_end: int = 0  # character end of that compound
    joined_len: int = 1  # its number of parts


class Tokens(list[Token]):
    """The tokens of a text, with the text (for the surface form of phrases)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def span(self, first: int, last: int) -> str:
        return self.text[self[first].start : self[last].end]


def normalise(text: str) -> str:
    return unicodedata.normalize("NFC", text).casefold()


def tokenize(text: str) -> Tokens:
    """Words of `text`, hyphenated compounds split into parts (each part one position)."""
    text = unicodedata.normalize("NFC", text)
    tokens = Tokens(text)
    for m in _WORD_RE.finditer(text):
        parts = list(_PART_RE.finditer(m.group(0)))
        base = m.start()
        for j, p in enumerate(parts):
            extra: dict[str, object] = {}
            if j == 0 and len(parts) > 1:
                extra = {
                    "joined": normalise("".join(x.group(0) for x in parts)),
                    "joined_end": m.end(),
                    "joined_len": len(parts),
                }
            tokens.append(
                Token(
                    normalise(p.group(0)), p.group(0), len(tokens), base + p.start(), base + p.end(), **extra
                )
            )  # type: ignore[arg-type]
    return tokens


@dataclass(frozen=True)
class Hit:
    """Where a term matched: word positions [start, end] and the surface text."""

    start: int
    end: int
    surface: str


@dataclass(frozen=True)
class Word:
    """A word, or a stem with ``*`` (any ending, possibly none)."""

    text: str
    prefix: bool

    def fits(self, norm: str) -> bool:
        return norm.startswith(self.text) if self.prefix else norm == self.text

    def __str__(self) -> str:
        return self.text + ("*" if self.prefix else "")


@dataclass(frozen=True)
class Term:
    """A word or a phrase (a sequence of words). Matches token positions in a text."""

    words: tuple[Word, ...]

    @classmethod
    def parse(cls, raw: str) -> Term:
        """Parse 'word', 'stem*', or a phrase 'st. olav*' (quotes optional). Raises ConfigError."""
        raw = raw.strip().strip('"').strip()
        pieces = raw.split()
        words: list[Word] = []
        for piece in pieces:
            prefix = piece.endswith("*")
            body = piece.rstrip("*")
            if "*" in body:
                raise ConfigError(f"'*' is only allowed at the end of a word (in {raw!r})")
            parts = [normalise(p) for p in _PART_RE.findall(body)]
            if not parts:
                if prefix:
                    raise ConfigError(f"'*' needs at least one letter before it (in {raw!r})")
                continue
            words.extend(Word(p, prefix and j == len(parts) - 1) for j, p in enumerate(parts))
        if not words:
            raise ConfigError(f"empty term {raw!r}: a term needs at least one letter or digit")
        return cls(tuple(words))

    def hits(self, tokens: Tokens) -> list[Hit]:
        out: list[Hit] = []
        n = len(self.words)
        if n == 1:
            w = self.words[0]
            for t in tokens:
                if t.joined and w.fits(t.joined):  # the whole compound: helseplattform-prosjektet
                    out.append(Hit(t.pos, t.pos + t.joined_len - 1, tokens.text[t.start : t.joined_end]))
                elif w.fits(t.norm):
                    out.append(Hit(t.pos, t.pos, t.surface))
            return out
        for i in range(len(tokens) - n + 1):
            if all(self.words[k].fits(tokens[i + k].norm) for k in range(n)):
                out.append(Hit(i, i + n - 1, tokens.span(i, i + n - 1)))
        return out

    def __str__(self) -> str:
        s = " ".join(str(w) for w in self.words)
        return f'"{s}"' if len(self.words) > 1 else s


# -- the query tree ----------------------------------------------------------------------------------


@dataclass
class Result:
    matched: bool
    hits: list[Hit] = field(default_factory=list)


class Node:
    def evaluate(self, tokens: Tokens) -> Result:  # pragma: no cover - abstract
        raise NotImplementedError

    def terms(self) -> list[Term]:
        """The positive terms (not under NOT) of the query."""
        return []


@dataclass
class TermNode(Node):
    term: Term

    def evaluate(self, tokens: Tokens) -> Result:
        hits = self.term.hits(tokens)
        return Result(bool(hits), hits)

    def terms(self) -> list[Term]:
        return [self.term]


@dataclass
class And(Node):
    children: list[Node]

    def evaluate(self, tokens: Tokens) -> Result:
        hits: list[Hit] = []
        for c in self.children:
            r = c.evaluate(tokens)
            if not r.matched:
                return Result(False)
            hits.extend(r.hits)
        return Result(True, hits)

    def terms(self) -> list[Term]:
        return [t for c in self.children for t in c.terms()]


@dataclass
class Or(Node):
    children: list[Node]

    def evaluate(self, tokens: Tokens) -> Result:
        matched, hits = False, []
        for c in self.children:
            r = c.evaluate(tokens)
            if r.matched:
                matched = True
                hits.extend(r.hits)
        return Result(matched, hits)

    def terms(self) -> list[Term]:
        return [t for c in self.children for t in c.terms()]


@dataclass
class Not(Node):
    child: Node

    def evaluate(self, tokens: Tokens) -> Result:
        return Result(not self.child.evaluate(tokens).matched)


@dataclass
class Near(Node):
    left: Node
    right: Node
    distance: int

    def evaluate(self, tokens: Tokens) -> Result:
        a, b = self.left.evaluate(tokens), self.right.evaluate(tokens)
        if not (a.matched and b.matched):
            return Result(False)
        hits = _near_hits(a.hits, b.hits, self.distance) + _near_hits(b.hits, a.hits, self.distance)
        return Result(bool(hits), list(dict.fromkeys(hits)))

    def terms(self) -> list[Term]:
        return self.left.terms() + self.right.terms()


def _near_hits(hits: list[Hit], others: list[Hit], distance: int) -> list[Hit]:
    """The hits that have at least one of `others` within `distance` words (in either order; overlapping or
    adjacent spans count as 0 words apart), in their given order.

    Linear after sorting (two pointers): `x` has a near neighbour `y` exactly when y.start ≤ x.end + distance + 1
    and y.end ≥ x.start − distance − 1. Walking the hits by their right reach and the others by their start, the
    others that pass the first test form a growing prefix; the largest end in that prefix settles the second."""
    if not hits or not others:
        return []
    by_start = sorted(others, key=lambda h: h.start)
    near: set[int] = set()
    i, max_end = 0, None  # the largest end among the others passed so far (None: none yet)
    for k in sorted(range(len(hits)), key=lambda k: hits[k].end):
        x = hits[k]
        while i < len(by_start) and by_start[i].start <= x.end + distance + 1:
            max_end = by_start[i].end if max_end is None else max(max_end, by_start[i].end)
            i += 1
        if max_end is not None and max_end >= x.start - distance - 1:
            near.add(k)
    return [h for k, h in enumerate(hits) if k in near]


# -- parsing --------------------------------------------------------------------------------------------

_LEX_RE = re.compile(
    r'\s*(?:(?P<lp>\()|(?P<rp>\))|(?P<phrase>"[^"]*"?)|(?P<near>NEAR/\S*)|(?P<word>[^\s()"]+))'
)


def _lex(query: str) -> list[tuple[str, str, int]]:
    out: list[tuple[str, str, int]] = []
    pos = 0
    query = query.rstrip()
    while pos < len(query):
        m = _LEX_RE.match(query, pos)
        if not m or m.end() == pos:
            raise ConfigError(f"query: cannot read {query[pos : pos + 20]!r} at character {pos + 1}")
        kind = m.lastgroup or ""
        value, start = m.group(kind), m.start(kind)
        if kind == "phrase" and (len(value) < 2 or not value.endswith('"')):
            raise ConfigError(f"query: unclosed quote at character {start + 1}")
        if kind == "word" and value in ("AND", "OR", "NOT"):
            kind = value.lower()
        out.append((kind, value, start + 1))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, query: str) -> None:
        self.query = query
        self.toks = _lex(query)
        self.i = 0

    def peek(self) -> str | None:
        return self.toks[self.i][0] if self.i < len(self.toks) else None

    def take(self) -> tuple[str, str, int]:
        t = self.toks[self.i]
        self.i += 1
        return t

    def error(self, msg: str) -> ConfigError:
        where = f" at character {self.toks[self.i][2]}" if self.i < len(self.toks) else " at the end"
        return ConfigError(f"query: {msg}{where} (in {self.query!r})")

    def parse(self) -> Node:
        if not self.toks:
            raise ConfigError("query: the query is empty")
        node = self.parse_or()
        if self.i < len(self.toks):
            kind, value, _ = self.toks[self.i]
            raise self.error(f"unexpected {value!r}" if kind != "rp" else "')' without a matching '('")
        if _only_negative(node):
            raise ConfigError(
                f"query: a query must say what to look for, not only what to leave out ({self.query!r})"
            )
        return node

    def parse_or(self) -> Node:
        children = [self.parse_and()]
        while self.peek() == "or":
            self.take()
            children.append(self.parse_and())
        return children[0] if len(children) == 1 else Or(children)

    def parse_and(self) -> Node:
        children = [self.parse_near()]
        while self.peek() in ("and", "not", "word", "phrase", "lp"):
            if self.peek() == "and":
                self.take()
            children.append(self.parse_near())
        return children[0] if len(children) == 1 else And(children)

    def parse_near(self) -> Node:
        node = self.parse_unary()
        while self.peek() == "near":
            _, value, _ = self.take()
            m = re.fullmatch(r"NEAR/(\d+)", value)
            if not m or int(m.group(1)) < 1:
                self.i -= 1
                raise self.error(f"{value!r}: write NEAR/n with a number of words n ≥ 1, e.g. NEAR/5")
            right = self.parse_unary()
            if _has_not(node) or _has_not(right):
                raise self.error("NOT cannot be used inside NEAR")
            node = Near(node, right, int(m.group(1)))
        return node

    def parse_unary(self) -> Node:
        kind = self.peek()
        if kind is None:
            raise self.error("a term is missing")
        if kind == "not":
            self.take()
            return Not(self.parse_unary())
        if kind == "lp":
            self.take()
            node = self.parse_or()
            if self.peek() != "rp":
                raise self.error("'(' is never closed")
            self.take()
            return node
        if kind in ("word", "phrase"):
            _, value, pos = self.take()
            try:
                return TermNode(Term.parse(value))
            except ConfigError as e:
                raise ConfigError(f"query: {e} at character {pos}") from e
        _, value, _ = self.toks[self.i]
        raise self.error(f"expected a term, got {value!r}")


def _has_not(node: Node) -> bool:
    if isinstance(node, Not):
        return True
    if isinstance(node, And | Or):
        return any(_has_not(c) for c in node.children)
    if isinstance(node, Near):
        return _has_not(node.left) or _has_not(node.right)
    return False


def _only_negative(node: Node) -> bool:
    if isinstance(node, Not):
        return True
    if isinstance(node, And):
        return all(_only_negative(c) for c in node.children)
    if isinstance(node, Or):
        return any(_only_negative(c) for c in node.children)
    return False


def parse_query(query: str) -> Node:
    """Parse a boolean query; a bad query raises ConfigError naming the problem and where it is."""
    return _Parser(query).parse()
