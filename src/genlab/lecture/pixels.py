"""A network's output read as a distribution per pixel (slide 10): a Gaussian head with a learned
variance on images. The network sees a digit at 7 x 7 pixels and predicts every pixel of the 28 x 28
digit as its own Gaussian, N(mean, sigma^2), trained by the Gaussian negative log-likelihood (Nix &
Weigend 1994, "Estimating the mean and variance of the target probability distribution"). The mean is
its best guess; sigma says where it is unsure: on the strokes and at their edges, whose exact place and
shape the coarse input does not fix, and not on the background, which is always black."""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..distributions.heads import make_head
from ..nn.blocks import mlp
from ..reports.pixels import plot_pixel_head
from .core import Conditions, Context, lecture_figure
from .shared import mnist

COARSE = 7  # input resolution


def pixel_masks(images: Tensor) -> tuple[Tensor, Tensor]:
    """Edge and background masks of images (B, 1, H, W) in [0, 1]: edges are the pixels within one
    pixel of a stroke's boundary (stroke = intensity > 0.5), background the pixels more than two
    pixels from any stroke."""
    stroke = (images > 0.5).float()
    dilated = F.max_pool2d(stroke, 3, stride=1, padding=1)
    eroded = -F.max_pool2d(-stroke, 3, stride=1, padding=1)
    edge = (dilated - eroded) > 0
    background = F.max_pool2d((images > 0.05).float(), 5, stride=1, padding=2) == 0
    return edge, background


def _check_pixels(n: dict[str, Any], budget: str) -> Conditions:
    ratio = n["sigma_edge"] / n["sigma_background"]
    return [(f"sigma is high at the edges of the strokes and low on the background: mean sigma {n['sigma_edge']:.3f} on "
             f"edge pixels vs {n['sigma_background']:.4f} on background pixels (ratio {ratio:.0f} >= 5)", ratio >= 5),
            (f"the network is unsure where it errs: across test pixels sigma and |error| correlate at "
             f"r = {n['sigma_error_correlation']:.2f} (>= 0.4)", n["sigma_error_correlation"] >= 0.4),
            (f"its sigma is of the order of its errors on the edges: the standardised error there has RMS "
             f"{n['edge_z_rms']:.2f} (0.5 .. 3)", 0.5 <= n["edge_z_rms"] <= 3),
            (f"a learned sigma is a better density than the best single sigma for all pixels: test NLL "
             f"{n['nll_learned']:.1f} < {n['nll_one_sigma']:.1f} nats per image", n["nll_learned"] < n["nll_one_sigma"])]


@lecture_figure("pixel-gaussians", slides="10",
                claim="An image network whose output is a Gaussian per pixel (a mean and a learned variance) says "
                      "where it is unsure: predicting a digit from a 7 x 7 thumbnail, its standard deviation is "
                      "high on the strokes and their edges, near zero on the background, and it tracks its errors.",
                check=_check_pixels, smoke_note="smoke: 1,000 training steps (full: 6,000)")
def pixel_gaussians(ctx: Context) -> dict[str, Any]:
    torch.manual_seed(ctx.seed)
    train, test = mnist(ctx).x, mnist(ctx, "test").x
    head = make_head("gaussian", (1, 28, 28), scale="softplus", min_scale=0.01)
    net = mlp([COARSE * COARSE, 256, 256, head.num_outputs])
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    generator = ctx.generator(10)

    def coarse(x: Tensor) -> Tensor:
        return F.adaptive_avg_pool2d(x, COARSE).flatten(1)

    steps = ctx.pick(1000, 6000)
    for _ in range(steps):
        batch = train[torch.randint(len(train), (128,), generator=generator)]
        loss = head.mean_nll(net(coarse(batch)), batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    net.eval()
    with torch.no_grad():
        dist = head(net(coarse(test)))
        mean, sigma = dist.mean, dist.stddev  # (B, 1, 28, 28)
        nll_learned = float(-dist.log_prob(test).mean())
        error = test - mean
        # the one sigma that fits these errors best, for every pixel: the RMS error
        one = torch.distributions.Normal(mean, error.pow(2).mean().sqrt())
        nll_one = float(-one.log_prob(test).flatten(1).sum(1).mean())
    edge, background = pixel_masks(test)
    correlation = float(torch.corrcoef(torch.stack([sigma.flatten(), error.abs().flatten()]))[0, 1])
    # the pixels drawn: the edge pixel of the first digit whose sigma is nearest the edges' mean, and a
    # background pixel of it
    typical = float(sigma[edge].mean())
    first_edge = torch.where(edge[0, 0], (sigma[0, 0] - typical).abs(), torch.full_like(sigma[0, 0], float("inf")))
    edge_pixel = divmod(int(first_edge.argmin()), 28)
    background_pixel = divmod(int(torch.nonzero(background[0, 0].flatten())[0]), 28)
    path = plot_pixel_head(coarse(test[:4]).reshape(-1, 1, COARSE, COARSE), test[:4], mean[:4], sigma[:4],
                           {"edge": edge_pixel, "background": background_pixel}, ctx.out / "pixel-gaussians.png")
    return {"paths": [str(path)], "steps": steps, "test_images": len(test),
            "sigma_edge": float(sigma[edge].mean()), "sigma_background": float(sigma[background].mean()),
            # measured, not checked: inside the strokes the thumbnail leaves the network as unsure as at the edges
            "sigma_stroke_inside": float(sigma[(test > 0.5) & ~edge].mean()) if bool(((test > 0.5) & ~edge).any()) else None,
            "error_edge": float(error.abs()[edge].mean()), "error_background": float(error.abs()[background].mean()),
            "edge_z_rms": float((error / sigma)[edge].pow(2).mean().sqrt()),
            "sigma_error_correlation": correlation, "nll_learned": nll_learned, "nll_one_sigma": nll_one,
            "edge_pixel": edge_pixel, "edge_pixel_mean_sigma_target": [float(mean[0, 0][edge_pixel]),
                                                                       float(sigma[0, 0][edge_pixel]),
                                                                       float(test[0, 0][edge_pixel])]}
