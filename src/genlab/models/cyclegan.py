"""CycleGAN: unpaired image-to-image translation with two GANs tied by cycle consistency.

Zhu, Park, Isola, Efros, "Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial
Networks", ICCV 2017 (https://arxiv.org/abs/1703.10593). Two generators, ``generator_ab`` (G: A→B)
and ``generator_ba`` (F: B→A), and two PatchGAN discriminators, ``discriminator_a`` (real A vs F(b))
and ``discriminator_b`` (real B vs G(a)). With no pairs to compare against, the generators minimise

    L = L_GAN(G, D_B) + L_GAN(F, D_A) + λ·(|F(G(a)) − a|₁ + |G(F(b)) − b|₁) + λ·w_id·(|G(b) − b|₁ + |F(a) − a|₁)

with λ = ``cycle_weight`` = 10 and w_id = ``identity_weight`` (0.5 in the paper's photo↔painting
runs; it keeps colours, and needs A and B to have the same channels: off for grey↔RGB). The
adversarial loss is least squares (Mao et al., LSGAN, 2017) by default, ``non-saturating`` as an
option; the discriminators' objective is halved, as in the paper, and they see a *history* of
generated images: each discriminator's :class:`ImagePool` holds 50 past fakes and answers a query,
once full, with a stored image half of the time (Shrivastava et al., CVPR 2017), which damps
oscillation. The pools are training state, not model: :meth:`training_extras` hands them to the
Trainer's checkpoints, so a killed run resumes bit-identically (their random choices use torch's
global RNG, which the Trainer saves too).

Training is two phases of the one Trainer: ``generators`` (both, one Adam) then ``discriminators``
(both, one Adam); lr 2e-4, betas (0.5, 0.999), and ``train.lr_schedule="hold-linear"`` gives the
paper's "100 epochs constant, 100 decaying to zero". The discriminator phase judges the fakes the
generator phase of the same step made (detached, as the reference code reuses its forward pass);
called on its own it regenerates them.

``semantic_weight > 0`` adds CyCADA's semantic consistency (Hoffman et al., ICML 2018, Eq. 4): a
frozen classifier f (``semantic_classifier``: CyCADA's source classifier, trained on whichever domain,
A or B, has labels) must give a translation the label it gives the original,
CE(f(G(a)), argmax f(a)) + CE(f(F(b)), argmax f(b)); the domains must share one image shape.
On the unlabelled domain argmax f is only as right as a source-only classifier is there (under
the 28-px MNIST/USPS protocol a MNIST classifier reads about two thirds of USPS digits right and few of
its 9s, benchmarks/RESULTS.md), and that term then asks the translation to keep f's *mistakes*:
``semantic_terms="a"`` (f trained on A) or ``"b"`` keeps only the term whose pseudo-labels f reads on
its own domain; ``semantic_threshold`` keeps both and drops, per image, the pseudo-labels f is unsure
of (a top softmax probability below it), as FixMatch (Sohn et al., NeurIPS 2020) does for its own.
The caller hands the classifier over (:meth:`set_semantic_classifier`; ``genlab train`` loads
the run named by ``semantic_classifier``); it is not part of the saved model. It must be trained on
the labelled source domain alone: the target's labels are never used, in CyCADA or here.

``cycle_noise > 0`` defeats the steganography of Chu, Zhmoginov and Sandler ("CycleGAN, a Master of
Steganography", NIPS 2017 workshop, https://arxiv.org/abs/1712.02950): a generator can pass its input
through the cycle as a low-amplitude signal invisible in G(a), so F(G(a)) ≈ a while G(a) shows another
digit. Following Bashkirova, Usman and Saenko ("Adversarial Self-Defense for Cycle-Consistent GANs",
NeurIPS 2019, https://arxiv.org/abs/1908.01517), the cycle terms read F(G(a) + ε) and G(F(b) + ε),
ε ~ N(0, σ²) with σ = ``cycle_noise`` in [0, 1] pixel units, during training only: a hidden signal
below the noise no longer helps the cycle, so the content must be carried by the visible image.
The translations the adversarial and semantic terms judge stay clean.

``augment`` turns on DiffAugment (Zhao et al., NeurIPS 2020) as for genlab's other GANs: both
discriminators score A(real) and A(fake) (the pools keep clean fakes; each judged batch is augmented
afresh) and the generators learn through A(G(a)), A(F(b)); ``augment_p`` and ``augment_ramp_steps``
set its probability and ramp, whose step count is saved with the weights. The cycle, identity and
semantic terms use the clean images.

Batches are ``(a, b)``, two *unrelated* images in [0, 1] of shapes ``image_shape`` and
``image_shape_b`` (see :mod:`genlab.data.unpaired`); the networks work in [-1, 1], λ multiplies
L1 in that range, and the logged ``cycle_a``/``cycle_b``/``identity`` are in [0, 1] pixel units.
"""
from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, ClassVar, Iterator, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import check
from ..errors import ConfigError, DataError
from ..nn.augment import AugmentConfig, augment_schedule
from ..nn.pixels import as_rgb, to_signed, to_unit
from ..nn.frozen import FrozenInput, FrozenNetwork
from ..nn.resnet import ResnetGenerator
from ..nn.unet import PatchDiscriminator, UNetGenerator
from ..registry import register_model
from .base import Batch, GenerativeModel, LossOutput, Phase, as_images
from .gan import DISCRIMINATOR_LOSSES, GENERATOR_LOSSES

Direction = Literal["a2b", "b2a"]
DIRECTIONS = ("a2b", "b2a")


@dataclasses.dataclass
class CycleGANConfig(AugmentConfig):
    image_shape: tuple[int, int, int] = (3, 64, 64)  # domain A (C, S, S)
    image_shape_b: tuple[int, int, int] | None = None  # domain B (C, S, S); None = image_shape. Same S.
    generator: Literal["resnet", "unet"] = "resnet"
    residual_blocks: int | None = None  # ResNet generator: None = 6 below 256 px, 9 from 256 (the paper)
    num_filters: int = 64  # generator width at full resolution
    discriminator_filters: int = 64
    patch_layers: int | None = None  # stride-2 layers of each PatchGAN; None = 3 (70×70) from 64 px, fewer below
    norm: Literal["instance", "batch", "none"] = "instance"
    gan_loss: Literal["least-squares", "non-saturating"] = "least-squares"
    cycle_weight: float = 10.0  # λ
    identity_weight: float | None = None  # × λ; None = 0.5 when A and B have the same channels, else 0
    pool_size: int = 50  # past fakes per discriminator (0 = judge only the current ones)
    semantic_weight: float = 0.0  # CyCADA's semantic consistency; needs semantic_classifier
    semantic_classifier: str | None = None  # run/model folder of a genlab classifier of the labelled domain (training only)
    semantic_terms: Literal["both", "a", "b"] = "both"  # CyCADA's two terms, or only the one whose pseudo-labels f reads on its own domain
    semantic_threshold: float = 0.0  # pseudo-labels f gives with a top probability below this count zero (0 = CyCADA: all)
    cycle_noise: float = 0.0  # σ of Gaussian noise on G(a), F(b) before the way back, [0, 1] pixels (0 = the paper)
    generator_lr: float | None = 2e-4
    discriminator_lr: float | None = 2e-4
    betas: tuple[float, float] | None = (0.5, 0.999)

    def validate(self) -> None:
        for name in ("image_shape", "image_shape_b"):
            shape = getattr(self, name)
            if shape is None:
                continue
            c, h, w = shape
            check(c >= 1 and h == w, f"model.{name} must be square (C, S, S), got {list(shape)}")
            if self.generator == "resnet":
                check(h >= 8 and h % 4 == 0, f"the ResNet generator needs a size divisible by 4 and >= 8, got model.{name}={list(shape)}; set data.image_size")
            else:
                check(h >= 16 and not h & (h - 1), f"the U-Net generator needs a power-of-two size >= 16, got model.{name}={list(shape)}; set data.image_size")
        check(tuple(self.shape_b[1:]) == tuple(self.image_shape[1:]),
              f"domains A and B must share one image size: {list(self.image_shape)} vs {list(self.shape_b)}; set data.image_size")
        check(self.residual_blocks is None or self.residual_blocks >= 1, f"model.residual_blocks must be >= 1, got {self.residual_blocks}")
        check(self.num_filters >= 1 and self.discriminator_filters >= 1, "model.num_filters and discriminator_filters must be >= 1")
        check(self.patch_layers is None or self.patch_layers >= 1, f"model.patch_layers must be >= 1, got {self.patch_layers}")
        check(self.cycle_weight >= 0, f"model.cycle_weight must be >= 0, got {self.cycle_weight}")
        check(self.identity_weight is None or self.identity_weight >= 0, f"model.identity_weight must be >= 0, got {self.identity_weight}")
        check(not self.identity_weight or self.image_shape[0] == self.shape_b[0],
              f"the identity loss compares G(b) with b, so A and B need the same channels ({self.image_shape[0]} vs "
              f"{self.shape_b[0]}): set model.identity_weight=0, or data.channels to give both domains the same")
        check(self.pool_size >= 0, f"model.pool_size must be >= 0, got {self.pool_size}")
        check(self.semantic_weight >= 0, f"model.semantic_weight must be >= 0, got {self.semantic_weight}")
        check(0 <= self.semantic_threshold < 1, f"model.semantic_threshold must be in [0, 1), got {self.semantic_threshold}")
        check(self.cycle_noise >= 0, f"model.cycle_noise must be >= 0, got {self.cycle_noise}")
        super().validate()
        for name in ("generator_lr", "discriminator_lr"):
            value = getattr(self, name)
            check(value is None or value > 0, f"model.{name} must be > 0, got {value}")

    @property
    def shape_b(self) -> tuple[int, int, int]:
        return tuple(self.image_shape_b or self.image_shape)  # type: ignore[return-value]

    @property
    def resolved_identity_weight(self) -> float:
        if self.identity_weight is not None:
            return self.identity_weight
        return 0.5 if self.image_shape[0] == self.shape_b[0] else 0.0


@contextlib.contextmanager
def _no_parameter_grads(*modules: nn.Module) -> Iterator[None]:
    """Record the graph without gradients for these modules' parameters (inputs still get theirs):
    the generator phase back-propagates *through* the discriminators but never needs their weight
    gradients, which would cost a third of their backward pass (the reference code does the same)."""
    params = [p for m in modules for p in m.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def patch_layers_for_size(size: int) -> int:
    """Stride-2 layers of a PatchGAN at ``size`` px: 3 (70×70 patches) from 64 px, 2 at 32-63, 1 below."""
    return max(1, min(3, size.bit_length() - 4))


class ImagePool:
    """A history of up to ``size`` generated images (Shrivastava et al. 2017; CycleGAN Sec. 4).

    ``query(images)`` stores images while the pool fills and returns them unchanged; once full, each
    image is, with probability 1/2, swapped for a uniformly chosen stored one (returned; the new one
    takes its slot), else returned as is. One batch draws its coins and slots at once from torch's
    global RNG (two slots chosen twice in one batch return the old image twice, the last writer
    stays). Images are stored detached."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.images: Tensor | None = None  # (size, C, H, W) once the first query arrives
        self.count = 0

    def query(self, images: Tensor) -> Tensor:  # (B, C, H, W) -> (B, C, H, W)
        images = images.detach()
        if self.size == 0:
            return images
        if self.images is None:
            self.images = images.new_empty(self.size, *images.shape[1:])
        elif self.images.device != images.device:
            self.images = self.images.to(images.device)
        take = min(self.size - self.count, images.shape[0])
        self.images[self.count : self.count + take] = images[:take]
        self.count += take
        rest = images[take:]
        if rest.shape[0] == 0:
            return images
        swap = torch.rand(rest.shape[0]) < 0.5  # (R,) on the CPU: the RNG the Trainer saves
        slots = torch.randint(self.size, (rest.shape[0],))
        chosen = swap.nonzero().squeeze(1).to(images.device)
        where = slots[swap].to(images.device)
        returned = rest.clone()
        returned[chosen] = self.images[where]
        self.images[where] = rest[chosen]
        return torch.cat([images[:take], returned])

    def state(self) -> Tensor:
        """The stored images, (count, C, H, W) on the CPU (empty (0,) before the first query)."""
        if self.images is None:
            return torch.empty(0)
        return self.images[: self.count].detach().cpu().clone()

    def load_state(self, stored: Tensor) -> None:
        if stored.numel() == 0:
            self.images, self.count = None, 0
            return
        if stored.dim() != 4 or stored.shape[0] > self.size:
            raise DataError(f"an image pool of size {self.size} cannot hold a saved pool of shape {tuple(stored.shape)}")
        self.images = stored.new_empty(self.size, *stored.shape[1:])
        self.images[: stored.shape[0]] = stored
        self.count = stored.shape[0]


@register_model("cyclegan")
class CycleGAN(GenerativeModel):
    """Two generators (A→B, B→A) and two PatchGANs; batches are unpaired ``(a, b)`` in [0, 1]."""

    config_class = CycleGANConfig
    # the paper trains with batch 1; a small batch with instance norm keeps its behaviour and fills the CPU better
    defaults: ClassVar[dict[str, Any]] = {"train": {"batch_size": 4, "lr_schedule": "hold-linear"}}
    frozen_inputs: ClassVar[dict[str, FrozenInput]] = {
        "semantic_classifier": FrozenInput(weight="semantic_weight", setter="set_semantic_classifier")}

    def __init__(self, config: CycleGANConfig) -> None:
        super().__init__(config)
        ca, size = config.image_shape[0], config.image_shape[1]
        cb = config.shape_b[0]
        self.generator_ab = self._generator(ca, cb)
        self.generator_ba = self._generator(cb, ca)
        layers = config.patch_layers or patch_layers_for_size(size)
        disc = dict(num_filters=config.discriminator_filters, layers=layers, norm=config.norm)
        self.discriminator_a = PatchDiscriminator(ca, **disc)
        self.discriminator_b = PatchDiscriminator(cb, **disc)
        self.pool_a, self.pool_b = ImagePool(config.pool_size), ImagePool(config.pool_size)
        # DiffAugment (Zhao et al. 2020): both discriminators judge A(real) vs A(fake), and the generators
        # learn through A(G(a)), A(F(b)); the cycle and identity terms stay on the clean images
        self.augmentation = augment_schedule(config, config.gan_loss)
        self._fakes: tuple[Tensor, Tensor, Tensor, Tensor] | None = None  # (a, b, G(a), F(b)) of the last generator phase
        self._semantic = FrozenNetwork(  # the semantic term's classifier: frozen, not saved, handed over by the caller
            "model.semantic_weight > 0 needs a classifier: set model.semantic_classifier (a classifier run of the "
            "labelled domain) for genlab train, or call set_semantic_classifier(module)")

    def _generator(self, in_channels: int, out_channels: int) -> nn.Module:
        cfg = self.config
        size = cfg.image_shape[1]
        if cfg.generator == "unet":
            return UNetGenerator(in_channels, out_channels, size, num_filters=cfg.num_filters, norm=cfg.norm, dropout=0.0)
        blocks = cfg.residual_blocks or (9 if size >= 256 else 6)
        return ResnetGenerator(in_channels, out_channels, num_filters=cfg.num_filters, residual_blocks=blocks, norm=cfg.norm)

    # ------------------------------------------------------------------ training contract
    def phases(self) -> list[Phase]:
        cfg = self.config
        return [
            Phase("generators", ("generator_ab", "generator_ba"), lr=cfg.generator_lr, betas=cfg.betas),
            Phase("discriminators", ("discriminator_a", "discriminator_b"), lr=cfg.discriminator_lr, betas=cfg.betas),
        ]

    def ema_modules(self) -> list[str]:
        return ["generator_ab", "generator_ba"]

    def training_extras(self) -> dict[str, Any]:
        return {"pool_a": self.pool_a.state(), "pool_b": self.pool_b.state()}

    def load_training_extras(self, state: dict[str, Any]) -> None:
        self.pool_a.load_state(state.get("pool_a", torch.empty(0)))
        self.pool_b.load_state(state.get("pool_b", torch.empty(0)))

    def set_semantic_classifier(self, classifier: nn.Module) -> None:
        """Use ``classifier`` (images in [0, 1] -> logits) for the semantic term; it is frozen, never saved."""
        expected = tuple(self.config.image_shape)
        shape = tuple(getattr(getattr(classifier, "config", None), "image_shape", expected))
        if shape != expected or self.config.shape_b != expected:
            raise ConfigError(f"the semantic classifier takes {list(shape)} images; both domains must be {list(expected)}")
        self._semantic.set(classifier)

    def semantic_classifier(self) -> nn.Module:
        """The frozen classifier of the semantic term, on the model's device. The model does not load
        it: whoever builds the model does (``genlab train`` reads ``model.semantic_classifier``)."""
        return self._semantic.get(self.device)

    def semantic_loss(self, a: Tensor, b: Tensor, fake_b: Tensor, fake_a: Tensor) -> Tensor:
        """CE(f(G(a)), argmax f(a)) + CE(f(F(b)), argmax f(b)), or one of the two (``semantic_terms``);
        every argument signed, [-1, 1]. With ``semantic_threshold`` t > 0 an image whose pseudo-label f
        gives with a top probability below t adds zero, and each term is still the mean over the whole
        batch (FixMatch's masked pseudo-label loss), so fewer confident images weigh less."""
        f, terms, threshold = self.semantic_classifier(), self.config.semantic_terms, self.config.semantic_threshold
        loss = a.new_zeros(())
        for real, fake, side in ((a, fake_b, "a"), (b, fake_a, "b")):
            if terms in ("both", side):
                with torch.no_grad():
                    confidence, labels = f(to_unit(real)).softmax(1).max(1)
                per_image = F.cross_entropy(f(to_unit(fake)), labels, reduction="none")
                loss = loss + (per_image * (confidence >= threshold)).mean()
        return loss

    def _adversarial_generator(self, logits: Tensor) -> Tensor:
        loss = GENERATOR_LOSSES[self.config.gan_loss](logits)
        # gan.py's least squares carries Mao et al.'s 1/2; CycleGAN's generator uses the plain MSE
        return 2 * loss if self.config.gan_loss == "least-squares" else loss

    def _adversarial_discriminator(self, real: Tensor, fake: Tensor) -> Tensor:
        loss = DISCRIMINATOR_LOSSES[self.config.gan_loss](real, fake)
        # halved (paper Sec. 4): gan.py's least squares already is ½(MSE_real + MSE_fake)
        return loss if self.config.gan_loss == "least-squares" else 0.5 * loss

    def cycle_terms(self, a: Tensor, b: Tensor) -> dict[str, Tensor]:
        """Translations and L1 terms in [-1, 1] units for signed ``a``, ``b``: ``fake_b`` = G(a),
        ``fake_a`` = F(b), ``cycle_a`` = |F(G(a)) − a|₁, ``cycle_b`` = |G(F(b)) − b|₁ and, when the
        identity loss is on, ``identity`` = |G(b) − b|₁ + |F(a) − a|₁. In training mode with
        ``cycle_noise`` σ > 0 the way back starts from G(a) + ε and F(b) + ε, ε ~ N(0, (2σ)²) in signed
        units (σ in [0, 1] pixels)."""
        fake_b, fake_a = self.generator_ab(a), self.generator_ba(b)  # (B, C_b, S, S), (B, C_a, S, S)
        back_b, back_a = fake_b, fake_a
        if self.training and self.config.cycle_noise > 0:  # evaluation measures the plain cycle
            sigma = 2 * self.config.cycle_noise  # [0, 1] pixels -> [-1, 1] units
            back_b = fake_b + sigma * torch.randn_like(fake_b)
            back_a = fake_a + sigma * torch.randn_like(fake_a)
        out = {
            "fake_b": fake_b, "fake_a": fake_a,
            "cycle_a": (self.generator_ba(back_b) - a).abs().mean(),
            "cycle_b": (self.generator_ab(back_a) - b).abs().mean(),
        }
        if self.config.resolved_identity_weight > 0:
            out["identity"] = (self.generator_ab(b) - b).abs().mean() + (self.generator_ba(a) - a).abs().mean()
        return out

    def loss(self, batch: Batch, phase: str = "generators") -> LossOutput:
        cfg = self.config
        a = to_signed(as_images(batch[0], cfg.image_shape, "cyclegan domain A"))  # (B, C_a, S, S)
        b = to_signed(as_images(batch[1], cfg.shape_b, "cyclegan domain B"))  # (B, C_b, S, S)
        if phase == "generators":
            t = self.cycle_terms(a, b)
            with _no_parameter_grads(self.discriminator_a, self.discriminator_b):  # this phase steps only G and F
                adv_ab = self._adversarial_generator(self.discriminator_b(self.augmentation(t["fake_b"])))
                adv_ba = self._adversarial_generator(self.discriminator_a(self.augmentation(t["fake_a"])))
            total = adv_ab + adv_ba + cfg.cycle_weight * (t["cycle_a"] + t["cycle_b"])
            terms = {"adv_ab": adv_ab, "adv_ba": adv_ba, "cycle_a": t["cycle_a"] / 2, "cycle_b": t["cycle_b"] / 2}
            if "identity" in t:
                total = total + cfg.cycle_weight * cfg.resolved_identity_weight * t["identity"]
                terms["identity"] = t["identity"] / 4  # mean of the two, in [0, 1] units
            if cfg.semantic_weight > 0:
                terms["semantic"] = self.semantic_loss(a, b, t["fake_b"], t["fake_a"])
                total = total + cfg.semantic_weight * terms["semantic"]
            self._fakes = (batch[0], batch[1], t["fake_b"].detach(), t["fake_a"].detach())
            return LossOutput(total, terms)
        if phase != "discriminators":
            raise ValueError(f"cyclegan has phases 'generators' and 'discriminators', not {phase!r}")
        cached, self._fakes = self._fakes, None
        if cached is not None and cached[0] is batch[0] and cached[1] is batch[1]:
            fake_b, fake_a = cached[2], cached[3]
        else:
            with torch.no_grad():
                fake_b, fake_a = self.generator_ab(a), self.generator_ba(b)
        if self.training:  # evaluation judges the current fakes and leaves the pools alone
            fake_b, fake_a = self.pool_b.query(fake_b), self.pool_a.query(fake_a)
        aug = self.augmentation  # the pools keep clean fakes; each judged batch is augmented anew
        real_a = self.discriminator_a(aug(a))  # in this order (a, F(b), b, G(a)): the augmentations' draws too
        loss_a = self._adversarial_discriminator(real_a, self.discriminator_a(aug(fake_a)))
        real_b = self.discriminator_b(aug(b))
        loss_b = self._adversarial_discriminator(real_b, self.discriminator_b(aug(fake_b)))
        terms = {"loss_a": loss_a, "loss_b": loss_b}
        terms.update(aug.step(self.training, torch.cat([real_a, real_b])))  # one p for both players; a patch map is one image
        return LossOutput(loss_a + loss_b, terms)

    @torch.no_grad()
    def evaluate(self, batch: Batch) -> dict[str, Tensor]:
        """Both phases' terms on an ``(a, b)`` batch of the two domains, as the Trainer's evaluation
        draws it from an unpaired dataset (``UnpairedDataset.batch``); domain A's tensors alone
        (images, or images and labels) are refused in one line instead of failing deep in a network."""
        if len(batch) < 2 or batch[1].dim() != 4:
            got = ", ".join(str(tuple(t.shape)) for t in batch)
            raise DataError(f"cyclegan evaluates (a, b) batches of both domains, as UnpairedDataset.batch draws them; "
                            f"got tensors of shapes {got} (domain A alone?)")
        return super().evaluate(batch)

    # written above the Trainer's samples.png: which image of a cell is which
    preview_caption: ClassVar[str] = ("each cell, top to bottom: a, G(a), F(G(a)) in the first half of the cells; "
                                      "b, F(b), G(F(b)) in the second")

    @torch.no_grad()
    def preview(self, batch: Batch, *, generator: torch.Generator | None = None) -> Tensor:
        """Up to 8 cells a / G(a) / F(G(a)) then 8 cells b / F(b) / G(F(b)), stacked vertically in each cell."""
        rows = self.cycle_rows(batch[0][:8], batch[1][:8])  # (6, k, C, S, S)
        c, s = rows.shape[2], rows.shape[3]
        gap = torch.ones(1, rows.shape[1], c, 1, s, device=rows.device)
        a_cells = torch.cat([rows[0:1], gap, rows[1:2], gap, rows[2:3]], dim=3)[0]  # (k, C, 3S + 2, S)
        b_cells = torch.cat([rows[3:4], gap, rows[4:5], gap, rows[5:6]], dim=3)[0]
        return torch.cat([a_cells, b_cells])

    @torch.no_grad()
    def cycle_rows(self, a: Tensor, b: Tensor) -> Tensor:
        """The lecture's figure: rows a, G(a), F(G(a)), b, F(b), G(F(b)) as (6, k, C, S, S) in [0, 1]
        (grey rows repeated to RGB when the other domain is colour); k = the smaller batch."""
        k = min(a.shape[0], b.shape[0])
        a, b = a[:k].to(self.device), b[:k].to(self.device)
        fake_b, fake_a = self.translate(a, "a2b"), self.translate(b, "b2a")
        rec_a, rec_b = self.translate(fake_b, "b2a"), self.translate(fake_a, "a2b")
        c = max(a.shape[1], b.shape[1])
        return torch.stack([as_rgb(x, c) for x in (a, fake_b, rec_a, b, fake_a, rec_b)])

    # ------------------------------------------------------------------ inference
    def input_shape(self, direction: Direction) -> tuple[int, int, int]:
        if direction not in DIRECTIONS:
            raise DataError(f"direction must be a2b or b2a, got {direction!r}")
        return tuple(self.config.image_shape if direction == "a2b" else self.config.shape_b)  # type: ignore[return-value]

    def translate(self, x: Tensor, direction: Direction = "a2b") -> Tensor:
        """G (``a2b``) or F (``b2a``): (N, C_in, S, S) -> (N, C_out, S, S), both in [0, 1]."""
        expected = self.input_shape(direction)
        if x.dim() != 4 or tuple(x.shape[1:]) != expected:
            raise DataError(f"cyclegan {direction} input must be (N, {', '.join(map(str, expected))}); got {tuple(x.shape)}")
        net = self.generator_ab if direction == "a2b" else self.generator_ba
        return to_unit(net(to_signed(x)))

    def forward(self, a: Tensor) -> Tensor:
        """G(a): (N, C_a, S, S) -> (N, C_b, S, S) in [0, 1]."""
        return self.translate(a, "a2b")
