"""Validate genlab's two face rulers on CelebA: every degradation must raise the distance, in both.

    # tiny, to check that it runs (about 4 minutes on a busy core):
    python benchmarks/face_rulers.py --data ../shared/data/celeba-10k --train-images 1000 --epochs 1 --tag tiny
    # the full protocol, one thread (24 min measured 2026-12-04: 10 epochs of 8,000 faces; attributes 7 min, ssl 15, the ladder 2):
    taskset -c 1 python benchmarks/face_rulers.py --data ../shared/data/celeba-10k --threads 1

Protocol (the baseline it replaces: the Fréchet distance in three binary attribute classifiers'
features, whose StyleGAN-vs-DCGAN ranking flipped between rounds and which was the only view):

1. Splits of the 10,000-face CelebA subset at 64 px, in file order (:func:`genlab.metrics.rulers.face_splits`):
   images 1-8,000 train the rulers (``--train-images`` takes the first N of them), 8,001-9,000 are
   the held-out real set (the floor: real faces no ruler saw), 9,001-10,000 are the reference set of
   every metric (the ``test`` split of genlab's face benchmarks, also never seen by a generator).
2. Two rulers, trained by their shipped recipes and cached under ``--cache`` by a fingerprint of
   recipe and data (a second run loads them): ``attributes`` (ResNet, 40-attribute BCE, seed 0) and
   ``ssl`` (SimCLR conv net, no labels, seed 1). Their feature spaces are checked by a 10-NN
   attribute probe: held-out faces get each attribute by majority vote of their 10 nearest
   reference faces; the mean balanced accuracy over the 40 attributes is reported (0.5 = blind).
3. The ladder on the held-out set, each rung scored against the reference in both rulers' features
   (FD, KID mean and std over 50 subsets of 500, precision/recall k=3, density/coverage k=5):
   Gaussian blur sigma 0.5/1/2 px, Gaussian noise std 0.02/0.05/0.1, JPEG quality 30/10/3,
   25/50/75 % of the faces replaced by their sigma-2 blurred copies (a stand-in for a worse model),
   and the ``--drop-attribute`` mode (default Male) half and wholly removed at equal set size.
   The undegraded held-out set is the floor. A family passes when FD and KID rise strictly along it
   in both rulers.
Writes benchmarks/results/face_rulers.json (or face_rulers-TAG.json with ``--tag``; numbers only: never commit faces or anything made from them).
Without the data it says so and exits 0.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genlab.metrics import rulers as R

HERE = Path(__file__).resolve().parent


def attribute_probe(query: np.ndarray, query_labels: np.ndarray, bank: np.ndarray, bank_labels: np.ndarray, k: int = 10) -> float:
    """Mean over attributes of the balanced accuracy of a k-NN majority vote (features standardised)."""
    mu, sd = bank.mean(0), bank.std(0) + 1e-8
    q, b = torch.from_numpy((query - mu) / sd), torch.from_numpy((bank - mu) / sd)
    neighbours = torch.cdist(q, b).topk(k, largest=False).indices.numpy()  # (Q, k)
    predicted = bank_labels[neighbours].mean(1) > 0.5  # (Q, A)
    truth = query_labels.astype(bool)
    correct = predicted == truth
    tpr = (correct & truth).sum(0) / np.maximum(truth.sum(0), 1)
    tnr = (correct & ~truth).sum(0) / np.maximum((~truth).sum(0), 1)
    both = (truth.sum(0) > 0) & ((~truth).sum(0) > 0)
    return float(((tpr + tnr) / 2)[both].mean())


def table(result: dict[str, Any]) -> str:
    """The ladder as Markdown: one row per rung, then whether each family rises in each ruler."""
    rulers = list(result["rulers"])
    lines = ["| family | level | n | " + " | ".join(f"{r} FD | {r} KID | {r} precision | {r} density" for r in rulers) + " |",
             "|---|---:|---:|" + "---:|" * (4 * len(rulers))]

    def cells(row: dict[str, Any]) -> str:
        return " | ".join(f"{row[r]['fid']:.4g} | {row[r]['kid']:.3g} | {row[r]['precision']:.3f} | {row[r]['density']:.3f}" for r in rulers)

    families = result["ladder"]["families"]
    for family, entry in families.items():
        for row in entry["rows"]:
            lines.append(f"| {family} | {row['level']:g} | {row['n']} | {cells(row)} |")
    names = list(next(iter(families.values()))["checks"])
    lines += ["", "| family | " + " | ".join(names) + " | both rulers |", "|---|" + "---|" * (len(names) + 1)]
    for family, entry in families.items():
        flags = " | ".join("rises" if entry["checks"][n]["monotone"] else "**not monotone**" for n in names)
        lines.append(f"| {family} | {flags} | {'pass' if entry['both_rulers_monotone'] else '**fail**'} |")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="../shared/data/celeba-10k", help="the CelebA folder (zip + list_attr_celeba*.txt)")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--train-images", type=int, default=None, help="train the rulers on the first N of the 8,000 (default all)")
    p.add_argument("--epochs", type=int, default=None, help="override both recipes' epochs (default: the recipes')")
    p.add_argument("--rulers", nargs="+", default=list(R.DEFAULT_RULERS), choices=sorted(R.RULER_RECIPES))
    p.add_argument("--drop-attribute", default="Male")
    p.add_argument("--kid-subsets", type=int, default=50)
    p.add_argument("--kid-subset-size", type=int, default=500, help="of the 1,000 faces: subsets of all 1,000 would all be equal")
    p.add_argument("--cache", default=None, help="ruler cache folder (default $GENLAB_CACHE/rulers)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--tag", default=None, help="results file suffix: face_rulers-TAG.json (default face_rulers.json)")
    p.add_argument("--out", default=None, help="results file (default benchmarks/results/face_rulers[-TAG].json)")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    args.out = args.out or str(HERE / "results" / (f"face_rulers-{args.tag}.json" if args.tag else "face_rulers.json"))
    if not Path(args.data).exists():
        print(f"skipped: no CelebA folder at {args.data} (pass --data)")
        return 0
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    splits = R.face_splits(args.data, image_size=args.image_size, train_limit=args.train_images)
    train, heldout, reference = splits["ruler_train"], splits["heldout"], splits["reference"]
    result: dict[str, Any] = {"args": vars(args), "torch": torch.__version__,
                              "splits": {"ruler_train": [train.info["filenames"][0], train.info["filenames"][-1], len(train)],
                                         "heldout": [heldout.info["filenames"][0], heldout.info["filenames"][-1], len(heldout)],
                                         "reference": [reference.info["filenames"][0], reference.info["filenames"][-1], len(reference)]},
                              "rulers": {}}
    rulers = []
    for name in args.rulers:
        t0 = time.perf_counter()
        ruler = R.build_ruler(name, train, cache=args.cache, epochs=args.epochs, threads=args.threads)
        seconds = time.perf_counter() - t0
        ref_features = ruler.features(reference.x)
        probe = attribute_probe(ruler.features(heldout.x), heldout.tensors[1].numpy(), ref_features, reference.tensors[1].numpy())
        result["rulers"][name] = {"fingerprint": ruler.fingerprint, "weights": ruler.weights, "folder": str(ruler.folder),
                                  "trained_now": ruler.trained_now,
                                  "seconds": seconds, "recipe": dataclasses.asdict(ruler.recipe),
                                  "feature_dim": int(ref_features.shape[1]), "knn_attribute_balanced_accuracy": probe}
        if name == "attributes":
            with torch.no_grad():
                logits = torch.cat([ruler.model(c) for c in heldout.x.split(500)])
            result["rulers"][name]["heldout_attribute_accuracy"] = float(((logits > 0).long() == heldout.tensors[1]).float().mean())
        print(f"ruler {name}: {'trained' if ruler.trained_now else 'loaded'} in {seconds:.0f}s, "
              f"10-NN attribute probe {probe:.3f}", flush=True)
        rulers.append(ruler)
    spec = R.LadderSpec(drop_attribute=args.drop_attribute)
    ladder = R.degradation_ladder(heldout.x, labels=heldout.tensors[1], attr_names=heldout.info["attr_names"], spec=spec)
    result["ladder_spec"] = dataclasses.asdict(spec)
    result["ladder"] = R.run_ladder(rulers, ladder, reference.x, floor=heldout.x, kid_subsets=args.kid_subsets,
                                    kid_subset_size=args.kid_subset_size)
    result["seconds"] = time.perf_counter() - start
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1, default=float))
    print(table(result))
    print(f"all families monotone in both rulers: {result['ladder']['all_monotone']}; {result['seconds']:.0f}s; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
