"""Weekly shares corrected for the model's known errors (issue 15). Pure functions: counts in, estimates out.

Counting the model's labels inherits its bias: a model that calls most negative news neutral reports a small
share of negative stories whatever the news. If we know how the model labels documents whose true label is
known, P(predicted | true) (the confusion, measured on labelled in-domain documents), the labels it gives a
week's stories are a mixture: P(predicted = j) = sum over t of share[t] · P(j | t). We estimate the shares
by maximum likelihood under that mixture (adjusted classify-and-count, kept inside the simplex: every share
in [0, 1], summing to 1). Stories a human labelled count with
their human label and are not corrected.

The 95 % intervals are percentile bootstrap intervals that carry both uncertainties: each replicate draws the
week's stories again (Bayesian bootstrap: Dirichlet weights with half a pseudo-story per label, so that a small
week whose stories all got the same label is not mistaken for a certain one) and, independently, resamples the
labelled documents behind the confusion, and re-estimates. A small pseudo-count (`PRIOR`) per confusion cell keeps a class with few labelled documents
from breaking the solve; such a class then gets a wide interval, which is the honest answer.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Mapping, Sequence

import numpy as np

from tonevakt.errors import ModelError
from tonevakt.models import TONE_LABELS, Confusion, ShareEstimate, WeekCounts
from tonevakt.stats import percentile_interval

REPLICATES = 1000  # bootstrap replicates per week and voice
PRIOR = 0.5  # pseudo-documents added to every cell of the confusion before its rows are normalised
WEEK_PRIOR = 0.5  # pseudo-stories per label (human and model) when the week's stories are drawn again
SEED = 15
# Part of every cell's inputs key: raise it when the method changes, and every stored estimate is redone.
ESTIMATOR_VERSION = 2
MISFIT_G2 = 9.21  # chi-square's 99 % point with 2 degrees of freedom
_BISECT_STEPS = 50  # halvings of [0, 1] on an edge of the simplex: 1e-15


def indomain_confusion(info: Mapping[str, object]) -> Confusion | None:
    """The in-domain confusion a scorer publishes in `info()["indomain_confusion"]`, or None when it has none.

    Expected: {"labels": ["negative", "neutral", "positive"], "counts": [[..], [..], [..]] (rows: true label,
    columns: predicted; documents), "n": total, "source": "…"}. Labels in another order are reordered; anything
    else is a ModelError that names the problem."""
    raw = info.get("indomain_confusion")
    if raw is None:
        return None
    model = info.get("model", "the model")
    if not isinstance(raw, Mapping):
        raise ModelError(f"{model}: indomain_confusion must be a mapping, not {type(raw).__name__}")
    labels = raw.get("labels")
    counts = raw.get("counts")
    if not isinstance(labels, list | tuple) or sorted(map(str, labels)) != sorted(TONE_LABELS):
        raise ModelError(
            f"{model}: indomain_confusion.labels must be {list(TONE_LABELS)} in some order, not {labels!r}"
        )
    k = len(TONE_LABELS)
    if (
        not isinstance(counts, list | tuple)
        or len(counts) != k
        or any(not isinstance(r, list | tuple) or len(r) != k for r in counts)
    ):
        raise ModelError(f"{model}: indomain_confusion.counts must be a {k}×{k} list of lists")
    try:
        m = np.array(counts, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ModelError(f"{model}: indomain_confusion.counts must hold numbers: {e}") from e
    if (m < 0).any() or (m != np.round(m)).any():
        raise ModelError(f"{model}: indomain_confusion.counts must be whole numbers of documents, ≥ 0")
    order = [list(map(str, labels)).index(lab) for lab in TONE_LABELS]
    m = m[np.ix_(order, order)].astype(int)
    n = raw.get("n")
    if n is not None and int(n) != int(m.sum()):  # type: ignore[call-overload]
        raise ModelError(f"{model}: indomain_confusion.n is {n} but its counts add up to {int(m.sum())}")
    return Confusion(tuple(tuple(int(v) for v in row) for row in m), str(raw.get("source") or ""))  # type: ignore[arg-type]


def _row_normalised(counts: np.ndarray) -> np.ndarray:
    """P(predicted | true) from (..., 3, 3) counts plus the pseudo-count."""
    c = counts + PRIOR
    return c / c.sum(axis=-1, keepdims=True)


def _mixture_mle(q: np.ndarray, conf: np.ndarray) -> np.ndarray:
    """Shares p (M, 3) on the simplex maximising the likelihood of predicted-label counts q (M, 3) when
    P(predicted | true) is conf (M, 3, 3).

    The unconstrained solution of conf^T p = q/|q| fits the counts exactly, so when it lies inside the simplex
    it is the answer. Otherwise (the likelihood is concave) the answer lies on an edge of the simplex: each
    edge is a one-dimensional concave problem, solved by bisection on its derivative, and the best edge wins."""
    m, k = q.shape
    total = q.sum(axis=1)
    p = np.full((m, k), 1.0 / k)
    has = total > 0
    if not has.any():
        return p
    idx = np.flatnonzero(has)
    qh, ch = q[idx], conf[idx]
    freq = qh / total[idx, None]
    try:
        p0 = np.linalg.solve(np.swapaxes(ch, 1, 2), freq[..., None])[..., 0]
    except np.linalg.LinAlgError:  # a singular confusion: every row goes to the edges
        p0 = np.full_like(freq, -1.0)
    inside = (p0 >= -1e-12).all(axis=1)
    p0 = np.clip(p0, 0.0, None)
    p[idx[inside]] = p0[inside] / p0[inside].sum(axis=1, keepdims=True)
    out = ~inside
    if out.any():
        p[idx[out]] = _best_edge(qh[out], ch[out])
    return p


def _loglik(q: np.ndarray, conf: np.ndarray, p: np.ndarray) -> np.ndarray:
    mix = np.einsum("mt,mtj->mj", p, conf)
    return (q * np.log(np.maximum(mix, 1e-300))).sum(axis=1)


def _best_edge(q: np.ndarray, conf: np.ndarray) -> np.ndarray:
    """The likelihood's maximum on the boundary of the simplex (for rows whose exact fit lies outside it)."""
    m, k = q.shape
    best = np.zeros((m, k))
    best_ll = np.full(m, -np.inf)
    for a in range(k):
        for b in range(a + 1, k):
            diff = conf[:, a, :] - conf[:, b, :]

            def slope(x: np.ndarray, diff: np.ndarray = diff, b: int = b) -> np.ndarray:
                mix = x[:, None] * diff + conf[:, b, :]
                return (q * diff / np.maximum(mix, 1e-300)).sum(axis=1)

            lo, hi = np.zeros(m), np.ones(m)
            for _ in range(_BISECT_STEPS):
                mid = (lo + hi) / 2
                up = slope(mid) > 0
                lo = np.where(up, mid, lo)
                hi = np.where(up, hi, mid)
            x = (lo + hi) / 2
            cand = np.zeros((m, k))
            cand[:, a], cand[:, b] = x, 1.0 - x
            ll = _loglik(q, conf, cand)
            better = ll > best_ll
            best[better], best_ll[better] = cand[better], ll[better]
    return best


def inputs_key(
    cell: WeekCounts, confusion: Confusion | None, replicates: int = REPLICATES, seed: int = SEED
) -> str:
    """Everything a cell's estimate depends on, hashed: a stored estimate with the same key is still right."""
    used = confusion.counts if confusion is not None and confusion.n > 0 else None
    raw = json.dumps(
        [
            ESTIMATOR_VERSION,
            PRIOR,
            WEEK_PRIOR,
            MISFIT_G2,
            replicates,
            seed,
            cell.week,
            cell.voice,
            cell.model,
            cell.human,
            used,
        ]
    )
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def _cell_seed(seed: int, week: str, voice: str) -> int:
    """A cell's own random stream: its interval does not change when other weeks are added."""
    return seed * 1_000_003 + zlib.crc32(f"{week}|{voice}".encode())


def estimate_shares(
    cells: Sequence[WeekCounts],
    confusion: Confusion | None,
    replicates: int = REPLICATES,
    seed: int = SEED,
) -> list[ShareEstimate]:
    """Corrected shares with 95 % intervals for each (week, voice) cell.

    Without a confusion (`None`, or no labelled documents) the shares are the counted ones, with intervals
    from resampling the week's stories only, and `corrected` is False."""
    k = len(TONE_LABELS)
    use = confusion is not None and confusion.n > 0
    rng = np.random.default_rng(seed)
    if use:
        assert confusion is not None
        counts = np.array(confusion.counts, dtype=np.float64)
        flat = counts.ravel() / counts.sum()
        conf_point = _row_normalised(counts)
        conf_boot = _row_normalised(
            rng.multinomial(confusion.n, flat, size=replicates).reshape(replicates, k, k).astype(np.float64)
        )
    else:
        conf_point = np.eye(k)
        conf_boot = np.broadcast_to(np.eye(k), (replicates, k, k))
    out = []
    for cell in cells:
        model = np.array(cell.model, dtype=np.float64)
        human = np.array(cell.human, dtype=np.float64)
        n = int(model.sum() + human.sum())
        if n == 0:
            continue
        point = _shares(model[None], human[None], conf_point[None])[0]
        misfit = use and _misfit(model, conf_point)
        cell_rng = np.random.default_rng(_cell_seed(seed, cell.week, cell.voice))
        # The week's stories drawn again: a Bayesian bootstrap with Jeffreys' half a story per label (Dirichlet
        # weights), so that a week whose few stories all got one label still gets an interval, not a point.
        draws = n * cell_rng.dirichlet(np.r_[human, model] + WEEK_PRIOR, size=replicates)
        boot = _shares(draws[:, k:], draws[:, :k], conf_boot)
        tone_boot = boot[:, 2] - boot[:, 0]
        low, high = percentile_interval(np.c_[boot, tone_boot], axis=0)
        est = np.r_[point, point[2] - point[0]]
        low, high = np.minimum(low, est), np.maximum(high, est)
        est, low, high = (np.round(a, 12) + 0.0 for a in (est, low, high))  # no 0.9999999999999996 or -0.0
        triple = [(float(est[i]), float(low[i]), float(high[i])) for i in range(k + 1)]
        out.append(
            ShareEstimate(
                week=cell.week,
                voice=cell.voice,
                n=n,
                human_n=int(human.sum()),
                negative=triple[0],
                neutral=triple[1],
                positive=triple[2],
                tone=triple[3],
                observed_negative=float((model[0] + human[0]) / n),
                observed_positive=float((model[2] + human[2]) / n),
                labelled_n=confusion.n if use and confusion is not None else 0,
                corrected=use,
                misfit=misfit,
                inputs_key=inputs_key(cell, confusion, replicates, seed),
            )
        )
    return out


def _misfit(model: np.ndarray, conf: np.ndarray) -> bool:
    """Do the model's labels this week contradict its measured confusion? The likelihood-ratio statistic G²
    of the observed labels against the best fit the confusion allows, beyond chi-square's 99 % point with 2
    degrees of freedom (for example: far more negative labels than even a week of only negative stories
    would give). Such a week's correction is unreliable in a way its interval does not show."""
    total = model.sum()
    if total == 0:
        return False
    p = _mixture_mle(model[None], conf[None])[0]
    fitted = total * (p @ conf)
    seen = model > 0
    g2 = 2.0 * float((model[seen] * np.log(model[seen] / np.maximum(fitted[seen], 1e-300))).sum())
    return g2 > MISFIT_G2


def _shares(model: np.ndarray, human: np.ndarray, conf: np.ndarray) -> np.ndarray:
    """(M, 3) shares of all stories: human-labelled ones as labelled, the model's corrected."""
    m = model.sum(axis=1, keepdims=True)
    n = m + human.sum(axis=1, keepdims=True)
    corrected = _mixture_mle(model, np.broadcast_to(conf, (model.shape[0], *conf.shape[-2:])))
    return (human + m * corrected) / np.where(n > 0, n, 1.0)
