"""The correction on real labelled news (issue 15): on ../shared/data/helseplattformen_tone/dev.jsonl, the share of
negative documents counted from the configured model's labels and corrected for its known errors, each with
its 95 % interval, printed beside the truth.

The confusion is the model's own in-domain one (`scorer.info()["indomain_confusion"]`) when it publishes one,
else it is measured here on train.jsonl with the same model (disjoint from dev). Documents are scored as the
pipeline scores them (the passages that speak of Helseplattformen)."""

from __future__ import annotations

import json

import pytest

from tests.support.paths import REPO, TONE_DATA, needs_shared, shared_file
from tonevakt.config import load_config
from tonevakt.models import TONE_LABELS, Confusion, Document, WeekCounts
from tonevakt.nlp.sentiment import load_scorer
from tonevakt.nlp.sentiment.base import Scorer
from tonevakt.nlp.shares import estimate_shares, indomain_confusion


def _on_topic(name: str) -> list[tuple[Document, str]]:
    path = shared_file(TONE_DATA / name)
    out = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        r = json.loads(line)
        if r.get("on_topic") and r.get("tone"):
            doc = Document(
                source_id="dev",
                voice="media",
                title=r.get("title") or "",
                text=r["text"],
                url=r.get("url") or f"https://example.invalid/{name}/{i}",
            )
            out.append((doc, r["tone"]))
    return out


def _labels(scorer: Scorer, rows: list[tuple[Document, str]]) -> dict[str, str]:
    return {s.document_id: s.label for s in scorer.score_documents([d for d, _ in rows])}


@pytest.mark.slow
@needs_shared
def test_corrected_negative_share_on_dev_against_the_truth() -> None:
    dev = _on_topic("dev.jsonl")
    settings = load_config(REPO / "config.yaml")
    scorer = load_scorer(settings.sentiment)
    confusion = indomain_confusion(scorer.info())
    source = "the model's own in-domain confusion"
    if confusion is None:
        train = _on_topic("train.jsonl")
        predicted = _labels(scorer, train)
        confusion = Confusion.from_pairs([(gold, predicted[d.id]) for d, gold in train], "train.jsonl")
        source = f"measured on train.jsonl ({confusion.n} on-topic documents)"
    labels = _labels(scorer, dev)
    assert len(labels) == len(dev)
    counts = tuple(sum(1 for lab in labels.values() if lab == t) for t in TONE_LABELS)
    cell = [WeekCounts("dev", "media", counts, (0, 0, 0))]  # type: ignore[arg-type]
    (counted,) = estimate_shares(cell, None)
    (corrected,) = estimate_shares(cell, confusion)
    truth = sum(1 for _, gold in dev if gold == "negative") / len(dev)
    print(
        f"\n{scorer.model_id} on dev.jsonl (n {len(dev)} on-topic documents); confusion {source}: "
        f"{confusion.agreed} of {confusion.n} agreed"
    )
    print(f"  confusion (rows truth, columns model; negative, neutral, positive): {confusion.counts}")
    print(f"  model's labels on dev (negative, neutral, positive): {counts}")
    print(f"  share negative, truth:       {truth:.3f}")
    print(
        f"  counted (model's labels):    {counted.negative[0]:.3f} (95 % {counted.negative[1]:.3f}–{counted.negative[2]:.3f})"
    )
    print(
        f"  corrected for its confusion: {corrected.negative[0]:.3f} (95 % {corrected.negative[1]:.3f}–{corrected.negative[2]:.3f})"
    )
    print(
        f"  error: counted {counted.negative[0] - truth:+.3f}, corrected {corrected.negative[0] - truth:+.3f}"
    )
    assert corrected.corrected and corrected.labelled_n == confusion.n
    assert corrected.negative[1] <= truth <= corrected.negative[2]
    assert abs(corrected.negative[0] - truth) <= abs(counted.negative[0] - truth) + 0.02
