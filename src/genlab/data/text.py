"""Short English sentences as padded token tensors: the example sentences of WordNet.

WordNet's data files (Debian package ``wordnet-base``: ``/usr/share/wordnet/data.{noun,verb,adj,adv}``)
give each synset a gloss followed by quoted usage examples, ``| definition; "example one"; "example
two"``. The quoted strings after the ``|`` are the corpus: deduplicated, lowercased, split by a simple
regular-expression tokenizer (words with their apostrophes, numbers, single punctuation marks) and kept
when at most ``max_tokens`` tokens long. The files are read where they are installed; nothing of them is
stored in the repository.

A dataset is ``(tokens, lengths)``: tokens ``(N, T)`` int64, each sentence's word ids followed by
``<eos>`` and ``<pad>`` (id 0) up to ``T = max_tokens + 1``; lengths ``(N,)`` count the words plus the
``<eos>``. The vocabulary (``info["vocab"]``) is the four special tokens and then every word seen at
least ``min_count`` times in the *training* split, most frequent first (ties alphabetical), so it is a
pure function of the files and the options; rarer words read as ``<unk>``. The split is a fixed-seed
permutation of the sorted unique sentences.
"""
from __future__ import annotations

import functools
import re
from collections import Counter
from pathlib import Path
from typing import Any, Literal, Sequence

import torch
from torch import Tensor

from ..errors import DataError
from ..registry import register_dataset
from .base import ArrayDataset, DataConfig, _mix

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIALS: tuple[str, ...] = (PAD, BOS, EOS, UNK)  # ids 0, 1, 2, 3
PAD_ID, BOS_ID, EOS_ID, UNK_ID = range(4)
WORDNET_DIR = Path("/usr/share/wordnet")
WORDNET_FILES = ("data.noun", "data.verb", "data.adj", "data.adv")

_TOKEN = re.compile(r"[a-z0-9]+(?:['\-][a-z0-9]+)*|[^\sa-z0-9]")
_QUOTE = re.compile(r'"([^"]+)"')


def tokenize(sentence: str) -> list[str]:
    """Lowercased words (inner apostrophes and hyphens kept: ``don't``, ``well-known``), numbers and
    single punctuation marks."""
    return _TOKEN.findall(sentence.lower())


def wordnet_examples(folder: str | Path = WORDNET_DIR) -> list[str]:
    """Every distinct example sentence (lowercased, whitespace collapsed) of WordNet's data files under
    ``folder``, sorted. A :class:`DataError` naming the package when the files are not there."""
    return list(_wordnet_examples(str(folder)))


@functools.lru_cache(maxsize=4)
def _wordnet_examples(folder: str) -> tuple[str, ...]:
    paths = [Path(folder) / name for name in WORDNET_FILES]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise DataError(f"WordNet data files {', '.join(missing)} not found in {folder} "
                        "(install Debian's wordnet-base: apt-get install wordnet-base)")
    found: set[str] = set()
    for path in paths:
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("  ") or "|" not in line:  # the licence header is indented; synset lines are not
                continue
            gloss = line.split("|", 1)[1]
            found.update(" ".join(q.lower().split()) for q in _QUOTE.findall(gloss))
    found.discard("")
    return tuple(sorted(found))


def build_vocab(sentences: Sequence[Sequence[str]], *, min_count: int = 2) -> list[str]:
    """Special tokens, then words with at least ``min_count`` occurrences, most frequent first."""
    counts = Counter(token for sentence in sentences for token in sentence)
    words = sorted((w for w, c in counts.items() if c >= min_count and w not in SPECIALS), key=lambda w: (-counts[w], w))
    return [*SPECIALS, *words]


def encode(sentences: Sequence[Sequence[str]], vocab: Sequence[str], max_length: int) -> tuple[Tensor, Tensor]:
    """Token lists -> (tokens (N, max_length) int64, lengths (N,)): ids, ``<eos>``, then padding.
    Unknown words become ``<unk>``; a sentence longer than ``max_length - 1`` words is cut."""
    index = {w: i for i, w in enumerate(vocab)}
    tokens = torch.zeros(len(sentences), max_length, dtype=torch.long)
    lengths = torch.zeros(len(sentences), dtype=torch.long)
    for row, sentence in enumerate(sentences):  # building the corpus once, not a training hot path
        ids = [index.get(w, UNK_ID) for w in sentence[: max_length - 1]] + [EOS_ID]
        tokens[row, : len(ids)] = torch.tensor(ids)
        lengths[row] = len(ids)
    return tokens, lengths


def decode(tokens: Tensor, vocab: Sequence[str]) -> list[str]:
    """(N, T) ids -> N strings: the words up to the first ``<eos>`` (or ``<pad>``), space-joined."""
    out = []
    for row in tokens.tolist():
        words = []
        for i in row:
            if i in (EOS_ID, PAD_ID):
                break
            if i != BOS_ID:
                words.append(vocab[i] if 0 <= i < len(vocab) else UNK)
        out.append(" ".join(words))
    return out


def wordnet_splits(folder: str | Path = WORDNET_DIR, *, seed: int = 0, max_tokens: int = 15,
                   test_fraction: float = 0.25) -> dict[str, list[list[str]]]:
    """The tokenized sentences of at most ``max_tokens`` words, split into ``train`` and ``test`` by a
    permutation drawn from ``seed``."""
    if not 0.0 < test_fraction < 1.0:
        raise DataError(f"data.options.test_fraction must be in (0, 1), got {test_fraction}")
    if max_tokens < 2:
        raise DataError(f"data.options.max_tokens must be >= 2, got {max_tokens}")
    sentences = [t for t in map(tokenize, wordnet_examples(folder)) if 0 < len(t) <= max_tokens]
    order = torch.randperm(len(sentences), generator=torch.Generator().manual_seed(_mix(seed, 26))).tolist()
    n_test = int(round(test_fraction * len(sentences)))
    return {"test": [sentences[i] for i in order[:n_test]], "train": [sentences[i] for i in order[n_test:]]}


@register_dataset("wordnet-sentences")
def _load_wordnet_sentences(config: DataConfig, split: Literal["train", "test"]) -> ArrayDataset:
    """``--data wordnet-sentences``; options ``max_tokens`` (15), ``min_count`` (2), ``test_fraction``
    (0.25); ``data.path`` is the WordNet folder (default /usr/share/wordnet)."""
    known = {"max_tokens": 15, "min_count": 2, "test_fraction": 0.25}
    unknown = sorted(set(config.options) - set(known))
    if unknown:
        raise DataError(f"unknown option(s) {', '.join(unknown)} for wordnet-sentences; valid: {', '.join(known)}")
    opts: dict[str, Any] = {**known, **config.options}
    splits = wordnet_splits(config.path or WORDNET_DIR, seed=config.seed, max_tokens=int(opts["max_tokens"]),
                            test_fraction=float(opts["test_fraction"]))
    vocab = build_vocab(splits["train"], min_count=int(opts["min_count"]))
    max_length = int(opts["max_tokens"]) + 1
    tokens, lengths = encode(splits[split], vocab, max_length)
    info = {"name": "wordnet-sentences", "vocab": tuple(vocab), "max_length": max_length, "task": "text", "options": opts}
    return ArrayDataset((tokens, lengths), info)
