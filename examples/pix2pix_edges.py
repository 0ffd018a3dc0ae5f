"""pix2pix on edges2digits (edge map of a digit -> the digit), against the L1-only baseline.

    python examples/pix2pix_edges.py        # ~5 minutes on 2 CPU cores

Both models get the same U-Net; pix2pix adds the PatchGAN's adversarial loss to lambda * L1. Prints
the test L1 of each and writes input | L1-only | pix2pix (several stochastic draws) | target rows.
"""
import torch

from genlab.data import load_dataset
from genlab.models import build_model
from genlab.reports.pix2pix import translate_dataset
from genlab.training import TrainConfig, Trainer
from genlab.viz import save_image_grid

train, test = load_dataset("edges2digits", "train"), load_dataset("edges2digits", "test")
shape = list(train.tensors[0].shape[1:])
config = TrainConfig(max_steps=1500, batch_size=32, progress=True)
models = {}
for name, adversarial_weight in (("L1-only", 0.0), ("pix2pix", 1.0)):
    model = build_model("pix2pix", {"input_shape": shape, "image_shape": list(train.tensors[1].shape[1:]),
                                    "num_filters": 16, "discriminator_filters": 16, "adversarial_weight": adversarial_weight})
    Trainer(model, train, config).fit()
    inputs, outputs, targets = translate_dataset(model, test)
    print(f"{name:8s} test L1 {(outputs - targets).abs().mean():.4f}")
    models[name] = model.eval()

a, b = test.tensors[0][:8], test.tensors[1][:8]
l1 = models["L1-only"].translate(a)[:, 0]
draws = models["pix2pix"].translate(a, n=3, stochastic=True, generator=torch.Generator().manual_seed(0))
rows = torch.cat([a.expand_as(b)[:, None], l1[:, None], draws, b[:, None]], dim=1)  # (8, 6, C, H, W)
save_image_grid(rows.flatten(0, 1), "runs/example-pix2pix-edges.png", nrow=rows.shape[1])
print("wrote runs/example-pix2pix-edges.png (input | L1-only | 3 pix2pix draws | target)")
