"""A GAN on the 8-Gaussian ring, scored by the PacGAN mode-counting protocol.

    python examples/gan_ring.py             # ~4 minutes on 2 CPU cores

Prints modes captured (of 8), the share of high-quality samples (within 3 sigma of a mode) and the
reverse KL of the mode histogram, for 2,500 samples of the EMA generator; writes a scatter of the
samples over the data.
"""
import torch

from genlab.data import load_dataset
from genlab.viz import plot_samples_vs_data
from genlab.metrics import count_modes
from genlab.models import build_model
from genlab.training import TrainConfig, Trainer

ring = load_dataset("ring8", "train")
# the benchmark's best option set (benchmarks/RESULTS.md): PacGAN-2, R1 0.1, cosine decay, EMA generator
gan = build_model("gan", {"x_dim": 2, "latent_dim": 2, "generator_hidden": [256] * 4, "discriminator_hidden": [128] * 3,
                          "pack": 2, "r1_weight": 0.1, "data_scale": ring.info["data_scale"]})
trainer = Trainer(gan, ring, TrainConfig(max_steps=20_000, batch_size=256, lr=1e-3, betas=(0.5, 0.999),
                                         lr_schedule="cosine", ema_decay=0.999, progress=True))
trainer.fit()
with trainer.ema_applied():
    x = gan.sample(2500, generator=torch.Generator().manual_seed(0))
stats = count_modes(x, ring.info["centres"], ring.info["options"]["sigma"])
print(f"modes {stats['modes']:.0f}/8, high quality {100 * stats['high_quality']:.1f}%, reverse KL {stats['reverse_kl']:.3f}")
plot_samples_vs_data(x, ring.x[:2500], "runs/example-gan-ring.png", title="GAN samples (EMA generator) over ring8")
print("wrote runs/example-gan-ring.png")
