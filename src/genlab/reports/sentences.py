"""Interpolating between sentences with a sentence autoencoder or VAE, judged by an independent ruler.

The ruler is an interpolated Kneser-Ney trigram language model (Kneser & Ney 1995; Chen & Goodman
1998, discount 0.75) fitted to held-out text that neither network trained on. Its per-token perplexity
alone cannot judge decodes: a greedy decoder strings together frequent words, whose perplexity is low
in any order ("he was to the" scores far better than a real sentence with one rare noun). The score is
therefore SLOR (Lau, Clark & Lappin 2017, "Grammaticality, Acceptability, and Probability"): the
trigram log-probability minus the unigram log-probability of the same words, per token, which takes the
words' frequency out and leaves how well they fit together. A decode is *well-formed* when it is not
empty and its SLOR is at least the 5th percentile of the SLORs of real held-out sentences (a separate
held-out set from the one the ruler was fitted to): "ordered as well as 95 % of real sentences",
calibrated on real text rather than on a fixed number. Perplexities are reported beside it.

:func:`interpolation_study` decodes the points between the codes of held-out sentence pairs and returns
the share of intermediate decodes that are well-formed, the share that are verbatim training sentences
(a decoder that only recalls memorised sentences would also look fluent), and the endpoints'
reconstruction rate; :func:`interpolation_figure` draws a few pairs for two models side by side.
"""
from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor

from ..viz import _pyplot, save_figure

_BOS, _EOS = "<s>", "</s>"


class KneserNeyTrigram:
    """Interpolated Kneser-Ney trigram model over whitespace-split sentences. Counting and scoring walk
    Python dicts: it scores a few thousand short sentences in well under a second, and this is a ruler
    applied once per figure, not a training path."""

    def __init__(self, sentences: Sequence[str], *, discount: float = 0.75) -> None:
        if not sentences:
            raise ValueError("a language model needs at least one sentence")
        self.discount = discount
        trigrams: Counter[tuple[str, str, str]] = Counter()
        for sentence in sentences:
            words = [_BOS, _BOS, *sentence.split(), _EOS]
            trigrams.update(zip(words, words[1:], words[2:]))
        self.trigram = trigrams
        self.context = Counter()  # c(u v .)
        self.context_types = Counter()  # N1+(u v .)
        bigram_cont: Counter[tuple[str, str]] = Counter()  # N1+(. v w): distinct u before (v, w)
        for (u, v, w), c in trigrams.items():
            self.context[(u, v)] += c
            self.context_types[(u, v)] += 1
            bigram_cont[(v, w)] += 1
        self.bigram_cont = bigram_cont
        self.middle = Counter()  # N1+(. v .)
        self.middle_types = Counter()  # N1+(v .) among continuation bigrams
        unigram_cont: Counter[str] = Counter()  # N1+(. w)
        for (v, w), c in bigram_cont.items():
            self.middle[v] += c
            self.middle_types[v] += 1
            unigram_cont[w] += 1
        self.unigram_cont = unigram_cont
        self.unigram_total = sum(unigram_cont.values())
        self.types = len(unigram_cont) + 1  # + one unseen word
        # plain frequencies (add-one) of words and the end of sentence: the reference that SLOR subtracts
        self.frequency = Counter(w for sentence in sentences for w in [*sentence.split(), _EOS])
        self.frequency_total = sum(self.frequency.values())

    def _unigram(self, w: str) -> float:
        # add-one on continuation counts: an unseen word keeps a small, nonzero probability
        return (self.unigram_cont.get(w, 0) + 1) / (self.unigram_total + self.types)

    def _bigram(self, v: str, w: str) -> float:
        n = self.middle.get(v, 0)
        if n == 0:
            return self._unigram(w)
        d = self.discount
        return (max(self.bigram_cont.get((v, w), 0) - d, 0.0) + d * self.middle_types[v] * self._unigram(w)) / n

    def prob(self, u: str, v: str, w: str) -> float:
        n = self.context.get((u, v), 0)
        if n == 0:
            return self._bigram(v, w)
        d = self.discount
        return (max(self.trigram.get((u, v, w), 0) - d, 0.0) + d * self.context_types[(u, v)] * self._bigram(v, w)) / n

    def log_prob(self, sentence: str) -> tuple[float, int]:
        """(log-probability of the words and the end of sentence, their number)."""
        words = [_BOS, _BOS, *sentence.split(), _EOS]
        return sum(math.log(self.prob(u, v, w)) for u, v, w in zip(words, words[1:], words[2:])), len(words) - 2

    def perplexity(self, sentence: str) -> float:
        """exp of the mean negative log-probability per token (the words and the end of sentence)."""
        logp, n = self.log_prob(sentence)
        return math.exp(-logp / n)

    def slor(self, sentence: str) -> float:
        """(log p_trigram - log p_unigram) per token: how much better the word order is than the words'
        frequencies alone predict (Lau et al. 2017): the mean of :meth:`token_slors`."""
        tokens = self.token_slors(sentence)
        return sum(tokens) / len(tokens)

    def token_slors(self, sentence: str) -> list[float]:
        """Per token (the words and the end of sentence): log p_trigram(w | u v) - log p_unigram(w), how much
        likelier the word is where it stands than on its own."""
        words = [_BOS, _BOS, *sentence.split(), _EOS]
        denominator = self.frequency_total + len(self.frequency) + 1
        return [math.log(self.prob(u, v, w)) - math.log((self.frequency.get(w, 0) + 1) / denominator)
                for u, v, w in zip(words, words[1:], words[2:])]

    def weakest_link(self, sentence: str) -> float:
        """The lowest per-token SLOR of a sentence: one word that does not fit where it stands ("an an",
        a sentence that stops after "the") pulls it down, where the mean over the sentence dilutes it."""
        return min(self.token_slors(sentence))


# how a sentence is scored against the bar: its mean SLOR, or its weakest token's (one misplaced word is enough)
SCORES = ("slor", "weakest_link")


def sentence_score(ruler: KneserNeyTrigram, sentence: str, score: str) -> float:
    """``ruler.slor`` or ``ruler.weakest_link`` of ``sentence``, by name (one of :data:`SCORES`)."""
    if score not in SCORES:
        raise ValueError(f"score must be one of {', '.join(SCORES)}, got {score!r}")
    return getattr(ruler, score)(sentence)


def well_formed(scores: Sequence[float], sentences: Sequence[str], threshold: float) -> np.ndarray:
    """Boolean per decode: non-empty and its score >= ``threshold``."""
    slor = np.asarray(scores, dtype=float)
    nonempty = np.array([bool(s.strip()) for s in sentences], dtype=bool)
    return (slor >= threshold) & nonempty


def slor_threshold(ruler: KneserNeyTrigram, reference: Sequence[str], quantile: float = 0.05, *,
                   score: str = "slor") -> float:
    """The ``quantile`` of real sentences' scores (``score``: one of :data:`SCORES`): the bar a decode must clear."""
    return float(np.quantile([sentence_score(ruler, s, score) for s in reference], quantile))


@torch.no_grad()
def interpolation_study(model: Any, a: tuple[Tensor, Tensor], b: tuple[Tensor, Tensor], *, ruler: KneserNeyTrigram,
                        threshold: float, training_sentences: set[str], steps: int = 7,
                        score: str = "slor") -> dict[str, Any]:
    """Decode ``steps`` points (ends included) between the codes of each pair (``a[i]``, ``b[i]``).

    ``threshold`` is the bar on ``score`` (:func:`slor_threshold` with the same ``score``). Returns ``well_formed_share`` and ``copy_share`` over the intermediate decodes (the ends excluded),
    ``distinct_share`` (distinct intermediate decodes over their number), ``endpoint_exact`` (share of
    ends decoded back to the sentence itself) and ``texts``: per pair, the ``steps`` decoded strings."""
    model.eval()
    tokens = model.interpolate(a, b, steps=steps)  # (P, steps, T)
    p = tokens.shape[0]
    texts = model.to_text(tokens.reshape(p * steps, -1))
    grid = [texts[i * steps:(i + 1) * steps] for i in range(p)]
    middle = [s for row in grid for s in row[1:-1]]
    ppl = [ruler.perplexity(s) for s in middle]
    ok = well_formed([sentence_score(ruler, s, score) for s in middle], middle, threshold)
    originals = model.to_text(a[0]) + model.to_text(b[0])
    ends = [row[0] for row in grid] + [row[-1] for row in grid]
    return {"well_formed_share": float(ok.mean()),
            "copy_share": float(np.mean([s in training_sentences for s in middle])),
            "distinct_share": len(set(middle)) / max(1, len(middle)),
            "endpoint_exact": float(np.mean([x == y for x, y in zip(originals, ends)])),
            "median_perplexity": float(np.median(ppl)),
            "texts": grid,
            "originals": list(zip(originals[:p], originals[p:])),
            "well_formed": ok.reshape(p, steps - 2).tolist()}


def interpolation_figure(panels: Sequence[tuple[str, Sequence[Sequence[str]], Sequence[Sequence[bool]]]],
                         originals: Sequence[tuple[str, str]], path: str | Path, *, title: str = "") -> Path:
    """Side-by-side text panels: per ``(label, pairs of decoded strings, well-formed flags of the inner
    ones)``, each pair's path top to bottom between its two held-out sentences (``originals``, in blue),
    the ends' decodes in bold, ill-formed decodes in grey italics."""
    plt = _pyplot()
    n_pairs = max(len(texts) for _, texts, _ in panels)
    steps = max(len(row) for _, texts, _ in panels for row in texts)
    line = 0.22  # inches per text line
    height = 1.0 + n_pairs * (steps + 3.2) * line
    fig = plt.figure(figsize=(6.2 * len(panels), height))
    for col, (label, texts, flags) in enumerate(panels):
        x0 = (col + 0.02) / len(panels)
        y = 1 - 0.35 / height
        fig.text(x0, y, label, fontsize=11, fontweight="bold", va="top")
        y -= 0.35 / height
        for (first, last), row, ok in zip(originals, texts, flags):
            y -= 0.4 * line / height
            lines = [(f"A: {first}", "original"), *((s, i) for i, s in enumerate(row)), (f"B: {last}", "original")]
            for sentence, i in lines:
                if i == "original":
                    style = {"color": "tab:blue", "fontweight": "normal", "style": "normal"}
                    indent = 0.0
                else:
                    end = i in (0, len(row) - 1)
                    good = end or ok[i - 1]
                    style = {"color": "black" if good else "0.55", "fontweight": "bold" if end else "normal",
                             "style": "normal" if good else "italic"}
                    indent = 0.012 if end else 0.024
                fig.text(x0 + indent, y, (sentence or "(empty)")[:70], fontsize=8.5, va="top", family="monospace", **style)
                y -= line / height
            y -= 0.8 * line / height
    if title:
        fig.suptitle(title, fontsize=10, y=0.005, va="bottom")
    return save_figure(fig, path, tight=False)
