"""Trains a tiny autoencoder with a global batch of 16 and saves the final weights; run either as one
process or under torchrun (tests/test_trainer.py compares the two)."""
import os
import sys

import torch

from genlab.checkpoint import save_tensors
from genlab.data import ArrayDataset
from genlab.models import build_model
from genlab.training import TrainConfig, Trainer

torch.set_num_threads(1)
out = sys.argv[1]
g = torch.Generator().manual_seed(0)
data = ArrayDataset((torch.rand(64, 1, 8, 8, generator=g),))
torch.manual_seed(0)
model = build_model("autoencoder", {"image_shape": [1, 8, 8], "latent_dim": 3, "hidden_dims": [32]})
config = TrainConfig(batch_size=16, max_steps=12, lr=1e-2, progress=False, tensorboard=False, device="cpu",
                     eval_every=10**6, sample_every=10**6, checkpoint_every=10**6, log_every=4)
trainer = Trainer(model, data, config)
trainer.fit()
if int(os.environ.get("RANK", "0")) == 0:
    save_tensors(out, model.state_dict())
