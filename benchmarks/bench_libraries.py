"""Hand-written code against the maintained libraries that replaced it (issue 17), side by side in one run.

- PII (`nlp/pii.py`): identity numbers (python-stdnum) and phone numbers (phonenumbers' matcher for Norway) on
  a generated, seeded set of Norwegian sentences: planted numbers with valid checksums (fødselsnummer,
  D-nummer, H-nummer; mobile and landline numbers in every common grouping, with and without +47 / 0047,
  foreign numbers with a prefix) and decoys that must stay (invalid-checksum identity numbers, organisation
  numbers, amounts, dates, order numbers, landline digits without a cue). Recall, precision, texts/s for the
  hand-written code before, the code now (libraries plus Tonevakt's context rules), and the libraries alone.
- robots.txt (`collectors/http.py`): urllib.robotparser against Protego on a rule table read as Google and
  RFC 9309 read it (wildcards, `$`, longest match, groups per agent), plus checks/s.
- Encodings (`collectors/encoding.py`): the old fallback (UTF-8, then Windows-1252, then ISO-8859-1) against
  `decode_unlabelled` and charset-normalizer alone on Norwegian text (æøå, – « » €) in UTF-8, UTF-8 with BOM,
  Windows-1252, ISO-8859-1 and UTF-16 with and without BOM, plus MB/s on a feedback CSV.
"""

from __future__ import annotations

import random
import re
import sys
import time
from collections.abc import Callable
from typing import Any

import legacy_handwritten as legacy
import phonenumbers
from charset_normalizer import from_bytes
from common import banner, emit_json, footer, parser, ratio
from corpus import corpus
from protego import Protego
from stdnum.no import fodselsnummer, orgnr

from tonevakt.collectors.encoding import decode_unlabelled
from tonevakt.nlp import pii

SEED = 17
AGENT = "Tonevakt"


def best_of(runs: int, work: Callable[[], object]) -> float:
    """The shortest of `runs` wall-clock timings of `work()`, in seconds (the machine is shared)."""
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        work()
        times.append(time.perf_counter() - t0)
    return min(times)


# -- PII ---------------------------------------------------------------------------------------------------

W1, W2 = (3, 7, 6, 1, 8, 9, 4, 5, 2), (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)


def with_check_digits(first9: str) -> str | None:
    k1 = (11 - sum(a * int(b) for a, b in zip(W1, first9, strict=True)) % 11) % 11
    if k1 == 10:
        return None
    k2 = (11 - sum(a * int(b) for a, b in zip(W2, first9 + str(k1), strict=True)) % 11) % 11
    return None if k2 == 10 else first9 + str(k1) + str(k2)


def identity_number(rng: random.Random, kind: str, century_rule: bool) -> str:
    """A checksum-valid number for a real date. `century_rule`: the individual number matches the birth
    year's century as Skatteetaten issues them; otherwise it is random (as in tests/fixtures/pii/)."""
    while True:
        year = rng.randint(1930, 2024)
        month, day = rng.randint(1, 12), rng.randint(1, 28)
        if century_rule:
            ind = rng.randint(0, 499) if year < 2000 else rng.randint(500, 999)
        else:
            ind = rng.randint(0, 999)
        d, m = day + (40 if kind == "dnr" else 0), month + (40 if kind == "hnr" else 0)
        number = with_check_digits(f"{d:02d}{m:02d}{year % 100:02d}{ind:03d}")
        if number:
            return number


def bad_checksum(rng: random.Random) -> str:
    good = identity_number(rng, "fnr", True)
    return good[:10] + str((int(good[10]) + rng.randint(1, 9)) % 10)


def org_number(rng: random.Random) -> str:
    while True:
        number = str(rng.choice([8, 9])) + "".join(str(rng.randint(0, 9)) for _ in range(8))
        if orgnr.is_valid(number):  # one in eleven: the mod-11 check digit holds
            return number


# Series of Norway's numbering plan (Nkom) as phonenumbers 9.0 knows them: mobile, and geographic landlines.
MOBILE_SERIES = [40, 41, 45, 46, 47, 48, *range(90, 100)]
LANDLINE_SERIES = [
    21,
    22,
    23,
    24,
    31,
    32,
    33,
    35,
    37,
    38,
    51,
    52,
    53,
    55,
    56,
    57,
    61,
    62,
    63,
    64,
    *range(66, 80),
]
UNALLOCATED_SERIES = [20, 25, 26, 27, 28, 29, 30, 34, 36, 39, 42, 43, 44, 49, 50, 54, 58, 59, 60, 65]


def number_in(rng: random.Random, series: list[int]) -> str:
    return f"{rng.choice(series)}{rng.randint(0, 999999):06d}"


def grouped(n: str, landline_style: bool) -> str:
    return f"{n[:2]} {n[2:4]} {n[4:6]} {n[6:]}" if landline_style else f"{n[:3]} {n[3:5]} {n[5:]}"


ID_FORMS = [lambda n: n, lambda n: f"{n[:6]} {n[6:]}", lambda n: f"{n[:6]}-{n[6:]}"]
ID_SENTENCES = [
    "fnr. {}",
    "Fødselsnummeret mitt er {}, kan dere sjekke journalen?",
    "Pasient ({}) fikk feil time i HelsaMi.",
    "D-nr {} ble ikke godtatt ved innlogging.",
    "Skriv gjerne til meg, personnummer {}.",
]
PHONE_SENTENCES = [
    "ring meg på {}",
    "Mitt mobilnummer er {}, send en SMS.",
    "Ta kontakt på tlf {} om timen.",
    "Dere kan nå meg på {} etter klokka 16.",
    "Jeg ringte {} tre ganger uten svar.",
]
KEEP_SENTENCES = [
    "Ordrenummer {} gjelder ikke meg.",
    "Det kostet {} kr for hele regionen.",
    "Saken har referanse {} hos Helseplattformen.",
    "Fakturanummer {} er betalt.",
    "Org.nr. {} står på brevet.",
]


Case = tuple[str, str, str, str]  # (text, item, what, kind); what: 'personal', 'keep' or 'unallocated'


def pii_cases(rng: random.Random, n: int) -> list[Case]:
    """`n` sentences of each kind: planted numbers ('personal': the item must go), decoys ('keep': the text must
    stay as it is), and 8 digits in a phone grouping from a series no phone number has ('unallocated')."""
    cases: list[Case] = []
    for _ in range(n):
        rule = rng.random() < 0.8
        kind = rng.choice(["fnr", "fnr", "dnr", "hnr"])
        item = rng.choice(ID_FORMS)(identity_number(rng, kind, century_rule=rule))
        what = "identity number" if rule else "identity number, individual number of another century"
        cases.append((rng.choice(ID_SENTENCES).format(item), item, "personal", what))
        m, ll = number_in(rng, MOBILE_SERIES), number_in(rng, LANDLINE_SERIES)
        item = rng.choice(
            [
                grouped(m, False),
                m,
                f"+47 {grouped(m, False)}",
                f"+47{m}",
                f"0047 {grouped(ll, True)}",
                f"(+47) {m[:4]} {m[4:]}",
                grouped(ll, True),
            ]
        )
        cases.append((rng.choice(PHONE_SENTENCES).format(item), item, "personal", "Norwegian phone number"))
        if rng.random() < 0.2:  # a Swedish or Danish mobile number, written with its country code
            a, b, c = rng.randint(10, 99), rng.randint(10, 99), rng.randint(10, 99)
            item = rng.choice(
                [f"+46 70 {rng.randint(100, 999)} {a} {b}", f"+45 {rng.randint(20, 31)} {a} {b} {c}"]
            )
            what = "foreign number with prefix"
            cases.append((rng.choice(PHONE_SENTENCES).format(item), item, "personal", what))
        decoy, kind = rng.choice(
            [
                (bad_checksum(rng), "11 digits, invalid checksum"),
                (number_in(rng, MOBILE_SERIES), "8 digits after an order/amount cue"),
                (f"{rng.randint(10, 99)} {rng.randint(100, 999)} 000", "amount in thousands"),
                (" ".join(re.findall(".{3}", org_number(rng))), "organisation number"),
                (f"1{rng.randint(0, 9999999):07d}", "8 digits starting with 1"),
            ]
        )
        cases.append((rng.choice(KEEP_SENTENCES).format(decoy), decoy, "keep", kind))
        plain = number_in(
            rng, LANDLINE_SERIES
        )  # a landline's 8 digits in a row without a cue: could be anything
        cases.append(
            (f"Innbyggertallet {plain} er feil i rapporten.", plain, "keep", "landline digits, no cue")
        )
        date = f"{rng.randint(1, 28):02d}.{rng.randint(1, 12):02d}.{rng.randint(2020, 2026)}"
        cases.append((f"Time {date} kl. 08.15 på St. Olavs, postnummer 7030.", date, "keep", "date and time"))
        u = number_in(rng, UNALLOCATED_SERIES)
        item = rng.choice([grouped(u, False), grouped(u, True), f"+47 {grouped(u, False)}"])
        cases.append((rng.choice(PHONE_SENTENCES).format(item), item, "unallocated", "unallocated series"))
    return cases


def redact_libraries_alone(text: str) -> tuple[str, int]:
    """What the libraries do without Tonevakt's context rules: every checksum-valid identity number that
    python-stdnum accepts, and every number phonenumbers' matcher finds valid for Norway."""
    text, n_mail = pii._redact_emails(text)

    def ids(m: re.Match[str]) -> str:
        return pii.PLACEHOLDER_FNR if fodselsnummer.is_valid(m.group(1) + m.group(2)) else m.group(0)

    text, n_id = pii._ID_RE.subn(ids, text)
    n_id = text.count(pii.PLACEHOLDER_FNR)
    parts, last, n_phone = [], 0, 0
    matcher = phonenumbers.PhoneNumberMatcher(
        text, "NO", leniency=phonenumbers.Leniency.VALID, max_tries=sys.maxsize
    )
    for m in matcher:
        parts += [text[last : m.start], pii.PLACEHOLDER_PHONE]
        last, n_phone = m.end, n_phone + 1
    return "".join(parts) + text[last:], n_mail + n_id + n_phone


def redact_now(text: str) -> tuple[str, int]:
    """`pii.redact` as the (text, count) pair the older implementations return, for one comparison."""
    r = pii.redact(text)
    return r.text, r.count


def score_pii(redact: Callable[[str], tuple[str, int]], cases: list[Case]) -> dict[str, Any]:
    t0 = time.perf_counter()
    results = [redact(c[0]) for c in cases]
    seconds = time.perf_counter() - t0
    found = missed = wrong = unallocated = 0
    by_kind: dict[str, list[int]] = {}  # kind -> [handled right, of]
    for (_text, item, what, kind), (out, n) in zip(cases, results, strict=True):
        if what == "personal":
            right = item not in out
            found, missed = found + right, missed + (not right)
            wrong += max(0, n - 1) if right else n
        elif what == "keep":
            right = n == 0 and item in out
            wrong += max(n, int(item not in out))
        else:
            right = item not in out  # counted apart: redacted or not, no one's number is at stake
            unallocated += right
        tally = by_kind.setdefault(kind, [0, 0])
        tally[0] += right
        tally[1] += 1
    n_unallocated = sum(1 for c in cases if c[2] == "unallocated")
    return {
        "recall": found / (found + missed),
        "precision": found / (found + wrong) if found + wrong else 1.0,
        "missed": missed,
        "wrongly_redacted": wrong,
        "unallocated_redacted_share": unallocated / n_unallocated if n_unallocated else float("nan"),
        "right_by_kind": {k: f"{r}/{of}" for k, (r, of) in by_kind.items()},
        "texts_per_s": len(cases) / seconds,
    }


def bench_pii(n: int, n_articles: int, rng: random.Random) -> dict[str, Any]:
    cases = pii_cases(rng, n)
    planted = sum(1 for c in cases if c[2] == "personal")
    decoys = sum(1 for c in cases if c[2] == "keep")
    print(
        f"\n-- PII: {len(cases):,} sentences: {planted:,} planted numbers, {decoys:,} decoys, {n:,} unallocated"
    )
    impls = {
        "hand-written (before)": legacy.redact,
        "libraries + context rules (now)": redact_now,
        "libraries alone": redact_libraries_alone,
    }
    out = {name: score_pii(f, cases) for name, f in impls.items()}
    long_text = "Kari (fnr 15099947613, tlf 922 33 444, kari@example.no) betalte 12 500 kr. " * 1500
    for name, f in impls.items():
        out[name]["long_text_s"] = best_of(3, lambda f=f: f(long_text))
    print(
        f"{'':34} {'recall':>7} {'precision':>9} {'missed':>7} {'wrong':>6} {'texts/s':>9} {'18k words':>10}"
    )
    for name, r in out.items():
        print(
            f"{name:34} {r['recall']:7.3f} {r['precision']:9.3f} {r['missed']:7d} {r['wrongly_redacted']:6d} "
            f"{r['texts_per_s']:9,.0f} {r['long_text_s']:9.2f}s"
        )
    print("handled right, by kind (planted: redacted; decoys: kept; unallocated series: redacted):")
    for kind in out["hand-written (before)"]["right_by_kind"]:
        print(f"  {kind:55} " + "  ".join(f"{r['right_by_kind'][kind]:>9}" for r in out.values()))
    # What enrichment pays per news article (bench_stages.py's ~600-word articles), with a date, an amount and
    # a phone number in every fifth paragraph: the texts/s above are all numbers, an article mostly words.
    articles = []
    for title, text in corpus(n_articles, seed=SEED):
        paragraphs = text.split("\n\n")
        for i in range(0, len(paragraphs), 5):
            paragraphs[i] += " Møtet 12.03.2026 kostet 12 500 000 kroner; pressevakta svarer på 73 86 80 00."
        articles.append((title, "\n\n".join(paragraphs)))
    for name, f in impls.items():
        seconds = best_of(3, lambda f=f: [(f(t), f(x)) for t, x in articles])
        out[name]["article_ms"] = seconds / len(articles) * 1000
    print(f"{'':34} {'ms per ~600-word article':>25}")
    for name, r in out.items():
        print(f"{name:34} {r['article_ms']:25.2f}")
    before, now = out["hand-written (before)"], out["libraries + context rules (now)"]
    print(
        f"now vs before: texts/s {ratio(now['texts_per_s'], before['texts_per_s'])}, "
        f"18k words {ratio(now['long_text_s'], before['long_text_s'])} the time, "
        f"per article {ratio(now['article_ms'], before['article_ms'])} the time"
    )
    return out


# -- robots.txt --------------------------------------------------------------------------------------------

WILD = "User-agent: *\nDisallow: /*.pdf$\nDisallow: /private*\nAllow: /private/open\n"
ROBOTS_TABLE: list[tuple[str, str, bool]] = [
    # (robots.txt, path, allowed for Tonevakt) as Google's robots.txt specification and RFC 9309 read them
    ("User-agent: *\nDisallow: /privat/\n", "/privat/sak", False),
    ("User-agent: *\nDisallow: /privat/\n", "/nyheter/sak", True),
    (WILD, "/dokumenter/rapport.pdf", False),
    (WILD, "/dokumenter/rapport.pdf?side=2", True),
    (WILD, "/dokumenter/rapport.pdf.html", True),
    (WILD, "/private-notater", False),
    (WILD, "/private/open/sak", True),
    (WILD, "/nyheter", True),
    ("User-agent: *\nDisallow: /private\nAllow: /private/open\n", "/private/open/sak", True),
    ("User-agent: *\nAllow: /private/open\nDisallow: /private\n", "/private/open/sak", True),
    ("User-agent: *\nDisallow: /*?sort=\n", "/liste?sort=dato", False),
    ("User-agent: *\nDisallow: /*?sort=\n", "/liste", True),
    ("User-agent: *\nAllow: /$\nDisallow: /\n", "/", True),
    ("User-agent: *\nAllow: /$\nDisallow: /\n", "/side", False),
    ("User-agent: *\nAllow: /page\nDisallow: /*.html\n", "/page.html", False),
    ("User-agent: *\nAllow: /folder\nDisallow: /folder\n", "/folder/page", True),
    ("User-agent: *\nDisallow: /fish*.php\n", "/fishheads/catfish.php?parameters", False),
    ("User-agent: *\nDisallow: /fish*.php\n", "/Fish.PHP", True),
    ("User-agent: *\nDisallow:\n", "/alt", True),
    ("User-agent: *\nDisallow: /Admin\n", "/admin", True),
    ("User-agent: *\nDisallow: /\n\nUser-agent: Tonevakt\nDisallow: /admin\n", "/nyheter", True),
    ("User-agent: *\nDisallow: /\n\nUser-agent: Tonevakt\nDisallow: /admin\n", "/admin/x", False),
    ("User-agent: *\nDisallow: /søk\n", "/s%C3%B8k?q=helse", False),
]


def bench_robots(checks: int) -> dict[str, Any]:
    print(f"\n-- robots.txt: {len(ROBOTS_TABLE)} rules read as Google and RFC 9309 do; {checks:,} checks")
    impls: dict[str, tuple[Callable[[str], Any], Callable[[Any, str], bool]]] = {
        "urllib.robotparser (before)": (
            legacy.robots_parser,
            lambda p, u: legacy.robots_allowed(p, u, AGENT),
        ),
        "Protego (now)": (Protego.parse, lambda p, u: p.can_fetch(u, AGENT)),
    }
    out: dict[str, Any] = {}
    for name, (parse, allowed) in impls.items():
        wrong = [
            path
            for text, path, expected in ROBOTS_TABLE
            if allowed(parse(text), "http://example.no" + path) is not expected
        ]
        parsed = parse(WILD + "Disallow: /sok\nDisallow: /*?sort=\nAllow: /$\n" * 5)
        urls = [f"http://example.no/{p}" for p in ("nyheter/sak", "private/x", "a/b.pdf", "liste?sort=1")]
        urls *= checks // 4
        seconds = best_of(
            3, lambda parsed=parsed, allowed=allowed, urls=urls: [allowed(parsed, u) for u in urls]
        )
        out[name] = {
            "right": len(ROBOTS_TABLE) - len(wrong),
            "of": len(ROBOTS_TABLE),
            "wrong": wrong,
            "checks_per_s": checks / seconds,
        }
    for name, r in out.items():
        print(
            f"{name:30} right {r['right']:2d}/{r['of']}  {r['checks_per_s']:10,.0f} checks/s  "
            f"wrong: {', '.join(r['wrong']) or '-'}"
        )
    b, n = out["urllib.robotparser (before)"], out["Protego (now)"]
    print(f"Protego vs urllib.robotparser: checks/s {ratio(n['checks_per_s'], b['checks_per_s'])}")
    return out


# -- encodings ---------------------------------------------------------------------------------------------

TEXTS = [
    "Dårlig",
    "Å gå på Øya",
    "Svært fornøyd – «bra» oppfølging, 50 € spart på parkering.",
    "Ærlig talt: får ikke logget inn på HelsaMi, og ventetiden på å få svar er altfor lang.",
    "dato;tekst;vurdering\n01.11.2026;Sykepleierne på Øya var fantastiske, tusen takk!;5\n"
    "02.11.2026;Måtte vente i tre timer før noen så på meg. Ærlig talt for dårlig.;2\n",
]
ENCODINGS = ["utf-8", "utf-8-sig", "cp1252", "latin-1", "utf-16", "utf-16-le", "utf-16-be"]


def charset_normalizer_alone(data: bytes) -> str:
    best = from_bytes(data).best()
    return str(best) if best is not None else ""


def bench_encodings(size_mb: float) -> dict[str, Any]:
    impls: dict[str, Callable[[bytes], str]] = {
        "hand-written (before)": legacy.decode,
        "decode_unlabelled (now)": lambda b: decode_unlabelled(b).text,
        "charset-normalizer alone": charset_normalizer_alone,
    }
    cases = []
    for text in TEXTS:
        for enc in ENCODINGS:
            try:
                cases.append((text, enc, text.encode(enc)))
            except UnicodeEncodeError:
                continue  # – « » € are not in ISO-8859-1
    row = "01.11.2026;Sykepleierne på Øya var fantastiske, tusen takk! Ærlig talt;5\n"
    big = row * int(size_mb * 1_000_000 / len(row.encode()))
    print(f"\n-- encodings: {len(cases)} texts × encodings; speed on a {size_mb:g} MB CSV")
    out: dict[str, Any] = {}
    for name, f in impls.items():
        wrong = []
        for text, enc, data in cases:
            try:
                ok = f(data) == text
            except UnicodeDecodeError:
                ok = False
            if not ok:
                wrong.append(f"{text[:12]!r} {enc}")
        speeds = {}
        for enc in ("utf-8", "cp1252"):
            data = big.encode(enc)
            speeds[enc] = len(data) / 1e6 / best_of(3, lambda data=data, f=f: f(data))
        out[name] = {"right": len(cases) - len(wrong), "of": len(cases), "wrong": wrong, "mb_per_s": speeds}
    for name, r in out.items():
        s = r["mb_per_s"]
        print(
            f"{name:26} right {r['right']:2d}/{r['of']}  UTF-8 {s['utf-8']:8,.1f} MB/s  "
            f"Windows-1252 {s['cp1252']:6,.1f} MB/s  wrong: {'; '.join(r['wrong']) or '-'}"
        )
    return out


def main() -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--texts", type=int, default=2000, help="generated PII cases of each kind (default 2000)")
    args = p.parse_args()
    t_all = banner("hand-written code against maintained libraries", args.quick)
    print(f"random seed {SEED}")
    rng = random.Random(SEED)
    figures = {
        "seed": SEED,
        "pii": bench_pii(300 if args.quick else args.texts, 40 if args.quick else 200, rng),
        "robots": bench_robots(5_000 if args.quick else 50_000),
        "encodings": bench_encodings(1 if args.quick else 10),
    }
    footer(t_all)
    emit_json(args.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
