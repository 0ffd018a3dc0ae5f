"""Sentence VAE / AE (Bowman et al. 2016), the WordNet sentence corpus, the trigram ruler and the check
of the slide-101 figure: shapes, padding masked out of the loss, the KL schedule's values, the word
dropout rate, no KL term for the autoencoder, save -> load decodes the same, interpolation ends decode
to the ends' reconstructions, and the figure's check fails on numbers that break each condition."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from genlab.checkpoint import load, save_model
from genlab.data.text import BOS_ID, EOS_ID, PAD_ID, SPECIALS, UNK_ID, WORDNET_DIR, build_vocab, decode, encode, tokenize
from genlab.errors import DataError
from genlab.models import build_model
from genlab.models.sentence_vae import kl_weight, word_dropout
from genlab.reports.sentences import KneserNeyTrigram, sentence_score, slor_threshold, well_formed

from tiny_configs import TINY, _sentences

VOCAB = ["<pad>", "<bos>", "<eos>", "<unk>", *(f"w{i}" for i in range(8))]


def _model(**changes):
    torch.manual_seed(0)
    config = {**TINY["sentence-vae"].config, **changes}
    return build_model("sentence-vae", config)


def _batch(n: int = 8):
    return _sentences(torch.Generator().manual_seed(1), n=n)


# ----------------------------------------------------------------------------- data

def test_tokenize_encode_decode_roundtrip():
    words = tokenize("He didn't like the well-known news, 2 days ago.")
    assert words == ["he", "didn't", "like", "the", "well-known", "news", ",", "2", "days", "ago", "."]
    vocab = build_vocab([["a", "b", "a"], ["a", "c", "b"]], min_count=2)
    assert vocab == [*SPECIALS, "a", "b"]  # by count, "c" is too rare
    tokens, lengths = encode([["a", "c", "b"], ["b"]], vocab, 5)
    assert tokens.tolist() == [[4, UNK_ID, 5, EOS_ID, PAD_ID], [5, EOS_ID, PAD_ID, PAD_ID, PAD_ID]]
    assert lengths.tolist() == [4, 2]
    assert decode(tokens, vocab) == ["a <unk> b", "b"]


def test_missing_wordnet_is_one_line_naming_the_package(tmp_path):
    from genlab.data import DataConfig, load_dataset

    with pytest.raises(DataError, match="apt-get install wordnet-base") as info:
        load_dataset(DataConfig(name="wordnet-sentences", path=str(tmp_path)))
    assert "\n" not in str(info.value)


@pytest.mark.skipif(not (WORDNET_DIR / "data.noun").is_file(), reason="wordnet-base is not installed")
def test_wordnet_sentences_splits_are_disjoint_and_share_one_vocabulary():
    from genlab.data import DataConfig, load_dataset

    config = DataConfig(name="wordnet-sentences", options={"max_tokens": 10, "min_count": 5})
    train, test = load_dataset(config, "train"), load_dataset(config, "test")
    assert train.info["vocab"] == test.info["vocab"] and train.info["vocab"][:4] == SPECIALS
    assert len(train) > 20000 and len(test) > 5000 and train.x.shape[1] == 11
    # every row: ids, <eos> at length - 1, padding after it
    rows = torch.arange(len(train))
    assert (train.x[rows, train.tensors[1] - 1] == EOS_ID).all()
    assert ((torch.arange(11) >= train.tensors[1][:, None]) == (train.x == PAD_ID)).all()
    vocab = train.info["vocab"]
    a, b = set(decode(train.x[:5000], vocab)), set(decode(test.x, vocab))
    assert len(a & b) < 0.05 * len(b)  # sentences are deduplicated before the split (<unk> may merge a few)


# ----------------------------------------------------------------------------- model

def test_shapes_and_decoding_end_in_eos_then_padding():
    model = _model().eval()
    tokens, lengths = _batch()
    mu, logvar = model.posterior(tokens, lengths)
    assert mu.shape == logvar.shape == (8, 3)
    out = model.sample(5, generator=torch.Generator().manual_seed(0))
    assert out.shape == (5, 7) and out.dtype == torch.long
    for row in out.tolist():  # one <eos>, only padding after it; never <bos>, <pad> or <unk> before
        end = row.index(EOS_ID)
        assert all(i == PAD_ID for i in row[end + 1:]) and all(i not in (PAD_ID, BOS_ID, EOS_ID, UNK_ID) for i in row[:end])


def test_padding_is_masked_out_of_the_loss():
    model = _model(variational=False, word_dropout=0.0).eval()
    tokens, lengths = _batch()
    base = model.loss((tokens, lengths)).total
    garbage = tokens.clone()
    garbage[torch.arange(tokens.shape[1]) >= lengths[:, None]] = 5  # padding positions now hold a word
    assert torch.allclose(model.loss((garbage, lengths)).total, base)
    changed = tokens.clone()
    changed[:, 0] = torch.where(changed[:, 0] == 4, 5, 4)  # a real word changes the loss
    assert not torch.allclose(model.loss((changed, lengths)).total, base)


def test_kl_schedule_values():
    linear = [float(kl_weight(s, schedule="linear", warmup_steps=100, beta=2.0)) for s in (0, 50, 100, 300)]
    assert linear == [0.0, 1.0, 2.0, 2.0]
    sigmoid = [float(kl_weight(s, schedule="sigmoid", warmup_steps=100)) for s in (0, 50, 100)]
    assert sigmoid[1] == pytest.approx(0.5) and sigmoid[0] == pytest.approx(1 / (1 + math.e ** 5), rel=1e-4)
    assert sigmoid[2] == pytest.approx(1 / (1 + math.e ** -5), rel=1e-4)
    assert float(kl_weight(0, schedule="constant", warmup_steps=100, beta=0.5)) == 0.5


def test_kl_weight_follows_the_training_steps():
    model = _model(kl_schedule="linear", kl_warmup_steps=4).train()
    batch = _batch()
    betas = [float(model.loss(batch).terms["beta"]) for _ in range(5)]
    assert betas == [0.25, 0.5, 0.75, 1.0, 1.0]
    with torch.no_grad():
        model.loss(batch)
    assert int(model.steps_trained) == 5  # an evaluation does not advance the ramp


def test_word_dropout_rate_and_what_it_spares():
    inputs = torch.full((400, 50), 7, dtype=torch.long)
    inputs[:, 0] = BOS_ID
    inputs[:, 40:] = PAD_ID
    out = word_dropout(inputs, 0.3, generator=torch.Generator().manual_seed(0))
    dropped = (out[:, 1:40] == UNK_ID).float().mean()
    assert abs(float(dropped) - 0.3) < 0.01
    assert (out[:, 0] == BOS_ID).all() and (out[:, 40:] == PAD_ID).all()
    assert torch.equal(word_dropout(inputs, 0.0), inputs)


def test_autoencoder_has_no_kl_term_and_no_noise():
    model = _model(variational=False).eval()
    batch = _batch()
    out = model.loss(batch)
    assert set(out.terms) == {"recon"} and "kl" not in model.evaluate(batch)
    assert torch.equal(model.loss(batch).total, out.total)  # deterministic: no sampling noise
    vae = _model().eval()
    assert "kl" in vae.loss(batch).terms and float(vae.loss(batch).terms["kl"].detach()) > 0


def test_save_load_decodes_the_same(tmp_path):
    model = _model().eval()
    save_model(model, tmp_path / "m")
    loaded = load(tmp_path / "m").eval()
    assert loaded.vocab == tuple(VOCAB)  # the vocabulary travels in config.json
    tokens, lengths = _batch()
    assert torch.equal(model.reconstruct(tokens, lengths), loaded.reconstruct(tokens, lengths))
    g1, g2 = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)
    assert torch.equal(model.sample(6, generator=g1, greedy=False), loaded.sample(6, generator=g2, greedy=False))
    assert loaded.to_text(loaded.from_text(["w1 w2 zz"])[0]) == ["w1 w2 <unk>"]


def test_interpolation_ends_decode_to_the_ends_reconstructions():
    model = _model().eval()
    tokens, lengths = _batch()
    a, b = (tokens[:4], lengths[:4]), (tokens[4:], lengths[4:])
    path = model.interpolate(a, b, steps=5)
    assert path.shape == (4, 5, 7)
    assert torch.equal(path[:, 0], model.reconstruct(*a)) and torch.equal(path[:, -1], model.reconstruct(*b))


def test_decoding_is_batched_not_per_sentence():
    """The same code decodes the same alone and inside a batch (no per-sentence state leaks)."""
    model = _model().eval()
    z = torch.randn(6, 3, generator=torch.Generator().manual_seed(2))
    batch = model.decode(z)
    assert all(torch.equal(model.decode(z[i:i + 1])[0], batch[i]) for i in range(6))


# ----------------------------------------------------------------------------- the ruler

def test_kneser_ney_is_normalised_and_prefers_seen_word_orders():
    corpus = ["the cat sat", "the dog sat", "a cat ran", "the cat ran"]
    lm = KneserNeyTrigram(corpus)
    words = sorted({w for s in corpus for w in s.split()} | {"</s>"})
    for context in (("<s>", "<s>"), ("<s>", "the"), ("the", "cat"), ("dog", "ran")):
        total = sum(lm.prob(*context, w) for w in words)  # seen words only
        # the mass left for unseen words is the add-one share of the unigram level
        assert 0.9 < total <= 1.0 + 1e-9, context
    assert lm.perplexity("the cat sat") < lm.perplexity("sat cat the")
    assert lm.slor("the cat sat") > lm.slor("sat cat the")


def test_slor_takes_word_frequency_out():
    """A rare word in a seen order scores above frequent words in an unseen order, and a sentence of
    one repeated frequent word (likely word by word, unlikely as a sequence) scores below zero."""
    corpus = ["the cat sat"] * 20 + ["the zebra sat"] + ["the cat ran"] * 5
    lm = KneserNeyTrigram(corpus)
    assert lm.slor("the zebra sat") > 0 > lm.slor("cat the sat")
    assert lm.slor("the the the") < 0
    bar = slor_threshold(lm, ["the cat sat", "the cat ran", "the zebra sat"], 0.0)  # the lowest real sentence
    assert well_formed([lm.slor("the zebra sat"), lm.slor("cat the sat")], ["x", "y"], bar).tolist() == [True, False]


def test_weakest_link_catches_one_misplaced_word_that_the_mean_slor_dilutes():
    """A doubled "the" in an otherwise seen sentence keeps a higher mean SLOR than a real, less usual
    sentence, but its weakest token scores below every real sentence's weakest; the tokens' mean is the SLOR."""
    corpus = ["the cat sat on the mat", "the dog sat on the rug", "a cat ran to the door", "the man ran to a car",
              "a dog sat by the door", "the cat saw a dog"] * 3 + ["the zebra sat on a mat"]
    lm = KneserNeyTrigram(corpus)
    real = ["the cat sat on the rug", "the zebra sat on a mat", "a man ran to the car"]
    broken = "the cat sat on the the mat"
    assert lm.slor(broken) > min(lm.slor(s) for s in real)  # the mean does not see it
    assert lm.weakest_link(broken) < min(lm.weakest_link(s) for s in real)
    for s in [*real, broken]:
        tokens = lm.token_slors(s)
        assert len(tokens) == len(s.split()) + 1  # the words and the end of sentence
        assert np.mean(tokens) == pytest.approx(lm.slor(s))
    bar = slor_threshold(lm, real, 0.0, score="weakest_link")
    assert well_formed([sentence_score(lm, s, "weakest_link") for s in [real[1], broken]], ["x", "y"], bar).tolist() \
        == [True, False]
    with pytest.raises(ValueError, match="score must be one of"):
        sentence_score(lm, broken, "perplexity")


def test_well_formed_needs_a_high_score_and_a_non_empty_decode():
    ok = well_formed([1.0, -2.0, 3.0], ["a b", "c d", ""], threshold=0.0)
    assert ok.tolist() == [True, False, False]


# ----------------------------------------------------------------------------- the figure's check

HOLDS = {"vae/well_formed_share": [0.8, 0.75, 0.64], "ae/well_formed_share": [0.5, 0.55, 0.58],
         "vae/kl": [4.0, 3.5, 2.0], "vae/copy_share": [0.2, 0.2, 0.2], "ae/copy_share": [0.1, 0.1, 0.1]}


def _check():
    from genlab.lecture import load_parts

    return load_parts()["sentence-interpolation"].check


@pytest.mark.parametrize("budget", ["smoke", "full"])
def test_check_holds(budget):
    assert all(ok for _, ok in _check()(HOLDS, budget))


@pytest.mark.parametrize("change", [
    {"vae/well_formed_share": [0.8, 0.75, 0.62]},  # one seed's margin below 0.05
    {"vae/well_formed_share": [0.4, 0.4, 0.4]},  # the AE wins
    {"vae/well_formed_share": [0.8, 0.75], "ae/well_formed_share": [0.5, 0.55], "vae/kl": [4.0, 3.5]},  # two seeds
    {"vae/kl": [4.0, 3.5, 0.2]},  # a collapsed posterior
])
def test_full_check_fails_when_a_condition_breaks(change):
    assert not all(ok for _, ok in _check()({**HOLDS, **change}, "full"))


def test_smoke_check_fails_when_the_vae_falls_well_behind():
    assert not all(ok for _, ok in _check()({**HOLDS, "vae/well_formed_share": [0.35]}, "smoke"))


# ----------------------------------------------------------------------------- the CLI

def test_cli_sample_and_interpolate_write_sentences(tmp_path):
    from genlab.cli import main

    model = _model().eval()
    save_model(model, tmp_path / "m")
    assert main(["sample", str(tmp_path / "m"), "-n", "3", "-o", str(tmp_path / "s.txt")]) == 0
    lines = (tmp_path / "s.txt").read_text().splitlines()
    assert lines == model.to_text(model.sample(3, generator=torch.Generator().manual_seed(0)))
    assert main(["interpolate", str(tmp_path / "m"), "--from", "w1 w2", "--to", "w3 w4 w5", "--steps", "4",
                 "-o", str(tmp_path / "i.txt")]) == 0
    path = (tmp_path / "i.txt").read_text().splitlines()
    ends = model.to_text(model.reconstruct(*model.from_text(["w1 w2", "w3 w4 w5"])))
    assert len(path) == 4 and [path[0], path[-1]] == ends
