"""Social impact, the arithmetic (slides 114-125): four small simulations, each with the number that
makes its point.

* the prosecutor's fallacy (slide 114): P(A | B) and P(B | A) are different numbers;
* prediction is not action (slide 118): the threshold that minimises expected cost is set by the
  costs, not by 0.5, and changing the action changes the cost more than a better classifier would;
* spurious correlations (slides 121-123): with many features and few instances some feature always
  correlates with a random label; more instances shrink it, and held-out data exposes it;
* causal graphs (slides 124-125): the same correlation between A and B arises from a common cause,
  from a path through C, or from a direct effect; conditioning on C removes it in the first two only.

Every number is a seeded simulation (numpy), so the figures need no data and no training.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..reports.impact import plot_causal_graphs, plot_decision_costs, plot_prosecutor, plot_spurious
from .core import Conditions, Context, lecture_figure


def _rng(ctx: Context, offset: int) -> np.random.Generator:
    return np.random.default_rng(ctx.seed * 1000 + offset)


# ----------------------------------------------------------------------------------- slide 114

# Illustrative base rates: a group whose members use drugs only slightly more often than the rest
# (the lecture's order of magnitude: about 9 in 100), and the basketball example of the same slide.
GROUP_SHARE, USE_IN_GROUP, USE_OUTSIDE = 0.13, 0.09, 0.08
PRO_RATE, TALL_IF_PRO, TALL_IF_NOT_PRO = 4e-5, 0.98, 0.03


def prosecutor_numbers(population: int, rng: np.random.Generator) -> dict[str, float]:
    """Simulated conditional frequencies of one population, and P(pro | tall) by Bayes' rule."""
    in_group = rng.random(population) < GROUP_SHARE
    uses = rng.random(population) < np.where(in_group, USE_IN_GROUP, USE_OUTSIDE)
    pro = rng.random(population) < PRO_RATE
    tall = rng.random(population) < np.where(pro, TALL_IF_PRO, TALL_IF_NOT_PRO)
    bayes = TALL_IF_PRO * PRO_RATE / (TALL_IF_PRO * PRO_RATE + TALL_IF_NOT_PRO * (1 - PRO_RATE))
    return {"population": population,
            "p_use_given_group": float(uses[in_group].mean()), "p_use_given_other": float(uses[~in_group].mean()),
            "p_innocent_given_group": float(1 - uses[in_group].mean()),
            "p_group_given_use": float(in_group[uses].mean()),
            "pros": int(pro.sum()), "tall": int(tall.sum()), "p_tall_given_pro": float(tall[pro].mean()),
            "p_pro_given_tall": float(pro[tall].mean()), "p_pro_given_tall_bayes": bayes}


def _check_prosecutor(n: dict[str, Any], budget: str) -> Conditions:
    gap = n["p_use_given_group"] - n["p_use_given_other"]
    ratio = n["p_tall_given_pro"] / max(n["p_pro_given_tall"], 1e-12)
    bayes = n["p_pro_given_tall_bayes"]
    # a frequency over the tall: its standard error under Bayes' value
    se = math.sqrt(bayes * (1 - bayes) / n["tall"])
    return [(f"group membership 'works' as a predictor: P(use | group) {n['p_use_given_group']:.3f} > "
             f"P(use | rest) {n['p_use_given_other']:.3f}", gap > 0),
            (f"yet stopping the whole group stops mostly innocent people: P(no use | group) "
             f"{n['p_innocent_given_group']:.3f} >= 0.9", n["p_innocent_given_group"] >= 0.9),
            (f"the inverse conditionals differ by far: P(tall | pro) {n['p_tall_given_pro']:.3f} >= 0.9 while "
             f"P(pro | tall) {n['p_pro_given_tall']:.5f} is {ratio:.0f} times smaller (>= 100)",
             n["p_tall_given_pro"] >= 0.9 and ratio >= 100),
            (f"the simulated P(pro | tall) {n['p_pro_given_tall']:.5f} agrees with Bayes' rule ({bayes:.5f}) within "
             f"3 standard errors ({3 * se:.5f})", abs(n["p_pro_given_tall"] - bayes) <= 3 * se)]


@lecture_figure("prosecutors-fallacy", slides="114",
                claim="The chance of A given B is not the chance of B given A: a trait almost every professional basketball player has (being tall) "
                      "points to a professional in about one tall person in a thousand, and a group that uses drugs "
                      "slightly more often than the rest is still over 90 % non-users.",
                check=_check_prosecutor)
def prosecutors_fallacy(ctx: Context) -> dict[str, Any]:
    numbers = prosecutor_numbers(ctx.pick(10_000_000, 20_000_000), _rng(ctx, 114))
    path = plot_prosecutor(numbers, ctx.out / "prosecutors-fallacy.png")
    return {"paths": [str(path)], **numbers}


# ----------------------------------------------------------------------------------- slide 118

# Spam filtering with a calibrated classifier: the score is the true posterior P(spam | x).
SPAM_RATE = 0.4
COSTS = {"delete": {"false_positive": 10.0, "false_negative": 1.0},  # deleting a real mail is expensive
         "junk folder": {"false_positive": 1.0, "false_negative": 1.0}}  # a mail in the junk folder is found again


def decision_numbers(emails: int, rng: np.random.Generator, *, separation: float = 2.0) -> dict[str, Any]:
    """Expected cost per email of acting when P(spam | x) > t, for t on a grid, for two systems
    around the same classifier; the scores are exact posteriors of a two-Gaussian feature."""
    spam = rng.random(emails) < SPAM_RATE
    x = rng.normal(np.where(spam, separation / 2, -separation / 2), 1.0)
    # the posterior of N(+s/2, 1) vs N(-s/2, 1) with prior SPAM_RATE: a logistic function of x
    score = 1 / (1 + np.exp(-(separation * x + math.log(SPAM_RATE / (1 - SPAM_RATE)))))
    thresholds = np.linspace(0.01, 0.99, 99)
    act = score[None, :] > thresholds[:, None]  # (T, N)
    fp = (act & ~spam).mean(1)
    fn = (~act & spam).mean(1)
    out: dict[str, Any] = {"thresholds": thresholds, "accuracy": 1 - fp - fn}
    for system, c in COSTS.items():
        cost = c["false_positive"] * fp + c["false_negative"] * fn
        best = int(np.argmin(cost))
        at_half = int(np.argmin(np.abs(thresholds - 0.5)))
        out[f"{system}/cost"] = cost
        out[f"{system}/bayes_threshold"] = c["false_positive"] / (c["false_positive"] + c["false_negative"])
        out[f"{system}/best_threshold"] = float(thresholds[best])
        out[f"{system}/cost_at_best"] = float(cost[best])
        out[f"{system}/cost_at_half"] = float(cost[at_half])
        out[f"{system}/accuracy_at_best"] = float(out["accuracy"][best])
    out["accuracy_at_half"] = float(out["accuracy"][int(np.argmin(np.abs(thresholds - 0.5)))])
    return out


def _check_decision(n: dict[str, Any], budget: str) -> Conditions:
    d = "delete"
    saving = 1 - n[f"{d}/cost_at_best"] / n[f"{d}/cost_at_half"]
    return [(f"deleting spam: the cheapest threshold {n[f'{d}/best_threshold']:.2f} is the one the costs give, "
             f"10 / (10 + 1) = {n[f'{d}/bayes_threshold']:.2f} (within 0.05), not 0.5",
             abs(n[f"{d}/best_threshold"] - n[f"{d}/bayes_threshold"]) <= 0.05),
            (f"it costs {saving:.0%} less per email than the 0.5 threshold ({n[f'{d}/cost_at_best']:.3f} vs "
             f"{n[f'{d}/cost_at_half']:.3f}; >= 20 %)", saving >= 0.2),
            (f"while the 0.5 threshold is the more accurate one ({n['accuracy_at_half']:.3f} > "
             f"{n[f'{d}/accuracy_at_best']:.3f}): the best prediction is not the best action",
             n["accuracy_at_half"] > n[f"{d}/accuracy_at_best"]),
            (f"changing the action beats tuning the threshold: a junk folder costs {n['junk folder/cost_at_best']:.3f} "
             f"per email, less than deleting at its best ({n[f'{d}/cost_at_best']:.3f})",
             n["junk folder/cost_at_best"] < n[f"{d}/cost_at_best"])]


@lecture_figure("decision-cost", slides="118",
                claim="A calibrated spam score does not say what to do: when deleting a real mail costs ten times "
                      "more than letting spam through, the cheapest rule deletes only above P(spam) = 10/11, and "
                      "a junk folder, a different action on the same score, is cheaper still.",
                check=_check_decision)
def decision_cost(ctx: Context) -> dict[str, Any]:
    numbers = decision_numbers(ctx.pick(100_000, 400_000), _rng(ctx, 118))
    path = plot_decision_costs(numbers, list(COSTS), ctx.out / "decision-cost.png")
    # the curves are in the picture; the page lists the scalar numbers
    return {"paths": [str(path)], **{k: v for k, v in numbers.items() if not isinstance(v, np.ndarray)}}


# ----------------------------------------------------------------------------------- slides 121-123

def max_chance_correlation(instances: int, features: int, repeats: int, rng: np.random.Generator) -> tuple[float, float]:
    """Mean and standard error over ``repeats`` of the largest |Pearson r| between a random label and
    ``features`` independent random features, all over ``instances`` rows."""
    best = np.empty(repeats)
    for r in range(repeats):  # one (n, d) matrix at a time keeps the memory at n * d
        x = rng.standard_normal((instances, features))
        y = rng.standard_normal(instances)
        x = (x - x.mean(0)) / x.std(0)
        y = (y - y.mean()) / y.std()
        best[r] = np.abs(x.T @ y / instances).max()
    return float(best.mean()), float(best.std(ddof=1) / math.sqrt(repeats))


def spurious_numbers(rng: np.random.Generator, *, repeats: int, fixed_instances: int = 20, fixed_features: int = 1000,
                     widths: tuple[int, ...] = (1, 10, 100, 1000, 10000),
                     heights: tuple[int, ...] = (10, 20, 50, 100, 500, 2000), held_out: int = 10000) -> dict[str, Any]:
    wide = [max_chance_correlation(fixed_instances, d, repeats, rng) for d in widths]
    tall = [max_chance_correlation(n, fixed_features, repeats, rng) for n in heights]
    # the best of 1,000 features over 20 instances, then the same feature on fresh instances
    x = rng.standard_normal((fixed_instances, fixed_features))
    y = rng.standard_normal(fixed_instances)
    r_train = np.corrcoef(np.column_stack([x, y]), rowvar=False)[-1, :-1]
    best = int(np.argmax(np.abs(r_train)))
    x_new, y_new = rng.standard_normal(held_out), rng.standard_normal(held_out)  # the chosen feature is noise
    return {"fixed_instances": fixed_instances, "fixed_features": fixed_features, "repeats": repeats,
            "widths": list(widths), "max_r_by_width": [m for m, _ in wide], "se_by_width": [s for _, s in wide],
            "heights": list(heights), "max_r_by_height": [m for m, _ in tall], "se_by_height": [s for _, s in tall],
            "best_feature_train_r": float(r_train[best]), "held_out": held_out,
            "best_feature_held_out_r": float(np.corrcoef(x_new, y_new)[0, 1])}


def _check_spurious(n: dict[str, Any], budget: str) -> Conditions:
    by_width, by_height = n["max_r_by_width"], n["max_r_by_height"]
    noise = 3 / math.sqrt(n["held_out"])
    return [(f"wider data, larger chance correlation: the best |r| over {n['fixed_instances']} instances grows "
             f"with the number of features ({', '.join(f'{v:.2f}' for v in by_width)})",
             all(a < b for a, b in zip(by_width, by_width[1:]))),
            (f"with {n['widths'][-1]} features some feature correlates with the random label at |r| = "
             f"{by_width[-1]:.2f} (>= 0.6)", by_width[-1] >= 0.6),
            (f"taller data, smaller chance correlation: over {n['fixed_features']} features it shrinks with the "
             f"number of instances ({', '.join(f'{v:.2f}' for v in by_height)})",
             all(a > b for a, b in zip(by_height, by_height[1:]))),
            (f"the best training feature (r = {n['best_feature_train_r']:+.2f}) has r = "
             f"{n['best_feature_held_out_r']:+.3f} on {n['held_out']} fresh instances (|r| < {noise:.3f}, "
             "3 standard errors of zero): the correlation was spurious",
             abs(n["best_feature_held_out_r"]) < noise and abs(n["best_feature_train_r"]) >= 0.5)]


@lecture_figure("spurious-correlations", slides="121-123",
                claim="Among many random features some always correlates with a random label: the largest chance "
                      "correlation grows with the number of features, shrinks with the number of instances, and "
                      "vanishes on held-out data.",
                check=_check_spurious)
def spurious_correlations(ctx: Context) -> dict[str, Any]:
    numbers = spurious_numbers(_rng(ctx, 121), repeats=ctx.pick(20, 200))
    path = plot_spurious(numbers, ctx.out / "spurious-correlations.png")
    return {"paths": [str(path)], **numbers}


# ----------------------------------------------------------------------------------- slides 124-125

def _gap(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """P(B | A) - P(B | not A) and its standard error."""
    p1, p0 = b[a].mean(), b[~a].mean()
    return float(p1 - p0), float(math.sqrt(p1 * (1 - p1) / a.sum() + p0 * (1 - p0) / (~a).sum()))


def _stratified_gap(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> tuple[float, float]:
    """The A-B gap within each value of C, averaged with weights P(C = c), and its standard error."""
    gaps = [(_gap(a[c == v], b[c == v]), float((c == v).mean())) for v in (False, True)]
    return (sum(w * g for (g, _), w in gaps), math.sqrt(sum((w * s) ** 2 for (_, s), w in gaps)))


def causal_numbers(people: int, rng: np.random.Generator) -> dict[str, float]:
    """Three binary worlds with a correlation between A (group) and B (drug use) and a third variable C
    (poverty): C causes both (confounder), A causes C causes B (slide 125, bottom), or A causes B
    directly and C is an independent second cause (slide 125, top)."""
    def bern(p: Any) -> np.ndarray:
        return rng.random(people) < p

    worlds = {}
    c = bern(0.2)
    worlds["confounder"] = (bern(np.where(c, 0.35, 0.10)), bern(np.where(c, 0.16, 0.07)), c)
    a = bern(0.13)
    c = bern(np.where(a, 0.35, 0.12))
    worlds["through C"] = (a, bern(np.where(c, 0.16, 0.07)), c)
    a, c = bern(0.13), bern(0.15)
    worlds["direct"] = (a, bern(np.where(a, 0.10, 0.08) + np.where(c, 0.05, 0.0)), c)
    out: dict[str, float] = {"people": people}
    for name, (a, b, c) in worlds.items():
        (g, s), (gc, sc) = _gap(a, b), _stratified_gap(a, b, c)
        out.update({f"{name}/gap": g, f"{name}/gap_se": s, f"{name}/gap_given_c": gc, f"{name}/gap_given_c_se": sc})
    return out


def _check_causal(n: dict[str, Any], budget: str) -> Conditions:
    out = []
    for name in ("confounder", "through C", "direct"):
        g, s = n[f"{name}/gap"], n[f"{name}/gap_se"]
        out.append((f"{name}: A and B are correlated, P(B | A) - P(B | not A) = {g:+.4f} (> 5 standard errors, "
                    f"{5 * s:.4f})", g > 5 * s))
    for name in ("confounder", "through C"):
        gc, sc = n[f"{name}/gap_given_c"], n[f"{name}/gap_given_c_se"]
        out.append((f"{name}: within each value of C the gap is {gc:+.4f}, within 3 standard errors ({3 * sc:.4f}) of 0",
                    abs(gc) <= 3 * sc))
    gc, sc = n["direct/gap_given_c"], n["direct/gap_given_c_se"]
    out.append((f"direct: conditioning on C leaves the gap ({gc:+.4f} > 5 standard errors, {5 * sc:.4f}): "
                "only a path through C is cut by it", gc > 5 * sc))
    return out


@lecture_figure("causal-graphs", slides="125",
                claim="A correlation between group and drug use can come from a common cause, from a path through "
                      "poverty, or from a direct effect; conditioning on poverty removes it in the first two worlds "
                      "and not in the third, so the data can tell the causal stories apart.",
                check=_check_causal)
def causal_graphs(ctx: Context) -> dict[str, Any]:
    numbers = causal_numbers(ctx.pick(400_000, 4_000_000), _rng(ctx, 125))
    path = plot_causal_graphs(numbers, ctx.out / "causal-graphs.png")
    return {"paths": [str(path)], **numbers}
