"""GAN training tricks, measured (slide 45): an ablation on the ring of 8 and the grid of 25 Gaussians.

Slide 45 says that GANs are hard to train and lists tricks to look up. This part measures the ones
genlab's GAN has, each added on its own to the non-saturating GAN of Goodfellow et al. 2014: an R1
penalty on real data (Mescheder et al. 2018), spectral norm in D (Miyato et al. 2018), PacGAN-2
packing (Lin et al. 2018), minibatch standard deviation (Karras et al. 2018), an EMA of the generator
(Yazici et al. 2019) and the two time-scale update rule (D lr 4x G lr; Heusel et al. 2017), against the
"vanilla" minimax GAN and one combination. Scores: modes covered, high-quality share and reverse KL
by :func:`genlab.metrics.count_modes` (the PacGAN protocol, as in ``benchmarks/gan_toy.py``).

Every (trick, seed) pair is one of R independent GANs trained side by side: on a CPU a toy GAN step is
a few dozen tiny matrix products, so running R of them one after another costs R times the per-op
overhead, while stacking their weights into (R, out, in) tensors and stepping them with batched
products (:class:`GANStack`) costs about one run's. Each run starts from the weights of a genlab
:class:`~genlab.models.gan.GAN` built with its own config and seed, and its forward pass, losses,
penalty and optimizer follow that model's (``tests/test_tricks.py`` checks the scores against it).
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from ..metrics import count_modes
from ..models import build_model
from ..models.gan import GANConfig
from .core import Conditions, Context, lecture_figure
from .shared import toy

LR, BETAS = 1e-3, (0.5, 0.999)  # benchmarks/gan_toy.py's reference: Adam 1e-3, betas (0.5, 0.999)
EMA_DECAY = 0.99
# Each trick as genlab config: a label, model overrides of GANConfig, and the EMA decay of the generator
# (what --train.ema_decay does). Every entry but the first keeps the non-saturating loss.
TRICKS: dict[str, dict[str, Any]] = {
    "vanilla": {"label": "vanilla (minimax)", "model": {"loss": "minimax"}},
    "ns": {"label": "non-saturating", "model": {}},
    "r1": {"label": "+ R1 (γ 0.1)", "model": {"r1_weight": 0.1}},
    "sn": {"label": "+ spectral norm", "model": {"spectral_norm": True}},
    "pack2": {"label": "+ PacGAN-2", "model": {"pack": 2}},
    "mbstd": {"label": "+ minibatch std", "model": {"minibatch_std": True}},
    "ema": {"label": f"+ EMA G ({EMA_DECAY})", "model": {}, "ema_decay": EMA_DECAY},
    # two time-scales around the same geometric mean: D at 2x, G at 1/2x the reference lr
    "ttur": {"label": "+ D lr 4x G lr", "model": {"discriminator_lr": 2 * LR, "generator_lr": LR / 2}},
    # the benchmark's best set without its cosine schedule: packing finds modes, R1 keeps them, EMA for precision
    "combined": {"label": "PacGAN-2 + R1 + EMA", "model": {"pack": 2, "r1_weight": 0.1}, "ema_decay": EMA_DECAY},
}


def _linears(module: nn.Module) -> list[nn.Linear]:
    return [m for m in module.modules() if isinstance(m, nn.Linear)]


def _raw_weight(linear: nn.Linear) -> Tensor:
    """The weight before spectral norm (the parametrisation's original) or the plain weight."""
    if nn.utils.parametrize.is_parametrized(linear, "weight"):
        return linear.parametrizations.weight.original.detach()
    return linear.weight.detach()


def _stack(tensors: Sequence[Tensor], shape: tuple[int, ...]) -> Tensor:
    """Zero-pad each tensor at the end of every axis to ``shape`` and stack them: (R, *shape). A zero
    column meets an input that is zero for that run (no packing, no minibatch-std feature), so it gets
    no gradient and stays zero."""
    out = torch.zeros(len(tensors), *shape)
    for r, t in enumerate(tensors):
        out[(r, *(slice(0, n) for n in t.shape))] = t
    return out


def _linear(h: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    return torch.baddbmm(bias.unsqueeze(1), h, weight.transpose(1, 2))  # (R, N, out)


class _Adam:
    """Adam (torch's update, no weight decay) with one learning rate per run: ``lr`` is (R,)."""

    def __init__(self, params: list[Tensor], lr: Tensor, betas: tuple[float, float], eps: float = 1e-8) -> None:
        self.params, self.betas, self.eps, self.t = params, betas, eps, 0
        self.lr = lr
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]

    @torch.no_grad()
    def step(self) -> None:
        self.t += 1
        b1, b2 = self.betas
        c1, c2 = 1 - b1 ** self.t, 1 - b2 ** self.t
        for p, m, v in zip(self.params, self.m, self.v):
            g = p.grad
            m.lerp_(g, 1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            lr = self.lr.view(-1, *([1] * (p.dim() - 1)))
            p.sub_(lr / c1 * m / (v.sqrt() / math.sqrt(c2) + self.eps))
            p.grad = None


class GANStack:
    """R toy GANs (2-D MLPs) trained at once; run r has genlab config ``configs[r]`` and seed ``seeds[r]``.

    Real and generated points are divided by ``data_scale`` before D sees them (as in the GAN model).
    A PacGAN-2 run judges ``batch`` pairs made of 2 x ``batch`` samples per step (the PacGAN paper's
    protocol); every run draws 2 x ``batch`` samples and an unpacked run judges the first ``batch``.
    """

    def __init__(self, configs: Sequence[dict[str, Any]], seeds: Sequence[int], ema: Sequence[float | None], *,
                 data_scale: float, lr: float = LR, betas: tuple[float, float] = BETAS) -> None:
        cfgs, models = [], []
        for config, seed in zip(configs, seeds):
            torch.manual_seed(seed)
            model = build_model("gan", {"x_dim": 2, "data_scale": data_scale, **config})
            cfgs.append(model.config)
            models.append(model)
        self.cfgs: list[GANConfig] = cfgs
        self.scale = data_scale
        self.latent_dim = cfgs[0].latent_dim
        if any(c.latent_dim != self.latent_dim or c.generator_hidden != cfgs[0].generator_hidden
               or c.discriminator_hidden != cfgs[0].discriminator_hidden for c in cfgs):
            raise ConfigError("GANStack runs must share latent_dim and the hidden widths")
        if any(c.pack > 2 or c.loss not in ("minimax", "non-saturating") for c in cfgs):
            raise ConfigError("GANStack runs use pack 1 or 2 and the minimax or non-saturating loss")
        r = len(cfgs)
        self.minimax = torch.tensor([c.loss == "minimax" for c in cfgs])
        self.packed = torch.tensor([c.pack == 2 for c in cfgs])
        self.spectral = torch.tensor([c.spectral_norm for c in cfgs])
        self.mbstd = torch.tensor([c.minibatch_std for c in cfgs], dtype=torch.float32)
        self.r1 = torch.tensor([c.r1_weight for c in cfgs])
        g_layers = [_linears(m.generator) for m in models]
        d_layers = [_linears(m.discriminator) for m in models]
        self.g = [self._param(_stack([_raw_weight(ls[i]) for ls in g_layers], tuple(g_layers[0][i].weight.shape)))
                  for i in range(len(g_layers[0]))]
        self.g += [self._param(_stack([ls[i].bias.detach() for ls in g_layers], (g_layers[0][i].out_features,)))
                   for i in range(len(g_layers[0]))]
        d_shapes = [tuple(max(ls[i].weight.shape[k] for ls in d_layers) for k in (0, 1)) for i in range(len(d_layers[0]))]
        self.d = [self._param(_stack([_raw_weight(ls[i]) for ls in d_layers], d_shapes[i])) for i in range(len(d_shapes))]
        self.d += [self._param(_stack([ls[i].bias.detach() for ls in d_layers], d_shapes[i][:1])) for i in range(len(d_shapes))]
        self.d_in = d_shapes[0][1]  # 2 x pack (4 when some run packs)
        # power-iteration vectors of spectral norm, warmed up with 15 iterations as torch does
        self.u = [F.normalize(torch.randn(r, shape[0]), dim=1) for shape in d_shapes]
        for _ in range(15):
            self._spectral_weights()
        self.ema_decay = torch.tensor([d or 0.0 for d in ema])
        self.uses_ema = torch.tensor([d is not None for d in ema])
        self.g_ema = [p.detach().clone() for p in self.g]
        lrs = [(c.discriminator_lr or lr, c.generator_lr or lr) for c in cfgs]
        self.d_opt = _Adam(self.d, torch.tensor([a for a, _ in lrs]), betas)
        self.g_opt = _Adam(self.g, torch.tensor([b for _, b in lrs]), betas)
        self.step = 0

    @staticmethod
    def _param(t: Tensor) -> Tensor:
        return t.requires_grad_(True)

    # ------------------------------------------------------------------ networks
    def generate(self, z: Tensor, params: list[Tensor] | None = None) -> Tensor:
        """z (R, N, latent) -> points (R, N, 2) at unit scale; ReLU MLP like MLPGenerator."""
        params = self.g if params is None else params
        n = len(params) // 2
        h = z
        for i, (w, b) in enumerate(zip(params[:n], params[n:])):
            h = _linear(h, w, b)
            if i < n - 1:
                h = F.relu(h)
        return h

    def _spectral_weights(self) -> list[Tensor]:
        """D's weights, divided by their largest singular value for the spectral-norm runs; one power
        iteration per call, as torch's spectral_norm does on every training-mode forward."""
        n = len(self.d) // 2
        out = []
        if not self.spectral.any():
            return self.d[:n]
        for i, w in enumerate(self.d[:n]):
            with torch.no_grad():
                v = F.normalize(torch.bmm(w.transpose(1, 2), self.u[i].unsqueeze(2)).squeeze(2), dim=1)
                self.u[i] = F.normalize(torch.bmm(w, v.unsqueeze(2)).squeeze(2), dim=1)
            sigma = (self.u[i].unsqueeze(1) @ torch.bmm(w, v.unsqueeze(2))).view(-1, 1, 1)  # (R, 1, 1)
            out.append(torch.where(self.spectral.view(-1, 1, 1), w / sigma, w))
        return out

    def discriminate(self, x: Tensor) -> Tensor:
        """Judged inputs (R, M, d_in) -> scores (R, M): LeakyReLU(0.2) MLP, minibatch-std feature for the
        runs that have it (zero otherwise), then the linear head, like MLPDiscriminator."""
        weights, biases = self._spectral_weights(), self.d[len(self.d) // 2:]
        h = x
        for w, b in zip(weights[:-1], biases[:-1]):
            h = F.leaky_relu(_linear(h, w, b), 0.2)
        if weights[-1].shape[2] == h.shape[2]:  # no run has the minibatch-std feature
            return _linear(h, weights[-1], biases[-1]).squeeze(2)
        r, m, f = h.shape
        g = 4 if m % 4 == 0 else m  # MinibatchStdDev: groups of 4 strided samples
        grouped = h.reshape(r, g, m // g, f)
        # the variance written out: aten's var over a middle axis is the slowest op of the whole step
        var = (grouped - grouped.mean(1, keepdim=True)).square().mean(1)
        std = (var + 1e-8).sqrt().mean(2)  # (R, M/g)
        stat = std.repeat(1, g) * self.mbstd.view(-1, 1)  # (R, M)
        h = torch.cat([h, stat.unsqueeze(2)], dim=2)
        return _linear(h, weights[-1], biases[-1]).squeeze(2)

    def judged(self, x: Tensor) -> Tensor:
        """2M points (R, 2M, 2) -> D inputs (R, M, d_in): consecutive pairs for PacGAN-2 runs (genlab's
        _pack), the first M points zero-padded for the others."""
        r, n, _ = x.shape
        single = F.pad(x[:, : n // 2], (0, self.d_in - 2))
        if self.d_in == 2:
            return single
        return torch.where(self.packed.view(-1, 1, 1), x.reshape(r, n // 2, 4), single)

    # ------------------------------------------------------------------ training
    def train_step(self, real: Tensor, generator: torch.Generator) -> dict[str, Tensor]:
        """One D step then one G step (genlab's two phases) on real points (R, 2M, 2) in data units."""
        r, n, _ = real.shape
        real = real / self.scale
        with torch.no_grad():
            fake = self.generate(torch.randn(r, n, self.latent_dim, generator=generator))
        real_in = self.judged(real).requires_grad_(bool(self.r1.any()))
        real_score, fake_score = self.discriminate(real_in), self.discriminate(self.judged(fake))
        d_loss = F.softplus(-real_score).mean(1) + F.softplus(fake_score).mean(1)  # (R,) both losses' D objective
        if self.r1.any():
            (grad,) = torch.autograd.grad(real_score.sum(), real_in, create_graph=True)
            d_loss = d_loss + 0.5 * self.r1 * grad.square().sum(2).mean(1)
        d_loss.sum().backward()  # runs share no weights: the sum gives each run its own gradient
        self.d_opt.step()
        fake_score = self.discriminate(self.judged(self.generate(torch.randn(r, n, self.latent_dim, generator=generator))))
        g_loss = torch.where(self.minimax.view(-1, 1), -F.softplus(fake_score), F.softplus(-fake_score)).mean(1)
        g_loss.sum().backward()
        for p in self.d:  # the G phase leaves D untouched
            p.grad = None
        self.g_opt.step()
        with torch.no_grad():  # genlab's EMA: shadow <- shadow + (1 - decay)(live - shadow)
            for shadow, live in zip(self.g_ema, self.g):
                shadow.lerp_(live, (1 - self.ema_decay).view(-1, *([1] * (live.dim() - 1))))
        self.step += 1
        return {"d_loss": d_loss.detach(), "g_loss": g_loss.detach()}

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """(R, n, 2) points in data units; the EMA generator for the runs that keep one."""
        z = torch.randn(len(self.cfgs), n, self.latent_dim, generator=generator)
        raw, averaged = self.generate(z), self.generate(z, self.g_ema)
        return torch.where(self.uses_ema.view(-1, 1, 1), averaged, raw) * self.scale


def run_ablation(data: Any, tricks: dict[str, dict[str, Any]], seeds: Sequence[int], *, steps: int, batch_size: int,
                 hidden: tuple[tuple[int, ...], tuple[int, ...]], test: Any, samples: int = 2500,
                 seed: int = 0) -> dict[str, Any]:
    """Train every (trick, seed) GAN on ``data`` for ``steps`` steps; score each by count_modes on
    ``samples`` points against ``test``'s centres. Returns per-trick lists over seeds, and the points."""
    names = [name for name in tricks for _ in seeds]
    configs = [{"latent_dim": 2, "generator_hidden": list(hidden[0]), "discriminator_hidden": list(hidden[1]),
                **tricks[name]["model"]} for name in names]
    stack = GANStack(configs, [s for _ in tricks for s in seeds], [tricks[name].get("ema_decay") for name in names],
                     data_scale=float(data.info["data_scale"]))
    rng = torch.Generator().manual_seed(seed)
    x = data.x
    for _ in range(steps):
        stack.train_step(x[torch.randint(0, len(x), (len(names), 2 * batch_size), generator=rng)], rng)
    points = stack.sample(samples, torch.Generator().manual_seed(seed + 1))
    centres, sigma = test.info["centres"], float(test.info["options"]["sigma"])
    scores = [count_modes(p, centres, sigma) for p in points]
    out: dict[str, Any] = {"num_modes": len(centres), "points": {}}
    for k, name in enumerate(tricks):
        rows = scores[k * len(seeds):(k + 1) * len(seeds)]
        out[name] = {key: [row[key] for row in rows] for key in ("modes", "high_quality", "reverse_kl")}
        out["points"][name] = points[k * len(seeds)]  # the first seed's samples
    return out


# ----------------------------------------------------------------------------------- the figure

SMOKE_TRICKS = ("vanilla", "ns", "combined")
HIDDEN = ((64, 64, 64), (64, 64))  # G 3x64 ReLU, D 2x64 LeakyReLU: a ring GAN that trains in minutes on one core


def _summary(toy_name: str, slug: str, scores: dict[str, list[float]]) -> dict[str, Any]:
    key = f"{toy_name}/{slug}"
    modes, quality = scores["modes"], scores["high_quality"]
    return {f"{key}/modes": modes, f"{key}/high_quality": [round(q, 4) for q in quality],
            # infinity (no high-quality sample at all) as None: the page's JSON has no infinity
            f"{key}/reverse_kl": [round(v, 4) if math.isfinite(v) else None for v in scores["reverse_kl"]],
            f"{key}/mean_modes": sum(modes) / len(modes), f"{key}/min_modes": min(modes),
            f"{key}/mean_high_quality": sum(quality) / len(quality)}


def _check_tricks(n: dict[str, Any], budget: str) -> Conditions:
    """The ring only: the grid is drawn and its numbers listed, but at these budgets no recipe is
    reliably better there than vanilla (full budget: combined 18.0 of 25, vanilla 17.0)."""
    need, margin = (6, 1.0) if budget == "smoke" else (7, 2.0)
    v, c = "ring8/vanilla", "ring8/combined"
    seeds = n[f"{v}/modes"]
    return [(f"ring: PacGAN-2 + R1 + EMA covers >= {need} of 8 modes on every seed (worst seed {n[f'{c}/min_modes']:.0f}; "
             f"seeds {n[f'{c}/modes']})", n[f"{c}/min_modes"] >= need),
            (f"ring: the vanilla minimax GAN covers {n[f'{v}/mean_modes']:.2f} modes on average, at least {margin:.0f} "
             f"fewer than the combined recipe's {n[f'{c}/mean_modes']:.2f}",
             n[f"{v}/mean_modes"] <= n[f"{c}/mean_modes"] - margin),
            # a spread of 2 or more means some seed misses at least 2 modes
            (f"ring: vanilla misses modes, how many differing from seed to seed: its seeds {seeds} span "
             f"{max(seeds) - min(seeds):.0f} modes (>= 2), worst seed {min(seeds):.0f} of 8", max(seeds) - min(seeds) >= 2)]


@lecture_figure("gan-tricks", slides="45",
                claim="A vanilla (minimax) GAN is fragile: on the ring of 8 Gaussians it misses modes, and how many "
                      "differs from seed to seed, while PacGAN-2 packing with an R1 penalty and an EMA generator covers "
                      "all eight on every seed; what each single trick does, and how the recipes fare on the grid of 25, "
                      "is measured and shown, not claimed.",
                check=_check_tricks,
                smoke_note="smoke: the ring only, vanilla / non-saturating / combined, 2 seeds x 2,500 steps; the combined "
                           "recipe needs >= 6 of 8 modes on every seed and a 1-mode lead over vanilla (full: ring and grid, "
                           "all nine recipes, 3 seeds x 6,000 steps, >= 7 of 8 and a 2-mode lead)")
def gan_tricks(ctx: Context) -> dict[str, Any]:
    from ..reports.tricks import plot_trick_samples, plot_trick_scores

    slugs = ctx.pick(SMOKE_TRICKS, tuple(TRICKS))
    tricks = {slug: TRICKS[slug] for slug in slugs}
    seeds = [ctx.seed + i for i in range(ctx.pick(2, 3))]
    steps, batch = ctx.pick(2500, 6000), 64
    toys = ctx.pick(("ring8",), ("ring8", "grid25"))
    results, points, data, numbers = {}, {}, {}, {}
    for toy_name in toys:
        train, test = toy(ctx, toy_name, 20000), toy(ctx, toy_name, 4000, "test")
        out = run_ablation(train, tricks, seeds, steps=steps, batch_size=batch, hidden=HIDDEN, test=test, seed=ctx.seed)
        results[toy_name] = {"num_modes": out["num_modes"], **{s: out[s] for s in slugs}}
        points[toy_name], data[toy_name] = out["points"], test.x[:2500]
        for slug in slugs:
            numbers.update(_summary(toy_name, slug, out[slug]))
    labels = {slug: tricks[slug]["label"] for slug in slugs}
    relabel = {t: {"num_modes": r["num_modes"], **{labels[s]: r[s] for s in slugs}} for t, r in results.items()}
    subtitle = f"{len(seeds)} seeds x {steps:,} steps, batch {batch}, G 3x64, D 2x64"
    paths = [str(plot_trick_scores(relabel, list(labels.values()), ctx.out / "gan-tricks-scores.png", subtitle=subtitle)),
             str(plot_trick_samples({t: {labels[s]: p[s] for s in slugs} for t, p in points.items()}, data, relabel,
                                    list(labels.values()), ctx.out / "gan-tricks-samples.png", seed=seeds[0]))]
    return {"paths": paths, "steps": steps, "batch_size": batch, "seeds": seeds, "tricks": labels, **numbers}
