"""Train a VAE on the embedded MNIST subset, then sample, reconstruct and estimate log-likelihood.

    python examples/vae_mnist.py            # ~1-2 minutes on 2 CPU cores
"""
import torch

import genlab
from genlab.data import load_dataset
from genlab.models import build_model
from genlab.training import TrainConfig, Trainer
from genlab.viz import save_image_grid

train = load_dataset("mnist-embedded", "train")
test = load_dataset("mnist-embedded", "test")
vae = build_model("vae", {"latent_dim": 16, "likelihood": "bernoulli"})
Trainer(vae, train, TrainConfig(epochs=20, progress=True), eval_data=test, out_dir="runs/example-vae").fit()

vae = genlab.load("runs/example-vae")  # the saved artifact: config.json + model.safetensors
x = test.x[:200]
with torch.no_grad():
    print(f"test ELBO {vae.elbo(x).mean():.1f} nats, IWAE-NLL (k=500) {vae.iwae_nll(x, k=500).mean():.1f} nats")
    save_image_grid(vae.sample(64, generator=torch.Generator().manual_seed(0)), "runs/example-vae/example-samples.png")
    save_image_grid(torch.cat([x[:16], vae.reconstruct(x[:16])]), "runs/example-vae/example-reconstructions.png", nrow=16)
