"""Trains a tiny VAE from a memory-mapped image store and a tiny GAN, with a global batch of 16, and
saves the final weights; run as one process or as one rank per "node" (tests/test_multinode.py).

    python multinode_worker.py IMAGE_FOLDER OUT_DIR

The VAE reads the folder through ``data.storage=mmap`` with dynamic binarization, so each rank opens
its own node's store and reads only its rows of each batch; the GAN's latents are drawn for the global
batch and sliced by rank (genlab.runtime), so any number of ranks trains the weights one process trains.
"""
import os
import sys
from pathlib import Path

import torch

from genlab.checkpoint import save_tensors
from genlab.data import ArrayDataset, DataConfig, load_dataset
from genlab.data.store import StoredDataset
from genlab.models import build_model
from genlab.training import TrainConfig, Trainer

torch.set_num_threads(1)
folder, out_dir = Path(sys.argv[1]), Path(sys.argv[2])
images = load_dataset(DataConfig(name="folder", path=str(folder), storage="mmap", binarize="dynamic"), "train")
assert isinstance(images, StoredDataset), type(images)
g = torch.Generator().manual_seed(0)
CASES = {  # family -> (model config, training data)
    "vae": ({"image_shape": list(images.info["image_shape"]), "latent_dim": 3, "hidden_dims": [32]}, images),
    "gan": ({"x_dim": 2, "latent_dim": 2, "generator_hidden": [16, 16], "discriminator_hidden": [16, 16]},
            ArrayDataset((torch.randn(64, 2, generator=g),))),
}
for family, (config, data) in CASES.items():
    torch.manual_seed(0)
    model = build_model(family, config)
    settings = TrainConfig(batch_size=16, max_steps=12, lr=1e-2, progress=False, tensorboard=False, device="cpu",
                           eval_every=10**6, sample_every=10**6, checkpoint_every=10**6, log_every=4)
    Trainer(model, data, settings).fit()
    if int(os.environ.get("RANK", "0")) == 0:
        save_tensors(out_dir / f"{family}.safetensors", model.state_dict())
