"""Weekly shares corrected for the model's known errors (issue 15): the estimator against simulations with a
known truth, its edge cases, Spearman against hand-computed values, and the weekly_shares view, report and
dashboard on a real DuckDB file."""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from tests.support.browser import CHROMIUM, NOT_INSTALLED, run_chromium
from tests.support.config import settings_in
from tests.support.seed import MODEL, NOW, SOURCES, WEEK, seed
from tonevakt import pipeline
from tonevakt.cli import main
from tonevakt.config import Settings
from tonevakt.errors import ModelError
from tonevakt.models import TONE_LABELS, Confusion, WeekCounts
from tonevakt.nlp.shares import estimate_shares, indomain_confusion
from tonevakt.stats import ranks, spearman
from tonevakt.storage import labels as lab
from tonevakt.storage import repository as repo
from tonevakt.storage import share_store
from tonevakt.storage.db import database

# A model like the shipped NoReC one on news: most negative documents come out neutral.
TRUE_CONFUSION = np.array([[0.35, 0.60, 0.05], [0.05, 0.85, 0.10], [0.02, 0.30, 0.68]])


def _simulate(rng: np.random.Generator, shares: np.ndarray, week_n: int, labelled_n: int):  # noqa: ANN202
    """A labelled set measured through TRUE_CONFUSION, and one week of stories labelled by the model."""
    truth = rng.multinomial(labelled_n, [0.5, 0.3, 0.2])
    counts = tuple(tuple(int(v) for v in rng.multinomial(truth[t], TRUE_CONFUSION[t])) for t in range(3))
    week_truth = rng.multinomial(week_n, shares)
    predicted = sum(rng.multinomial(week_truth[t], TRUE_CONFUSION[t]) for t in range(3))
    return Confusion(counts, "simulated"), tuple(int(v) for v in predicted)


def test_simulation_recovers_known_shares_within_the_interval_in_at_least_90_percent_of_runs() -> None:
    shares = np.array([0.60, 0.30, 0.10])
    runs = 200
    covered = Counter()
    counted_covered = 0
    for run in range(runs):
        rng = np.random.default_rng(10_000 + run)
        confusion, predicted = _simulate(rng, shares, week_n=150, labelled_n=300)
        est = estimate_shares(
            [WeekCounts("2026-W01", "media", predicted, (0, 0, 0))], confusion, replicates=400, seed=run
        )[0]
        for name, truth, triple in (
            ("negative", shares[0], est.negative),
            ("positive", shares[2], est.positive),
        ):
            covered[name] += triple[1] <= truth <= triple[2]
        counted_covered += abs(est.observed_negative - shares[0]) < 0.1
        assert est.corrected and est.labelled_n == confusion.n and est.n == 150
        assert math.isclose(est.negative[0] + est.neutral[0] + est.positive[0], 1.0, abs_tol=1e-9)
    print(
        f"\ncoverage of the 95 % interval over {runs} runs: negative {covered['negative'] / runs:.1%}, "
        f"positive {covered['positive'] / runs:.1%}; counting labels came within 0.10 of the true negative "
        f"share in {counted_covered / runs:.0%} of runs"
    )
    assert covered["negative"] >= 0.9 * runs
    assert covered["positive"] >= 0.9 * runs
    assert counted_covered == 0  # counting the model's labels is far off: about 0.27 where the truth is 0.60


def test_exact_fit_inside_the_simplex_is_the_inverse_of_the_confusion() -> None:
    # Counts that the confusion explains exactly: the estimate is the solution of C^T p = q, whatever the
    # prior pseudo-counts (large counts make them negligible).
    counts = np.round(TRUE_CONFUSION * 100_000).astype(int)
    confusion = Confusion(tuple(tuple(int(v) for v in r) for r in counts))
    truth = np.array([0.5, 0.3, 0.2])
    predicted = truth @ TRUE_CONFUSION * 10_000
    est = estimate_shares(
        [WeekCounts("2026-W02", "media", tuple(int(round(v)) for v in predicted), (0, 0, 0))],
        confusion,
        replicates=200,
    )[0]
    assert est.negative[0] == pytest.approx(0.5, abs=2e-3)
    assert est.neutral[0] == pytest.approx(0.3, abs=2e-3)
    assert est.positive[0] == pytest.approx(0.2, abs=2e-3)
    assert est.tone[0] == pytest.approx(-0.3, abs=4e-3)
    assert est.negative[1] < 0.5 < est.negative[2] and not est.misfit


def test_shares_stay_in_the_simplex_when_the_exact_fit_lies_outside() -> None:
    # Fewer negative labels than even a week without a single negative story would give: the exact solution has
    # a negative share below zero; the estimate stops at zero and the others still sum to one.
    confusion = Confusion(((350, 600, 50), (50, 850, 100), (20, 300, 680)))
    est = estimate_shares([WeekCounts("2026-W03", "union", (0, 40, 10), (0, 0, 0))], confusion)[0]
    for mid, low, high in (est.negative, est.neutral, est.positive):  # (estimate, ci_low, ci_high)
        assert 0.0 <= low <= mid <= high <= 1.0
    assert est.negative[0] == 0.0
    assert math.isclose(est.negative[0] + est.neutral[0] + est.positive[0], 1.0, abs_tol=1e-9)


def test_a_week_that_contradicts_the_confusion_is_flagged() -> None:
    confusion = Confusion(((350, 600, 50), (50, 850, 100), (20, 300, 680)))
    # 75 % negative labels where even an all-negative week would give 35 %
    (bad,) = estimate_shares([WeekCounts("2026-W04", "media", (30, 10, 0), (0, 0, 0))], confusion)
    (good,) = estimate_shares([WeekCounts("2026-W04", "media", (10, 28, 2), (0, 0, 0))], confusion)
    assert bad.misfit and bad.negative[0] == 1.0
    assert not good.misfit


def test_human_labels_count_as_given_and_without_a_confusion_the_shares_are_counted() -> None:
    cells = [WeekCounts("2026-W05", "patient", (2, 3, 5), (1, 0, 1))]
    (plain,) = estimate_shares(cells, None, replicates=300)
    assert not plain.corrected and plain.labelled_n == 0 and plain.n == 12 and plain.human_n == 2
    assert plain.negative[0] == pytest.approx(3 / 12) and plain.positive[0] == pytest.approx(6 / 12)
    assert plain.negative[0] == pytest.approx(plain.observed_negative)
    assert plain.negative[1] < plain.negative[0] < plain.negative[2]  # the week's sampling error alone
    # every story labelled by a human: nothing to correct, the confusion plays no part
    (all_human,) = estimate_shares(
        [WeekCounts("2026-W05", "patient", (0, 0, 0), (4, 4, 2))],
        Confusion(((350, 600, 50), (50, 850, 100), (20, 300, 680))),
        replicates=300,
    )
    assert all_human.negative[0] == pytest.approx(0.4) and all_human.positive[0] == pytest.approx(0.2)
    # an empty confusion is no confusion
    (empty,) = estimate_shares(cells, Confusion(((0, 0, 0), (0, 0, 0), (0, 0, 0))), replicates=300)
    assert not empty.corrected


def test_estimates_are_seeded_and_a_cell_does_not_depend_on_the_others() -> None:
    confusion = Confusion(((35, 60, 5), (5, 85, 10), (2, 30, 68)))
    a = WeekCounts("2026-W06", "media", (8, 30, 2), (0, 0, 0))
    b = WeekCounts("2026-W07", "media", (3, 20, 9), (1, 0, 0))
    alone = estimate_shares([a], confusion)
    both = estimate_shares([b, a], confusion)
    assert alone[0] == both[1] == estimate_shares([a], confusion)[0]
    assert estimate_shares([a], confusion, seed=99)[0].negative[1:] != alone[0].negative[1:]


def test_indomain_confusion_from_scorer_metadata() -> None:
    assert indomain_confusion({"model": "m"}) is None
    info = {
        "model": "m",
        "indomain_confusion": {
            "labels": ["positive", "negative", "neutral"],
            "counts": [[30, 1, 9], [2, 40, 18], [3, 4, 50]],
            "n": 157,
            "source": "5-fold CV",
        },
    }
    c = indomain_confusion(info)
    assert c is not None and c.source == "5-fold CV" and c.n == 157
    # reordered to negative, neutral, positive (rows truth, columns prediction)
    assert c.counts == ((40, 18, 2), (4, 50, 3), (1, 9, 30))
    assert c.agreed == 120
    bad = {
        "labels": ["negative", "neutral", "positive"],
        "counts": [[1, 2, 3], [4, 5, 6], [7, 8, 9]],
        "n": 44,
    }
    with pytest.raises(ModelError, match=r"m: indomain_confusion.n is 44 but its counts add up to 45"):
        indomain_confusion({"model": "m", "indomain_confusion": bad})
    with pytest.raises(ModelError, match=r"labels must be \['negative', 'neutral', 'positive'\]"):
        indomain_confusion(
            {"model": "m", "indomain_confusion": {"labels": ["neg", "neu", "pos"], "counts": []}}
        )
    with pytest.raises(ModelError, match="3×3 list of lists"):
        indomain_confusion(
            {"model": "m", "indomain_confusion": {"labels": list(TONE_LABELS), "counts": [[1, 2]]}}
        )
    with pytest.raises(ModelError, match="whole numbers of documents"):
        indomain_confusion(
            {
                "model": "m",
                "indomain_confusion": {
                    "labels": list(TONE_LABELS),
                    "counts": [[1, -2, 0], [0, 1, 0], [0, 0, 1]],
                },
            }
        )


# -- Spearman ---------------------------------------------------------------------------------------


def test_ranks_average_ties() -> None:
    assert ranks([10, 20, 20, 5, 20]).tolist() == [2.0, 4.0, 4.0, 1.0, 4.0]


def test_spearman_against_hand_computed_values() -> None:
    # No ties: rho = 1 - 6 Σd² / (n (n² - 1)); d = rank differences
    x = [1, 2, 3, 4, 5, 6, 7, 8]
    y = [2, 1, 4, 3, 6, 5, 8, 7]  # every neighbour pair swapped: Σd² = 8
    c = spearman(x, y)
    assert c.rho == pytest.approx(1 - 6 * 8 / (8 * 63))
    # Fisher z: tanh(atanh(rho) ± 1.96 · 1.06 / sqrt(n - 3))
    half = 1.959963984540054 * 1.06 / math.sqrt(5)
    assert c.ci_low == pytest.approx(math.tanh(math.atanh(c.rho) - half))
    assert c.ci_high == pytest.approx(math.tanh(math.atanh(c.rho) + half))
    # Ties: stars 1..5 with repeats against tones; ranks worked out by hand, then Pearson on them
    stars = [5, 5, 1, 3, 4, 1]  # ranks 5.5 5.5 1.5 3 4 1.5
    tones = [0.9, 0.2, -0.8, 0.1, 0.5, -0.1]  # ranks 6 4 1 3 5 2
    rs, rt = [5.5, 5.5, 1.5, 3, 4, 1.5], [6, 4, 1, 3, 5, 2]
    ms, mt = sum(rs) / 6, sum(rt) / 6
    cov = sum((a - ms) * (b - mt) for a, b in zip(rs, rt, strict=True))
    expected = cov / math.sqrt(sum((a - ms) ** 2 for a in rs) * sum((b - mt) ** 2 for b in rt))
    assert spearman(stars, tones).rho == pytest.approx(expected)
    assert spearman([1, 2], [2, 1]).rho is None
    assert spearman([3, 3, 3, 3], [1, 2, 3, 4]).rho is None


# -- on a real database ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("shares")
    settings = settings_in(tmp, sources=SOURCES)
    written = seed(settings)
    with database(settings.db_path) as db:
        share_store.save_confusion(db, MODEL, Confusion(((40, 50, 10), (5, 80, 15), (2, 20, 78)), "test set"))
    return settings, written


def test_weekly_shares_view_after_refresh(seeded: tuple[Settings, dict[str, Any]]) -> None:
    settings, written = seeded
    cells = pipeline.refresh_shares(settings)
    with database(settings.db_path) as db:
        shares = db.rows("SELECT * FROM weekly_shares ORDER BY week, voice")
        tone = {(r["week"], r["voice"]): r for r in db.rows("SELECT * FROM weekly_tone")}
    assert cells == len(shares) == len(tone)
    human = 1  # the seed's one human label, on a union statement scored by the model
    for r in shares:
        t = tone[(r["week"], r["voice"])]
        assert r["n"] == t["n"] and r["model"] == MODEL and r["corrected"]
        assert r["labelled_n"] == 300 + human
        assert r["counted_negative"] == pytest.approx(t["share_negative"])
        assert r["counted_positive"] == pytest.approx(t["share_positive"])
        for name in ("share_negative", "share_positive", "tone"):
            assert r[f"{name}_ci_low"] <= r[name] <= r[f"{name}_ci_high"]
        assert r["share_negative"] + r["share_neutral"] + r["share_positive"] == pytest.approx(1.0)
        assert r["tone"] == pytest.approx(r["share_positive"] - r["share_negative"])
    union = next(r for r in shares if r["week"] == WEEK and r["voice"] == "union")
    assert union["human_n"] == 1
    # nothing changed: nothing is estimated again; a new human label changes the confusion: every cell is redone,
    # and gives what a fresh estimate from scratch gives
    assert pipeline.refresh_shares(settings) == 0
    doc = next(
        d.id for d in written["docs"] if d.voice == "media" and d.relevant and d.title.endswith(" nr 5")
    )
    with database(settings.db_path) as db:
        repo.set_label(db, doc, "negative")
    assert pipeline.refresh_shares(settings) == cells
    with database(settings.db_path) as db:
        after = {(r["week"], r["voice"]): r for r in db.rows("SELECT * FROM weekly_shares")}
        labelled_n = after[(WEEK, "media")]["labelled_n"]
        db.execute("DELETE FROM share_estimates")
    pipeline.refresh_shares(settings)
    with database(settings.db_path) as db:
        fresh = {(r["week"], r["voice"]): r for r in db.rows("SELECT * FROM weekly_shares")}
        lab.undo_label(db)
    assert labelled_n == 300 + human + 1
    assert {k: r["share_negative_ci_low"] for k, r in fresh.items()} == {
        k: r["share_negative_ci_low"] for k, r in after.items()
    }
    assert pipeline.refresh_shares(settings) == cells  # the undo changes the confusion back
    assert {
        "week",
        "voice",
        "n",
        "share_negative",
        "share_negative_ci_low",
        "share_negative_ci_high",
        "share_positive",
        "share_positive_ci_low",
        "share_positive_ci_high",
        "labelled_n",
    } <= set(shares[0])


def test_report_and_dashboard_show_the_corrected_shares(
    seeded: tuple[Settings, dict[str, Any]], tmp_path: Path
) -> None:
    settings, _ = seeded
    res = CliRunner().invoke(
        main, ["--config", str(settings.file), "report", "--week", WEEK, "--out", str(tmp_path), "--no-pdf"]
    )
    assert res.exit_code == 0, res.output
    html = (tmp_path / WEEK / f"tonevakt-{WEEK}.html").read_text(encoding="utf-8")
    with database(settings.db_path) as db:
        row = db.rows("SELECT * FROM weekly_shares WHERE week = ? AND voice = 'patient'", [WEEK])[0]
        agreed = db.scalar(
            "SELECT count(*) FROM labels l JOIN scores s ON s.document_id = l.document_id "
            "AND s.model = ? WHERE s.label = l.label",
            [MODEL],
        )
        rated = db.fetchall(
            """SELECT d.rating, s.tone FROM documents d JOIN scores s ON s.document_id = d.id AND s.model = ?
               WHERE d.rating IS NOT NULL AND d.relevant""",
            [MODEL],
        )
    section = html[
        html.index('id="korrigerte-andeler"') : html.index(
            "</section>", html.index('id="korrigerte-andeler"')
        )
    ]
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", section)).replace("\u00a0", " ")
    pct = f"{round(row['share_negative'] * 100)} %"
    low, high = round(row["share_negative_ci_low"] * 100), round(row["share_negative_ci_high"] * 100)
    assert f"Pasienter 7 {pct} {low} til {high} %" in text
    assert "målt på 301 dokumenter med kjent tone" in text
    method = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html[html.index('id="metode"') :])).replace(
        "\u00a0", " "
    )
    assert "Korreksjonen bygger på 301 dokumenter med kjent tone: 300 fra modellens egen utprøving" in method
    assert "og 1 merket manuelt her" in method
    assert f"Modellen ga samme tone som fasiten for {40 + 80 + 78 + agreed} av dem" in method
    assert "tonevakt label --queue" in method and "Merket" in method and "Modellen enig" in method
    # Spearman over the report's 12 weeks (the seed's rated reviews all fall in them), computed here by hand
    rho = _spearman_by_hand([r[0] for r in rated], [r[1] for r in rated])
    rho_text = f"{rho:.2f}".replace(".", ",").replace("-", "\u2212")
    assert f"For {len(rated)} pasienttilbakemeldinger med stjerner" in method
    assert f"mellom stjerner og modellens tone {rho_text}" in method

    res = CliRunner().invoke(
        main, ["--config", str(settings.file), "dashboard", "--out", str(tmp_path / "dash")]
    )
    assert res.exit_code == 0, res.output
    page = (tmp_path / "dash" / "index.html").read_text(encoding="utf-8")
    block = json.loads(
        re.search(r'<script id="tonevakt-data" type="application/json">(.*?)</script>', page, re.S).group(1)
    )["shares"]
    assert block["corrected"] and block["labelled_n"] == 301
    assert {r["voice"] for r in block["rows"]} <= {"media", "union", "patient", "official"}
    assert "korrigert for modellens kjente feil" in page


def test_scoring_records_the_models_confusion_and_fills_the_view(make_settings: Any) -> None:
    """The pass: a scorer that publishes its in-domain confusion gets it stored, and the shares follow."""
    from tonevakt.nlp.sentiment import EMBEDDED_MODELS, FROZEN_HEAD_MODEL
    from tonevakt.pipeline import import_file

    counts = [[20, 25, 5], [3, 40, 7], [1, 9, 40]]

    def with_confusion(s: Any) -> Any:
        scorer = EMBEDDED_MODELS[FROZEN_HEAD_MODEL](s)
        scorer.model_id = "e5-with-confusion"
        plain = scorer.info
        scorer.info = lambda: {
            **plain(),
            "indomain_confusion": {  # type: ignore[method-assign]
                "labels": list(TONE_LABELS),
                "counts": counts,
                "n": 150,
                "source": "cross-validation",
            },
        }
        return scorer

    EMBEDDED_MODELS["e5-with-confusion"] = with_confusion
    try:
        settings = make_settings(sentiment={"backend": "embedded", "model": "e5-with-confusion"})
        feedback = Path(settings.base_dir) / "feedback.jsonl"
        rows = [
            {"text": t, "date": "2026-11-17"}
            for t in (
                "Helseplattformen er treg og full av feil.",
                "HelsaMi fungerer veldig bra, takk!",
                "Helseplattformen: møtet flyttes til tirsdag.",
            )
        ]
        feedback.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
        import_file(settings, feedback, "skjema", "patient")
        assert pipeline.score(settings) == 3
        with database(settings.db_path) as db:
            assert share_store.load_confusion(db, "e5-with-confusion") == Confusion(
                tuple(tuple(r) for r in counts), "cross-validation"
            )  # type: ignore[arg-type]
            (row,) = db.rows("SELECT * FROM weekly_shares")
        assert row["week"] == "2026-W47" and row["voice"] == "patient" and row["n"] == 3
        assert row["labelled_n"] == 150 and row["corrected"] and row["model"] == "e5-with-confusion"
    finally:
        del EMBEDDED_MODELS["e5-with-confusion"]


def _spearman_by_hand(xs: list[float], ys: list[float]) -> float:
    rx = [sum(1 for v in xs if v < x) + (sum(1 for v in xs if v == x) + 1) / 2 for x in xs]
    ry = [sum(1 for v in ys if v < y) + (sum(1 for v in ys if v == y) + 1) / 2 for y in ys]
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    return cov / math.sqrt(sum((a - mx) ** 2 for a in rx) * sum((b - my) ** 2 for b in ry))


def test_model_info_shows_stars_against_tone(make_settings: Any) -> None:
    from tonevakt import dates
    from tonevakt.pipeline import import_file

    settings = make_settings()
    day = dates.week_monday(
        dates.shift_week(dates.last_complete_week(), -1)
    ).isoformat()  # inside --weeks 2, not --weeks 1
    reviews = [
        ("Helseplattformen og HelsaMi er helt elendig, krasjer hele tiden.", 1),
        ("HelsaMi er treg og full av feil.", 2),
        ("HelsaMi virker, men er tungvint.", 3),
        ("Greit nok med HelsaMi.", 3),
        ("HelsaMi er bra, jeg finner prøvesvarene mine.", 4),
        ("Fantastisk app, HelsaMi gjør alt enklere!", 5),
        ("Veldig fornøyd med HelsaMi.", 5),
    ]
    f = Path(settings.base_dir) / "reviews.jsonl"
    f.write_text(
        "\n".join(json.dumps({"text": t, "stars": r, "date": day}, ensure_ascii=False) for t, r in reviews),
        encoding="utf-8",
    )
    import_file(settings, f, "appanmeldelser", "patient")
    assert pipeline.score(settings) == len(reviews)
    with database(settings.db_path) as db:
        pairs = db.fetchall("SELECT d.rating, s.tone FROM documents d JOIN scores s ON s.document_id = d.id")
    res = CliRunner().invoke(
        main, ["--config", str(settings.file), "model", "info", "--json", "--weeks", "2"]
    )
    assert res.exit_code == 0, res.output
    stars = json.loads(res.output)["stars_vs_tone"]
    expected = _spearman_by_hand([p[0] for p in pairs], [p[1] for p in pairs])
    assert stars["n"] == len(reviews) and stars["rho"] == pytest.approx(expected)
    assert stars["ci_low"] < stars["rho"] < stars["ci_high"]
    print(
        f"\nstars against the frozen model's tone on {len(reviews)} reviews: rho {stars['rho']:.2f} "
        f"({stars['ci_low']:.2f} to {stars['ci_high']:.2f})"
    )
    res = CliRunner().invoke(main, ["--config", str(settings.file), "model", "info", "--weeks", "2"])
    assert f"stars_vs_tone: Spearman {stars['rho']:.2f} (95 % interval" in res.output
    assert f"n = {len(reviews)} rated documents" in res.output
    # weeks without rated documents: n 0 and no coefficient, said plainly
    res = CliRunner().invoke(
        main, ["--config", str(settings.file), "model", "info", "--json", "--weeks", "1"]
    )
    old = json.loads(res.output)["stars_vs_tone"]
    assert old["n"] == 0 and old["rho"] is None


class _ShareCells(HTMLParser):
    """The corrected-shares table the dashboard's script built: (week, voice) -> (negative, positive)."""

    def __init__(self) -> None:
        super().__init__()
        self.week: str | None = None
        self.cells: dict[tuple[str, str], tuple[float, float]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "tr" and a.get("data-share-week"):
            self.week = a["data-share-week"]
        if tag == "td" and a.get("data-share-voice") and self.week:
            self.cells[(self.week, a["data-share-voice"] or "")] = (
                float(a["data-negative"] or "nan"),
                float(a["data-positive"] or "nan"),
            )


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason=NOT_INSTALLED)
def test_dashboard_block_renders_weekly_shares_in_headless_chromium(
    seeded: tuple[Settings, dict[str, Any]], tmp_path: Path
) -> None:
    from tonevakt.dates import weeks_ending
    from tonevakt.reports.dashboard import write_dashboard

    settings, _ = seeded
    pipeline.refresh_shares(settings)
    page = write_dashboard(settings, tmp_path / "dash", now=NOW)
    dom = run_chromium(["--virtual-time-budget=5000", "--dump-dom", page.resolve().as_uri()], tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "Uncaught" not in dom.stderr
    parsed = _ShareCells()
    parsed.feed(dom.stdout)
    with database(settings.db_path) as db:
        rows = db.rows(
            "SELECT * FROM weekly_shares WHERE week IN (SELECT unnest(?))", [weeks_ending(WEEK, 12)]
        )
    assert len(rows) == 48 and len(parsed.cells) == 48
    for r in rows:
        neg, pos = parsed.cells[(r["week"], r["voice"])]
        assert neg == pytest.approx(r["share_negative"], abs=1e-6)
        assert pos == pytest.approx(r["share_positive"], abs=1e-6)
