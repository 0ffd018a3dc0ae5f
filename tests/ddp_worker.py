"""Trains a tiny model with a global batch of 16 and saves the final weights; run either as one process
or under torchrun (tests/test_trainer.py and tests/test_faults.py compare the two).

    python ddp_worker.py OUT [FAMILY [MODE RUN_DIR]]

FAMILY: autoencoder (deterministic), vae (reparametrisation noise on dynamically binarized data), gan
(latent draws), pix2pix (dropout). MODE ``resume``: stop after the step-8 log (the step-4 checkpoint on
disk), then resume in RUN_DIR and finish: the weights must equal those of the uninterrupted run.
"""
import os
import sys

import torch

from genlab.checkpoint import save_tensors
from genlab.data import ArrayDataset
from genlab.data.images import dynamic_binarize
from genlab.models import build_model
from genlab.training import TrainConfig, Trainer

torch.set_num_threads(1)
out = sys.argv[1]
family = sys.argv[2] if len(sys.argv) > 2 else "autoencoder"
mode = sys.argv[3] if len(sys.argv) > 3 else "plain"
run_dir = sys.argv[4] if len(sys.argv) > 4 else None
g = torch.Generator().manual_seed(0)
if family == "autoencoder":
    data = ArrayDataset((torch.rand(64, 1, 8, 8, generator=g),))
    config = {"image_shape": [1, 8, 8], "latent_dim": 3, "hidden_dims": [32]}
elif family == "vae":
    data = ArrayDataset((torch.rand(64, 1, 8, 8, generator=g),), transform=dynamic_binarize)
    config = {"image_shape": [1, 8, 8], "latent_dim": 3, "hidden_dims": [32]}
elif family == "gan":
    data = ArrayDataset((torch.randn(64, 2, generator=g),))
    config = {"x_dim": 2, "latent_dim": 2, "generator_hidden": [16, 16], "discriminator_hidden": [16, 16]}
elif family == "pix2pix":  # instance norm: batch norm would normalise over each rank's share only
    data = ArrayDataset((torch.rand(64, 1, 16, 16, generator=g), torch.rand(64, 3, 16, 16, generator=g)))
    config = {"image_shape": [3, 16, 16], "input_shape": [1, 16, 16], "num_filters": 4, "discriminator_filters": 4,
              "norm": "instance"}
else:
    raise SystemExit(f"unknown family {family}")


def train(resume: bool = False, callbacks=None):
    torch.manual_seed(0)
    model = build_model(family, config)
    settings = TrainConfig(batch_size=16, max_steps=12, lr=1e-2, progress=False, tensorboard=False, device="cpu",
                           eval_every=10**6, sample_every=10**6, checkpoint_every=4 if run_dir else 10**6, log_every=4)
    Trainer(model, data, settings, out_dir=run_dir, callbacks=callbacks).fit(resume=resume)
    return model


class Stop(Exception):
    pass


def stop_at_8(trainer, event, info):  # every rank logs: all stop at the same step
    if event == "log" and info["step"] == 8:
        raise Stop


if mode == "resume":
    try:
        train(callbacks=[stop_at_8])
    except Stop:
        pass
    model = train(resume=True)
else:
    model = train()
if int(os.environ.get("RANK", "0")) == 0:
    save_tensors(out, model.state_dict())
