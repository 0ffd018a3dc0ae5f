"""Trains tiny models with a global batch of 16 and saves their final weights; run either as one process
or under torchrun (tests/test_faults.py compares the two).

    python ddp_worker.py OUT_DIR FAMILY[,FAMILY...]

FAMILY: autoencoder (deterministic), vae (reparametrisation noise on dynamically binarized data), gan
(latent draws), pix2pix (dropout), cyclegan (a history pool per rank), and FAMILY-resume: the run stopped
after its step-8 log (the step-4 checkpoint on disk) and resumed, whose weights must equal the
uninterrupted run's. One launch trains
them all, so the test pays for starting the process group once.
"""
import os
import sys
from pathlib import Path

import torch

from genlab.checkpoint import save_tensors
from genlab.data import ArrayDataset
from genlab.data.images import dynamic_binarize
from genlab.data.unpaired import unpaired_dataset
from genlab.models import build_model
from genlab.training import TrainConfig, Trainer

torch.set_num_threads(1)
g = torch.Generator().manual_seed(0)
images = torch.rand(64, 1, 8, 8, generator=g)
CASES = {  # family -> (model config, training data)
    "autoencoder": ({"image_shape": [1, 8, 8], "latent_dim": 3, "hidden_dims": [32]}, ArrayDataset((images,))),
    "vae": ({"image_shape": [1, 8, 8], "latent_dim": 3, "hidden_dims": [32]}, ArrayDataset((images,), transform=dynamic_binarize)),
    "gan": ({"x_dim": 2, "latent_dim": 2, "generator_hidden": [16, 16], "discriminator_hidden": [16, 16]},
            ArrayDataset((torch.randn(64, 2, generator=g),))),
    # no norm layers: batch norm normalises over each rank's share of the batch only, and the conv biases
    # an instance norm cancels get float-noise gradients that Adam scales up to lr-sized steps
    "pix2pix": ({"image_shape": [3, 16, 16], "input_shape": [1, 16, 16], "num_filters": 4, "discriminator_filters": 4,
                 "norm": "none"},
                ArrayDataset((torch.rand(64, 1, 16, 16, generator=g), torch.rand(64, 3, 16, 16, generator=g)))),
    # image pools of 50 per discriminator, filled by each rank with its own fakes
    "cyclegan": ({"image_shape": [1, 16, 16], "num_filters": 4, "discriminator_filters": 4, "residual_blocks": 1,
                  "norm": "none", "pool_size": 50},
                 unpaired_dataset(torch.rand(64, 1, 16, 16, generator=g), torch.rand(48, 1, 16, 16, generator=g), "toy")),
}


class Stop(Exception):
    pass


def stop_at_8(trainer, event, info):  # every rank logs: all stop at the same step
    if event == "log" and info["step"] == 8:
        raise Stop


def train(family: str, run_dir: Path | None = None, *, resume: bool = False, callbacks=None):
    config, data = CASES[family]
    torch.manual_seed(0)
    model = build_model(family, config)
    settings = TrainConfig(batch_size=16, max_steps=12, lr=1e-2, progress=False, tensorboard=False, device="cpu",
                           eval_every=10**6, sample_every=10**6, checkpoint_every=4 if run_dir else 10**6, log_every=4)
    Trainer(model, data, settings, out_dir=run_dir, callbacks=callbacks).fit(resume=resume)
    return model


out_dir = Path(sys.argv[1])
for family in sys.argv[2].split(","):
    if family.endswith("-resume"):
        base, run_dir = family.removesuffix("-resume"), out_dir / f"{family}-run"
        try:
            train(base, run_dir, callbacks=[stop_at_8])
        except Stop:
            pass
        model = train(base, run_dir, resume=True)
    else:
        model = train(family)
    if int(os.environ.get("RANK", "0")) == 0:
        save_tensors(out_dir / f"{family}.safetensors", model.state_dict())
