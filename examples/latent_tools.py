"""Latent-space tools on a trained model: interpolation (lerp vs slerp), a 4-corner grid, an attribute
vector from a few labelled examples, sampling from a density fitted to the codes, and projection.

    genlab train vae                        # writes runs/vae-mnist-embedded (the quick start)
    python examples/latent_tools.py [RUN]   # any run whose model can decode: AE, VAE, GAN generator

On faces (genlab train vae --config configs/vae_celeba64.toml --data celeba:PATH) the attribute is a
CelebA attribute (genlab attribute RUN --attr Smiling); on digits this script uses "is a 7".
"""
import sys

import torch

import genlab
from genlab.data import load_dataset
from genlab.latent import (apply_attribute, attribute_vector, fit_latent_density, interpolation_grid,
                           interpolation_strip, project, sample_images)
from genlab.viz import save_image_grid

run = sys.argv[1] if len(sys.argv) > 1 else "runs/vae-mnist-embedded"
model = genlab.load(run).eval()
train, test = load_dataset("mnist-embedded", "train"), load_dataset("mnist-embedded", "test")
g = torch.Generator().manual_seed(0)

with torch.no_grad():
    z = model.encode(test.x[:4]) if hasattr(model, "encode") else torch.randn(4, model.latent_dim, generator=g)
    strips = [interpolation_strip(model, z[0], z[1], steps=10, method=m) for m in ("lerp", "slerp")]
    save_image_grid(torch.cat(strips), f"{run}/example-interpolation.png", nrow=10)
    save_image_grid(interpolation_grid(model, z, steps=8), f"{run}/example-grid.png", nrow=8)

    if hasattr(model, "encode"):
        sevens, others = train.x[train.y == 7][:20], train.x[train.y != 7][:20]
        v = attribute_vector(model, sevens, others)
        edits = apply_attribute(model, test.x[test.y != 7][:6], v, scales=[-1, 0, 0.5, 1, 1.5, 2])
        save_image_grid(edits.flatten(0, 1), f"{run}/example-attribute.png", nrow=edits.shape[1])
        density = fit_latent_density(model, train.x, "gaussian")
        save_image_grid(sample_images(model, density, 64, generator=g), f"{run}/example-fitted-gaussian.png")

found = project(model, test.x[:8], steps=200, generator=g)  # optimisation from z = 0, any generator
print(f"projection: mean squared pixel error {found.error.mean():.4f} on 8 held-out images")
save_image_grid(torch.cat([test.x[:8], found.images]), f"{run}/example-projection.png", nrow=8)
print(f"wrote {run}/example-*.png")
