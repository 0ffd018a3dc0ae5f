"""The GAN-tricks figure (slide 45): its check holds on numbers where the claim holds and fails on
numbers that break each condition in turn; the stacked trainer it measures with computes what genlab's
GAN computes (scores, optimizer) and keeps its runs independent of each other."""
from __future__ import annotations

import pytest
import torch

from genlab.data import DataConfig, load_dataset
from genlab.lecture import load_parts
from genlab.lecture.tricks import TRICKS, GANStack, _Adam, run_ablation
from genlab.models import build_model

_SEEDS = {"ring8/vanilla/modes": [7.0, 1.0, 1.0], "ring8/vanilla/mean_modes": 3.0,
          "ring8/combined/modes": [8.0, 8.0, 8.0], "ring8/combined/mean_modes": 8.0, "ring8/combined/min_modes": 8.0}
# numbers for which the claim holds (the full budget's), and per condition of the check a change that breaks it alone
HOLDS_AND_BREAKS = {
    "gan-tricks": (_SEEDS, [(0, {"ring8/combined/min_modes": 5.0, "ring8/combined/modes": [8.0, 5.0, 8.0]}),
                            (1, {"ring8/vanilla/mean_modes": 7.67}),  # vanilla about as good as the recipe
                            (2, {"ring8/vanilla/modes": [3.0, 3.0, 3.0]}),  # the same on every seed
                            (2, {"ring8/vanilla/modes": [8.0, 8.0, 8.0]})]),  # no mode missed
}
HOLDS = {figure_id: holds for figure_id, (holds, _) in HOLDS_AND_BREAKS.items()}


@pytest.mark.parametrize("budget", ["smoke", "full"])
def test_check_holds_and_every_condition_has_a_breaking_example(budget):
    figure = load_parts()["gan-tricks"]
    holds, breaks = HOLDS_AND_BREAKS["gan-tricks"]
    conditions = figure.check(holds, budget)
    assert conditions and all(ok for _, ok in conditions), conditions
    assert {i for i, _ in breaks} == set(range(len(conditions))), "a condition without a breaking example"
    assert figure.slides == "45"


@pytest.mark.parametrize("k", range(len(HOLDS_AND_BREAKS["gan-tricks"][1])))
@pytest.mark.parametrize("budget", ["smoke", "full"])
def test_check_fails_on_the_condition_that_is_broken_and_only_there(k, budget):
    figure = load_parts()["gan-tricks"]
    holds, breaks = HOLDS_AND_BREAKS["gan-tricks"]
    index, change = breaks[k]
    conditions = figure.check({**holds, **change}, budget)
    failed = [i for i, (_, ok) in enumerate(conditions) if not ok]
    assert failed == [index], (change, conditions)


def _configs(*slugs: str) -> list[dict]:
    return [{"latent_dim": 2, "generator_hidden": [16, 16], "discriminator_hidden": [16, 16], **TRICKS[s]["model"]}
            for s in slugs]


def test_stacked_scores_equal_those_of_genlab_gan():
    """Generator output and discriminator scores of every run equal genlab's GAN with the same config
    and seed: plain, packed (consecutive pairs), minibatch std, spectral norm (power iteration run to
    convergence in both)."""
    slugs = ("ns", "pack2", "mbstd", "sn")
    configs = _configs(*slugs)
    stack = GANStack(configs, [3, 4, 5, 6], [None] * 4, data_scale=1.5)
    z = torch.randn(len(slugs), 16, 2)
    x = torch.randn(len(slugs), 16, 2)
    with torch.no_grad():
        for _ in range(300):
            stack._spectral_weights()
        stacked_points, stacked_scores = stack.generate(z), stack.discriminate(stack.judged(x))
    for r, (config, seed) in enumerate(zip(configs, [3, 4, 5, 6])):
        torch.manual_seed(seed)
        model = build_model("gan", {"x_dim": 2, "data_scale": 1.5, **config})
        with torch.no_grad():
            for _ in range(300):  # torch's spectral norm iterates once per training-mode forward
                model.discriminator(torch.zeros(4, 2 * model.config.pack))
            model.eval()
            torch.testing.assert_close(stacked_points[r], model.generator(z[r]))
            judged = model._pack(x[r]) if model.config.pack == 2 else x[r, :8]
            torch.testing.assert_close(stacked_scores[r], model.discriminator(judged), rtol=1e-4, atol=1e-5)


def test_per_run_adam_equals_torch_adam():
    params = [torch.randn(2, 3, 4, requires_grad=True), torch.randn(2, 3, requires_grad=True)]
    copies = [[p[r].detach().clone().requires_grad_(True) for p in params] for r in range(2)]
    ours = _Adam(params, torch.tensor([1e-2, 3e-3]), (0.5, 0.999))
    theirs = [torch.optim.Adam(c, lr=lr, betas=(0.5, 0.999)) for c, lr in zip(copies, (1e-2, 3e-3))]
    for _ in range(5):
        grads = [torch.randn_like(p) for p in params]
        for p, g in zip(params, grads):
            p.grad = g.clone()
        ours.step()
        for r, (c, opt) in enumerate(zip(copies, theirs)):
            for q, g in zip(c, grads):
                q.grad = g[r].clone()
            opt.step()
    for r in range(2):
        for p, q in zip(params, copies[r]):
            torch.testing.assert_close(p[r].detach(), q.detach())


def test_a_run_trains_the_same_whatever_its_neighbours_do():
    """Run 0 (plain non-saturating) beside another plain run, or beside a run with every trick that
    pads the shared tensors (packing, minibatch std, spectral norm, R1, EMA, its own learning rates):
    the same weights after a few steps. Padded weights get no gradient, the sum of losses gives each
    run its own."""
    data = torch.randn(500, 2)
    everything = {**TRICKS["combined"]["model"], **TRICKS["ttur"]["model"], "spectral_norm": True, "minibatch_std": True}
    results = []
    for neighbour, ema in (({}, None), (everything, 0.9)):
        configs = _configs("ns", "ns")
        configs[1].update(neighbour)
        stack = GANStack(configs, [0, 1], [None, ema], data_scale=1.0)
        rng = torch.Generator().manual_seed(0)
        for _ in range(5):
            stack.train_step(data[torch.randint(0, 500, (2, 32), generator=rng)], rng)
        results.append([p[0].detach() for p in stack.g + stack.d])
    first, second = results
    for a, b in zip(first, second):
        inside = tuple(slice(0, n) for n in a.shape)
        torch.testing.assert_close(a, b[inside], rtol=1e-5, atol=1e-6)
        padding = b.clone()
        padding[inside] = 0  # what run 0 has beside a packed, minibatch-std neighbour: still zero
        assert padding.abs().sum() == 0


def test_run_ablation_scores_every_trick_and_seed():
    train = load_dataset(DataConfig(name="ring8", size=2000, seed=0), "train")
    test = load_dataset(DataConfig(name="ring8", size=500, seed=0), "test")
    tricks = {s: TRICKS[s] for s in ("vanilla", "combined")}
    out = run_ablation(train, tricks, [0, 1], steps=3, batch_size=16, hidden=((16,), (16,)), test=test, samples=200)
    assert out["num_modes"] == 8
    for slug in tricks:
        assert len(out[slug]["modes"]) == 2 and all(0 <= m <= 8 for m in out[slug]["modes"])
        assert out["points"][slug].shape == (200, 2)
