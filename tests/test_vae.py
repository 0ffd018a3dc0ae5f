"""The VAE's likelihood estimates against an exact log p(x) computed by quadrature over a 1-D latent."""
from __future__ import annotations

import math

import pytest
import torch

from genlab.models import build_model


def _tiny_vae(likelihood: str):
    torch.manual_seed(0)
    vae = build_model("vae", {"image_shape": [1, 2, 3], "latent_dim": 1, "hidden_dims": [16], "likelihood": likelihood,
                              "scale": "softplus"})
    with torch.no_grad():  # a decoder that depends on z strongly enough for the posterior to matter
        for p in vae.parameters():
            p.mul_(1.5)
    return vae.eval()


def _exact_nll(vae, x: torch.Tensor) -> torch.Tensor:
    """-log p(x) = -log integral p(x|z) N(z; 0, 1) dz, by the trapezoid rule on [-10, 10]."""
    z = torch.linspace(-10, 10, 20001, dtype=torch.float64)
    with torch.no_grad():
        raw = vae.decoder(z[:, None].float())
        log_px = vae.head(raw[:, None]).log_prob(x).double()  # (Z, B)
    log_prior = -0.5 * z**2 - 0.5 * math.log(2 * math.pi)
    log_w = log_px + log_prior[:, None] + math.log(float(z[1] - z[0]))
    return -torch.logsumexp(log_w, dim=0)


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_iwae_bound_tightens_with_k_towards_the_exact_likelihood(likelihood):
    vae = _tiny_vae(likelihood)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(6, 1, 2, 3, generator=g)
    if likelihood == "bernoulli":
        x = torch.bernoulli(x, generator=g)
    exact = _exact_nll(vae, x)
    torch.manual_seed(2)
    elbo_nll = torch.stack([-vae.elbo(x) for _ in range(2000)]).mean(0).double()
    torch.manual_seed(3)
    iwae_10 = torch.stack([vae.iwae_nll(x, k=10) for _ in range(200)]).mean(0).double()
    torch.manual_seed(4)
    iwae_5000 = vae.iwae_nll(x, k=5000, max_rows=4096).double()  # 2 draws per row chunk: exercises the chunking
    # each bound is above the truth (up to Monte Carlo error) and k = 5000 is close to it
    assert (elbo_nll >= iwae_10 - 0.05).all() and (iwae_10 >= exact - 0.05).all()
    assert (elbo_nll - exact).mean() > 0.1  # the posterior is not exact, so the bounds do differ
    torch.testing.assert_close(iwae_5000, exact, atol=0.03, rtol=0)


def test_iwae_chunking_does_not_change_the_estimate():
    vae = _tiny_vae("bernoulli")
    x = torch.bernoulli(torch.rand(8, 1, 2, 3, generator=torch.Generator().manual_seed(5)))
    exact = _exact_nll(vae, x).float()
    torch.manual_seed(6)
    whole = vae.iwae_nll(x, k=20000)
    torch.manual_seed(7)
    chunked = vae.iwae_nll(x, k=20000, max_rows=8 * 7)  # 7 draws per chunk, 2,858 chunks (the last one short)
    torch.testing.assert_close(whole, exact, atol=0.02, rtol=0)
    torch.testing.assert_close(chunked, exact, atol=0.02, rtol=0)


def test_kl_warmup_ramps_beta_over_training_steps_only():
    torch.manual_seed(0)
    vae = build_model("vae", {"image_shape": [1, 4, 4], "latent_dim": 2, "hidden_dims": [8], "beta": 2.0, "kl_warmup_steps": 4})
    x = torch.bernoulli(torch.full((5, 1, 4, 4), 0.5))
    betas = [float(vae.loss((x,)).terms["beta"]) for _ in range(6)]
    assert betas == pytest.approx([0.5, 1.0, 1.5, 2.0, 2.0, 2.0])  # beta * min(1, step / 4)
    vae.eval()
    with torch.no_grad():
        vae.loss((x,))
    assert int(vae.steps_trained) == 6  # evaluation does not advance the ramp
    fresh = build_model("vae", vae.config)
    fresh.load_state_dict(vae.state_dict())  # the step count travels with the weights
    assert int(fresh.steps_trained) == 6


def _elbo_terms_by_hand(vae, x: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-example -log p(x|z) and KL(q(z|x) || N(0, I)) for the draw eps that the model makes after
    ``torch.manual_seed(seed)``, written out from the formulas (Bernoulli decoder, closed-form KL)."""
    import torch.nn.functional as F

    with torch.no_grad():
        mu, logvar = vae.posterior(x)  # an MLP without dropout: draws nothing
        torch.manual_seed(seed)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        logits = vae.decoder(z).reshape(x.shape)
    recon = F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
    kl = 0.5 * (mu.square() + logvar.exp() - 1 - logvar).sum(1)
    return recon, kl


def _bernoulli_vae(**kw):
    torch.manual_seed(0)
    return build_model("vae", {"image_shape": [1, 4, 4], "latent_dim": 3, "hidden_dims": [16], **kw})


@pytest.mark.parametrize("beta", [1.0, 0.25])
def test_training_loss_is_recon_plus_beta_kl_on_the_elbos_draw(beta):
    vae = _bernoulli_vae(beta=beta).train()
    x = torch.bernoulli(torch.rand(6, 1, 4, 4, generator=torch.Generator().manual_seed(1)))
    recon, kl = _elbo_terms_by_hand(vae, x, seed=5)
    assert float(kl.mean()) > 0.01  # the KL term is not negligible, so dropping it shows
    torch.manual_seed(5)
    out = vae.loss((x,))
    torch.testing.assert_close(out.total.detach(), recon.mean() + beta * kl.mean())
    torch.testing.assert_close(out.terms["recon"].detach(), recon.mean())
    torch.testing.assert_close(out.terms["kl"].detach(), kl.mean())
    torch.manual_seed(5)
    elbo = vae.elbo(x).detach()  # the same draw: the negative ELBO is recon + KL per example
    torch.testing.assert_close(elbo, -(recon + kl))
    if beta == 1.0:
        torch.testing.assert_close(out.total.detach(), -elbo.mean())


def test_kl_warmup_weights_the_kl_in_the_training_loss():
    vae = _bernoulli_vae(beta=2.0, kl_warmup_steps=4).train()
    x = torch.bernoulli(torch.rand(6, 1, 4, 4, generator=torch.Generator().manual_seed(2)))
    for step in range(1, 7):
        recon, kl = _elbo_terms_by_hand(vae, x, seed=step)
        torch.manual_seed(step)
        out = vae.loss((x,))  # the step-th training step
        weight = 2.0 * min(step, 4) / 4
        torch.testing.assert_close(out.total.detach(), recon.mean() + weight * kl.mean())


def test_reconstruction_gradient_reaches_the_encoder_through_the_sample():
    """The reparametrisation z = mu + eps * sigma keeps z in the graph, so the reconstruction term
    alone trains the encoder: its gradient with respect to the encoder's weights equals the one of
    the same draw written out by hand, and is not zero."""
    import torch.nn.functional as F

    vae = _bernoulli_vae().train()
    x = torch.bernoulli(torch.rand(6, 1, 4, 4, generator=torch.Generator().manual_seed(3)))
    encoder = [p for p in vae.encoder.parameters()]
    mu, logvar = vae.posterior(x)
    torch.manual_seed(9)
    z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
    recon = F.binary_cross_entropy_with_logits(vae.decoder(z).reshape(x.shape), x, reduction="none").flatten(1).sum(1).mean()
    expected = torch.autograd.grad(recon, encoder)
    assert sum(float(g.abs().sum()) for g in expected) > 1e-3
    torch.manual_seed(9)
    out = vae.loss((x,))
    got = torch.autograd.grad(out.terms["recon"], encoder, allow_unused=True)
    assert all(g is not None for g in got), "the reconstruction term does not reach the encoder"
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-6)
