"""A convolutional autoencoder with a 2-D code: train it, then draw its latent map.

    python examples/autoencoder.py
"""
from genlab.data import load_dataset
from genlab.models import build_model
from genlab.reports import latent_figure, reconstruction_figure
from genlab.training import TrainConfig, Trainer

train = load_dataset("mnist-embedded", "train")
test = load_dataset("mnist-embedded", "test")
model = build_model("autoencoder", {"architecture": "conv", "channels": [32, 64], "latent_dim": 2, "loss": "bce"})
Trainer(model, train, TrainConfig(epochs=15), eval_data=test, out_dir="runs/example-ae").fit()
model.eval()
reconstruction_figure(model, test, "runs/example-ae/reconstructions.png")
latent_figure(model, test, "runs/example-ae/latent.png")
print("wrote runs/example-ae/{reconstructions,latent}.png")
