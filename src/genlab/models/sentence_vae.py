"""Sentence VAE (Bowman, Vilnis, Vinyals, Dai, Jozefowicz & Bengio 2016, "Generating Sentences from a
Continuous Space"), and the same network as a plain autoencoder (``variational = false``).

A GRU reads the sentence; its last hidden state gives q(z|x) = N(mu, diag(exp(logvar))). A second GRU,
started from ``tanh(W z)``, predicts each word from the words before it (teacher forcing). The loss is
the summed per-word cross-entropy of a sentence plus ``beta_t * KL(q || N(0, I))``. Two remedies the
paper needed against a decoder that ignores z (KL -> 0, the posterior collapses onto the prior):

* KL annealing: ``beta_t`` rises from 0 to ``beta`` over ``kl_warmup_steps`` training steps, linearly or
  along a logistic curve; the step count is a buffer saved with the weights, so a resumed run goes on.
* word dropout: each decoder input word (not ``<bos>``) is replaced by ``<unk>`` with probability
  ``word_dropout`` while training, so the decoder must take what it cannot read from z.

The ``kl`` term is always reported for the VAE, so a collapsed posterior shows as ``kl`` near 0. With
``variational = false`` the code is ``mu`` itself: no noise, no KL term, no annealing.

A batch is ``(tokens, lengths)`` as :mod:`genlab.data.text` makes it: tokens (B, T) int64, words then
``<eos>`` then ``<pad>`` (id 0); lengths (B,) count words plus ``<eos>``. The vocabulary is part of the
config (``vocab``, filled from the dataset), so a saved model decodes without the corpus.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar, Literal, Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..config import Config, check
from ..data.text import BOS_ID, EOS_ID, PAD_ID, SPECIALS, UNK_ID, decode as decode_ids, encode as encode_ids, tokenize
from ..distributions.losses import kl_standard_normal
from ..errors import DataError
from ..registry import register_model
from ..runtime import batch_rand, batch_randn
from .base import Batch, GenerativeModel, LossOutput


@dataclasses.dataclass
class SentenceVAEConfig(Config):
    vocab: tuple[str, ...] = SPECIALS  # the token list, specials first (filled from the dataset)
    max_length: int = 16  # tokens per sentence including <eos> (filled from the dataset)
    embedding_dim: int = 64
    hidden_dim: int = 128  # GRU width of encoder and decoder
    latent_dim: int = 16
    variational: bool = True  # false: the same network as a deterministic autoencoder (no noise, no KL)
    beta: float = 1.0
    kl_schedule: Literal["constant", "linear", "sigmoid"] = "sigmoid"  # how beta_t rises to beta
    kl_warmup_steps: int = 2000  # the linear ramp's length; the sigmoid is centred on half of it
    word_dropout: float = 0.25  # probability that a decoder input word reads as <unk> in training

    def validate(self) -> None:
        check(tuple(self.vocab[:4]) == SPECIALS, f"model.vocab must start with {', '.join(SPECIALS)}")
        check(len(set(self.vocab)) == len(self.vocab), "model.vocab has repeated tokens")
        check(self.max_length >= 2, f"model.max_length must be >= 2, got {self.max_length}")
        check(self.beta >= 0, f"model.beta must be >= 0, got {self.beta}")
        check(self.kl_warmup_steps >= 0, f"model.kl_warmup_steps must be >= 0, got {self.kl_warmup_steps}")
        check(0.0 <= self.word_dropout < 1.0, f"model.word_dropout must be in [0, 1), got {self.word_dropout}")


def kl_weight(step: Tensor | int, *, schedule: str, warmup_steps: int, beta: float = 1.0) -> Tensor:
    """beta_t after ``step`` training steps: ``beta`` for ``constant`` or no warm-up; ``beta * min(1,
    step / warmup)`` for ``linear``; ``beta / (1 + exp(-10 (step / warmup - 1/2)))`` for ``sigmoid``
    (Bowman et al.'s logistic ramp: 0.0067 beta at step 0, beta / 2 at half the warm-up, 0.993 beta at
    its end)."""
    step = torch.as_tensor(step, dtype=torch.float32)
    if schedule == "constant" or warmup_steps == 0:
        return torch.full_like(step, beta)
    progress = step / warmup_steps
    if schedule == "linear":
        return beta * progress.clamp(max=1.0)
    return beta * torch.sigmoid(10.0 * (progress - 0.5))


def word_dropout(inputs: Tensor, p: float, *, generator: torch.Generator | None = None) -> Tensor:
    """Decoder inputs (B, T) with each word (not ``<bos>``, not padding) replaced by ``<unk>`` with
    probability ``p``."""
    if p <= 0:
        return inputs
    drop = batch_rand(inputs.shape, generator=generator, device=inputs.device) < p
    drop &= (inputs != PAD_ID) & (inputs != BOS_ID)
    return inputs.masked_fill(drop, UNK_ID)


@register_model("sentence-vae")
class SentenceVAE(GenerativeModel):
    config_class = SentenceVAEConfig
    defaults: ClassVar[dict[str, dict[str, Any]]] = {"train": {"epochs": 10, "lr": 1e-3, "grad_clip": 5.0},
                                                     "data": {"name": "wordnet-sentences"}}
    config: SentenceVAEConfig

    def __init__(self, config: SentenceVAEConfig) -> None:
        super().__init__(config)
        c = config
        vocab_size = len(c.vocab)
        self.embedding = nn.Embedding(vocab_size, c.embedding_dim, padding_idx=PAD_ID)
        self.encoder = nn.GRU(c.embedding_dim, c.hidden_dim, batch_first=True)
        self.to_posterior = nn.Linear(c.hidden_dim, 2 * c.latent_dim)  # (mu, logvar); the AE reads mu only
        self.to_hidden = nn.Linear(c.latent_dim, c.hidden_dim)
        self.decoder = nn.GRU(c.embedding_dim, c.hidden_dim, batch_first=True)
        self.output = nn.Linear(c.hidden_dim, vocab_size)
        # training steps taken, saved with the weights so that a resumed run continues the KL ramp
        self.register_buffer("steps_trained", torch.zeros((), dtype=torch.long))

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @property
    def vocab(self) -> tuple[str, ...]:
        return self.config.vocab

    # ------------------------------------------------------------------ the networks
    def _check(self, tokens: Tensor, lengths: Tensor) -> None:
        if tokens.dim() != 2 or tokens.dtype != torch.long or lengths.shape != tokens.shape[:1]:
            raise DataError(f"sentence-vae expects (tokens (B, T) int64, lengths (B,)), got {tuple(tokens.shape)} "
                            f"{tokens.dtype} and {tuple(lengths.shape)}")
        if tokens.shape[1] > self.config.max_length:
            raise DataError(f"sentences of {tokens.shape[1]} tokens, longer than the model's max_length {self.config.max_length}")

    def posterior(self, tokens: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """q(z|x) parameters (mu, logvar), each (B, latent_dim): from the encoder's state at each
        sentence's last token (padding never enters it)."""
        self._check(tokens, lengths)
        packed = nn.utils.rnn.pack_padded_sequence(self.embedding(tokens), lengths.clamp(min=1).cpu(),
                                                   batch_first=True, enforce_sorted=False)
        _, last = self.encoder(packed)  # (1, B, H)
        mu, logvar = self.to_posterior(last[0]).chunk(2, dim=-1)
        return mu, logvar

    def encode(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        return self.posterior(tokens, lengths)[0]

    def _teacher_forced_logits(self, z: Tensor, inputs: Tensor) -> Tensor:
        """Next-word logits (B, T, V) for decoder inputs (B, T) = <bos> + the sentence shifted right."""
        hidden = torch.tanh(self.to_hidden(z)).unsqueeze(0)  # (1, B, H)
        states, _ = self.decoder(self.embedding(inputs), hidden)  # (B, T, H)
        return self.output(states)

    @torch.no_grad()
    def decode(self, z: Tensor, *, greedy: bool = True, temperature: float = 1.0, allow_unk: bool = False,
               generator: torch.Generator | None = None) -> Tensor:
        """Codes (B, latent_dim) -> tokens (B, max_length): greedy (argmax) or sampled words, every
        sentence of the batch at once, one time step per iteration; ``<pad>`` after each ``<eos>``.
        ``<unk>`` (every rare word in training) is not emitted unless ``allow_unk``: a decode is words."""
        b, length = z.shape[0], self.config.max_length
        hidden = torch.tanh(self.to_hidden(z)).unsqueeze(0)  # (1, B, H)
        word = torch.full((b, 1), BOS_ID, dtype=torch.long, device=z.device)
        out = torch.full((b, length), PAD_ID, dtype=torch.long, device=z.device)
        done = torch.zeros(b, dtype=torch.bool, device=z.device)
        for t in range(length):
            state, hidden = self.decoder(self.embedding(word), hidden)
            logits = self.output(state[:, 0])  # (B, V)
            logits[:, [PAD_ID, BOS_ID] if allow_unk else [PAD_ID, BOS_ID, UNK_ID]] = -math.inf  # never emitted
            if t == length - 1:
                word = torch.full((b,), EOS_ID, dtype=torch.long, device=z.device)  # the longest sentence ends here
            elif greedy:
                word = logits.argmax(dim=-1)
            else:
                probs = F.softmax(logits / temperature, dim=-1)
                word = torch.multinomial(probs, 1, generator=generator)[:, 0]
            out[:, t] = word.masked_fill(done, PAD_ID)
            done |= word == EOS_ID
            if bool(done.all()):
                break
            word = word.unsqueeze(1)
        return out

    def reconstruct(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        """Greedy decodes (B, max_length) of the posterior means."""
        return self.decode(self.encode(tokens, lengths))

    def forward(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        return self.reconstruct(tokens, lengths)

    def sample(self, n: int, *, generator: torch.Generator | None = None, greedy: bool = True, **kwargs: Any) -> Tensor:
        """Tokens (n, max_length) decoded from z ~ N(0, I) (greedily, unless ``greedy=False``)."""
        z = torch.randn(n, self.latent_dim, generator=generator, device=self.device)
        return self.decode(z, greedy=greedy, generator=generator, **kwargs)

    @torch.no_grad()
    def interpolate(self, a: tuple[Tensor, Tensor], b: tuple[Tensor, Tensor], steps: int = 7) -> Tensor:
        """Greedy decodes (P, steps, max_length) of ``steps`` evenly spaced points on the line between
        the codes of P sentence pairs, ends included; ``a`` and ``b`` are (tokens, lengths) batches."""
        if steps < 2:
            raise DataError(f"an interpolation needs >= 2 steps, got {steps}")
        za, zb = self.encode(*a), self.encode(*b)  # (P, D)
        w = torch.linspace(0, 1, steps, device=za.device).view(1, steps, 1)
        z = (1 - w) * za.unsqueeze(1) + w * zb.unsqueeze(1)  # (P, steps, D)
        return self.decode(z.reshape(-1, self.latent_dim)).view(za.shape[0], steps, -1)

    # ------------------------------------------------------------------ text in, text out
    def to_text(self, tokens: Tensor) -> list[str]:
        """(N, T) token ids -> N strings, with this model's vocabulary."""
        return decode_ids(tokens.cpu(), self.vocab)

    def from_text(self, sentences: Sequence[str]) -> tuple[Tensor, Tensor]:
        """Strings -> (tokens, lengths) in this model's vocabulary (unknown words as ``<unk>``)."""
        tokens, lengths = encode_ids([tokenize(s) for s in sentences], self.vocab, self.config.max_length)
        return tokens.to(self.device), lengths.to(self.device)

    # ------------------------------------------------------------------ objectives
    def _terms(self, tokens: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor | None]:
        """Per-sentence reconstruction NLL in nats (B,) and KL (B,) (``None`` for the autoencoder)."""
        mu, logvar = self.posterior(tokens, lengths)
        if self.config.variational:
            z = mu + batch_randn(mu.shape, device=mu.device, dtype=mu.dtype) * torch.exp(0.5 * logvar)
            kl: Tensor | None = kl_standard_normal(mu, logvar)
        else:
            z, kl = mu, None
        inputs = torch.cat([torch.full_like(tokens[:, :1], BOS_ID), tokens[:, :-1]], dim=1)  # (B, T)
        if self.training:
            inputs = word_dropout(inputs, self.config.word_dropout)
        logits = self._teacher_forced_logits(z, inputs)  # (B, T, V)
        # padding is no prediction target: positions at or past each length carry no loss
        mask = torch.arange(tokens.shape[1], device=tokens.device) < lengths.unsqueeze(1)  # (B, T)
        nll = F.cross_entropy(logits.transpose(1, 2), tokens, reduction="none")  # (B, T)
        return (nll * mask).sum(dim=1), kl

    def loss(self, batch: Batch, phase: str = "main") -> LossOutput:
        tokens, lengths = batch[0], batch[1]
        recon, kl = self._terms(tokens, lengths)
        recon = recon.mean()
        if kl is None:
            return LossOutput(recon, {"recon": recon})
        if self.training and torch.is_grad_enabled():  # a training step, not an evaluation
            self.steps_trained += 1
        c = self.config
        beta = kl_weight(self.steps_trained, schedule=c.kl_schedule, warmup_steps=c.kl_warmup_steps, beta=c.beta).to(recon)
        kl = kl.mean()
        return LossOutput(recon + beta * kl, {"recon": recon, "kl": kl, "beta": beta})

    @torch.no_grad()
    def evaluate(self, batch: Batch) -> dict[str, Tensor]:
        """Batch means: ``recon`` (nats per sentence), ``kl``, ``loss`` (negative ELBO for the VAE) and
        ``nll_per_token`` (recon over the batch's tokens)."""
        tokens, lengths = batch[0], batch[1]
        recon, kl = self._terms(tokens, lengths)
        out = {"recon": recon.mean(), "nll_per_token": recon.sum() / lengths.sum().clamp(min=1)}
        if kl is None:
            out["loss"] = recon.mean()
        else:
            out.update(kl=kl.mean(), loss=(recon + kl).mean())
        return out
