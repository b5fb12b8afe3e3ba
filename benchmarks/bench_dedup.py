"""Near-copy grouping (storage/stories.py) on thousands of short comments: near-identical and distinct.

A feedback export can hold thousands of nearly the same comment ("Får ikke logget inn i HelsaMi", a word or a
number changed). Before issue 16, every new comment was compared with every earlier one sharing an LSH bucket:
6,000 near-identical comments took 64 s. Now a bucket keeps one member per story, and each comment is compared
with at most a few members of a bounded number of stories. Prints seconds, comparisons per comment and stories.
"""

from __future__ import annotations

import random
import sys
from datetime import UTC, datetime

from common import banner, emit_json, footer, parser, timed

from tonevakt.models import Document
from tonevakt.storage import stories

COMPLAINT = (
    "Jeg får ikke logget inn i HelsaMi etter siste oppdatering, appen henger på innloggingen og "
    "viser bare en hvit side. Har prøvd å installere den på nytt flere ganger uten at det hjelper."
)


VOCABULARY = [f"ord{i}" for i in range(2000)]


def near_identical(n: int, rng: random.Random) -> list[str]:
    """The same complaint with one or two words changed and a number at the end."""
    words = COMPLAINT.split()
    out = []
    for i in range(n):
        w = list(words)
        for j in rng.sample(range(len(w)), 2):
            w[j] = rng.choice(["HelsaMi", "appen", "telefonen", "nettsiden", "i", "dag", "igjen", "fortsatt"])
        out.append(" ".join(w) + f" ({i})")
    return out


def distinct(n: int, rng: random.Random) -> list[str]:
    """Comments of three sentences from a pool of 300 (common phrasing, so many share a sentence and an LSH
    bucket), no two with the same three."""
    pool = [" ".join(rng.choices(VOCABULARY, k=rng.randint(6, 12))) + "." for _ in range(300)]
    seen: set[tuple[int, ...]] = set()
    out = []
    while len(out) < n:
        pick = tuple(rng.sample(range(len(pool)), 3))
        if pick not in seen:
            seen.add(pick)
            out.append(" ".join(pool[i] for i in pick))
    return out


def measure(texts: list[str]) -> dict[str, float]:
    now = datetime.now(UTC)
    docs = [
        Document(source_id="kommentarer", voice="patient", title="", text=t, published_at=now) for t in texts
    ]
    with timed() as t:
        stats = stories.assign_stories(docs, [])
    return {
        "documents": len(docs),
        "seconds": round(t[0], 2),
        "stories": len({d.story_id for d in docs}),
        "comparisons_per_document": round(stats.comparisons / len(docs), 1),
    }


def main() -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--docs", type=int, default=6000, help="comments per case (default 6000)")
    args = p.parse_args()
    n = 1000 if args.quick else args.docs
    t_all = banner("near-copy grouping", args.quick)
    rng = random.Random(16)
    results = {"near_identical": measure(near_identical(n, rng)), "distinct": measure(distinct(n, rng))}
    for name, r in results.items():
        print(
            f"{name}: {r['documents']:,} comments in {r['seconds']:.2f}s, {r['stories']:,} stories, "
            f"{r['comparisons_per_document']} comparisons per comment"
        )
    footer(t_all)
    emit_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
