"""Generator networks: noise in, a sample (or a distribution over samples) out.

* :class:`MLPGenerator` maps a latent vector through fully connected layers. With 12 hidden layers
  of 100 ReLU units and Glorot initialisation, an *untrained* one already turns 2-D Gaussian noise
  into a strikingly structured distribution (``genlab figure random-generator``).
* :class:`ConvGenerator` is the DCGAN generator (Radford et al. 2016): a linear projection to a
  4x4 (or 7x7 for 28-pixel MNIST) feature map, then x2 up-sampling blocks. ``mode="transposed"``
  uses stride-2 transposed convolutions; ``mode="upsample"`` uses nearest-neighbour up-sampling and
  a 3x3 convolution, which avoids the checkerboard artefacts of transposed convolutions
  (Odena et al. 2016, "Deconvolution and Checkerboard Artifacts").
* :class:`DistributionGenerator` puts an output distribution on top of a generator network: sample
  the input noise *and* sample from the output distribution the network parametrises.
"""
from __future__ import annotations

import math
from typing import Literal, Sequence

import torch
from torch import Tensor, nn
from torch.distributions import Distribution

from ..errors import ConfigError

Activation = Literal["relu", "leaky_relu", "tanh", "elu", "gelu", "silu"]
OutputActivation = Literal["none", "sigmoid", "tanh"]

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "tanh": nn.Tanh, "elu": nn.ELU, "gelu": nn.GELU, "silu": nn.SiLU,
}


def make_activation(name: str) -> nn.Module:
    if name not in _ACTIVATIONS:
        raise ConfigError(f"unknown activation {name!r}; valid: {', '.join(sorted(_ACTIVATIONS))}")
    return _ACTIVATIONS[name](0.2) if name == "leaky_relu" else _ACTIVATIONS[name]()


def make_output_activation(name: str | None) -> nn.Module:
    if name in (None, "none"):
        return nn.Identity()
    if name == "sigmoid":
        return nn.Sigmoid()
    if name == "tanh":
        return nn.Tanh()
    raise ConfigError(f"unknown output activation {name!r}; valid: none, sigmoid, tanh")


def mlp(in_dim: int, hidden_dims: Sequence[int], out_dim: int, *, act: str = "relu", batch_norm: bool = False) -> nn.Sequential:
    """Linear -> [BatchNorm] -> activation for each hidden width, then a final Linear."""
    layers: list[nn.Module] = []
    width = in_dim
    for hidden in hidden_dims:
        layers.append(nn.Linear(width, hidden))
        if batch_norm:
            layers.append(nn.BatchNorm1d(hidden))
        layers.append(make_activation(act))
        width = hidden
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


def glorot_init_(module: nn.Module) -> nn.Module:
    """Glorot/Xavier-uniform weights (Glorot & Bengio 2010) and zero biases for every Linear/Conv."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module


class MLPGenerator(nn.Module):
    """z (B, latent_dim) -> samples (B, *output_shape)."""

    def __init__(
        self,
        latent_dim: int,
        output_shape: int | Sequence[int],
        *,
        hidden_dims: Sequence[int] = (256, 256),
        activation: Activation = "relu",
        output_activation: OutputActivation | None = None,
        batch_norm: bool = False,
        init: Literal["default", "glorot"] = "default",
    ) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.output_shape = (output_shape,) if isinstance(output_shape, int) else tuple(output_shape)
        if latent_dim < 1 or any(d < 1 for d in self.output_shape):
            raise ConfigError(f"MLPGenerator needs positive sizes, got latent_dim={latent_dim}, output_shape={self.output_shape}")
        self.net = mlp(latent_dim, hidden_dims, math.prod(self.output_shape), act=activation, batch_norm=batch_norm)
        self.out = make_output_activation(output_activation)
        if init == "glorot":
            glorot_init_(self.net)

    def forward(self, z: Tensor) -> Tensor:
        return self.out(self.net(z)).view(z.shape[0], *self.output_shape)


def _conv_plan(size: int) -> tuple[int, int]:
    """(start resolution, number of x2 up-samplings) for a square image of side ``size``."""
    if size == 28:
        return 7, 2
    if size >= 8 and size & (size - 1) == 0:
        return 4, int(math.log2(size // 4))
    raise ConfigError(f"ConvGenerator supports image sizes 28 and powers of two from 8 to 256, got {size}")


class ConvGenerator(nn.Module):
    """z (B, latent_dim) -> images (B, C, H, W), DCGAN-style.

    Channels start at ``base_channels * 2**num_upsamplings`` (capped at ``max_channels``) and halve
    at every up-sampling; batch norm and ReLU follow every hidden layer. The output activation
    defaults to sigmoid, for images in [0, 1].
    """

    def __init__(
        self,
        latent_dim: int,
        image_shape: Sequence[int] = (1, 28, 28),
        *,
        mode: Literal["upsample", "transposed"] = "upsample",
        base_channels: int = 64,
        max_channels: int = 512,
        batch_norm: bool = True,
        output_activation: OutputActivation | None = "sigmoid",
        out_channels: int | None = None,
    ) -> None:
        super().__init__()
        if len(image_shape) != 3:
            raise ConfigError(f"image_shape must be (C, H, W), got {tuple(image_shape)}")
        channels, height, width = image_shape
        if height != width:
            raise ConfigError(f"ConvGenerator makes square images, got {height}x{width}")
        if mode not in ("upsample", "transposed"):
            raise ConfigError(f"ConvGenerator mode must be 'upsample' or 'transposed', got {mode!r}")
        start, ups = _conv_plan(height)
        self.latent_dim, self.image_shape, self.mode = latent_dim, (channels, height, width), mode
        self.start = start
        width_at = [min(max_channels, base_channels * 2 ** (ups - i)) for i in range(ups + 1)]
        norm = (lambda c: nn.BatchNorm2d(c)) if batch_norm else (lambda c: nn.Identity())
        self.project = nn.Sequential(
            nn.Linear(latent_dim, width_at[0] * start * start, bias=not batch_norm),
            nn.Unflatten(1, (width_at[0], start, start)),
            norm(width_at[0]),
            nn.ReLU(),
        )
        blocks: list[nn.Module] = []
        for c_in, c_out in zip(width_at[:-1], width_at[1:]):
            if mode == "transposed":
                up: list[nn.Module] = [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=not batch_norm)]
            else:
                up = [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, c_out, 3, padding=1, bias=not batch_norm)]
            blocks.append(nn.Sequential(*up, norm(c_out), nn.ReLU()))
        self.blocks = nn.Sequential(*blocks)
        # out_channels > channels lets a distribution head read per-pixel parameters
        self.to_image = nn.Conv2d(width_at[-1], out_channels or channels, 3, padding=1)
        self.out = make_output_activation(output_activation)

    def forward(self, z: Tensor) -> Tensor:
        h = self.project(z)  # (B, C0, s, s)
        h = self.blocks(h)  # (B, C_last, H, W)
        return self.out(self.to_image(h))


class DistributionGenerator(nn.Module):
    """A generator network whose output parametrises a distribution.

    ``network`` maps z (B, latent_dim) to raw parameters (B, head.num_outputs) (or (B, k*C, H, W)
    for per-pixel heads); ``head(raw)`` returns a ``torch.distributions.Distribution``. The model
    density is then a continuous mixture: p(x) = E_z p(x | z).
    """

    def __init__(self, network: nn.Module, head: nn.Module, latent_dim: int) -> None:
        super().__init__()
        self.network, self.head, self.latent_dim = network, head, latent_dim

    def forward(self, z: Tensor) -> Distribution:
        return self.head(self.network(z))

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None, sample_output: bool = True) -> Tensor:
        """Draw z ~ N(0, I), then x ~ p(x | z) (or the distribution's mean when not ``sample_output``)."""
        device = next(self.parameters()).device
        z = torch.randn(n, self.latent_dim, generator=generator, device=device)
        dist = self(z)
        if not sample_output:
            return dist.mean
        return sample_distribution(dist, generator=generator)


def sample_distribution(dist: Distribution, shape: Sequence[int] = (), *, generator: torch.Generator | None = None) -> Tensor:
    """``dist.sample(shape)`` drawn from ``generator`` when given (torch.distributions only read the
    global RNG, so the global state is forked, seeded from ``generator``, and left untouched)."""
    if generator is None:
        return dist.sample(torch.Size(shape))
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))
    devices = [generator.device] if generator.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        return dist.sample(torch.Size(shape))
