"""Facades, paired vs unpaired (issue 11): pix2pix on the CMP facades pairs against CycleGAN on the
same pairs with the pairing thrown away, same 64 px, same 106 test pairs, same metrics.

    nice -n 10 python benchmarks/cyclegan_facades.py [--steps 4000] [--out runs/bench-cyclegan-facades]

Trains, through ``genlab train`` (lines printed): pix2pix labels -> photo (facades' default
direction), pix2pix photo -> labels (``--data.options.direction=AtoB``), and CycleGAN
``configs/cyclegan_facades.toml`` on ``facades-unpaired`` (both directions at once). Scores each
translation on the test split against the true image: L1 (pixels in [0, 1]) and the existing
distances (Fréchet distance and KID in pixel space, the one offline extractor for facades).
The paper's ordering (paired beats unpaired, Zhu et al. 2017 Table 1-2) should reproduce.
Writes ``benchmarks/results/cyclegan_facades.json``. Needs ../shared/data/facades.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from cyclegan_digits import QUIET, train

from genlab import api

FACADES = "../shared/data/facades"
RESULTS = Path(__file__).parent / "results" / "cyclegan_facades.json"
PIX2PIX = ["--model.num_filters=32", "--model.discriminator_filters=32", "--train.batch_size=4", "--train.log_every=50",
           "--train.eval_batches=8", *QUIET]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--out", type=Path, default=Path("runs/bench-cyclegan-facades"))
    args = p.parse_args()
    steps = f"--train.max_steps={args.steps}"
    results = {}
    for name, direction in (("pix2pix-labels2photo", "BtoA"), ("pix2pix-photo2labels", "AtoB")):
        run = args.out / name
        if not (run / "model").is_dir():
            train("pix2pix", run, [f"--data.options.direction={direction}", steps, *PIX2PIX], data=f"facades:{FACADES}")
        model, spec = api.load_run(run)
        results[name] = api.evaluate(model, api.run_data(spec, None), extractor="pixels")
    run = args.out / "cyclegan-unpaired"
    if not (run / "model").is_dir():
        train("cyclegan", run, [steps, *QUIET], config="configs/cyclegan_facades.toml", data=f"facades-unpaired:{FACADES}")
    model, spec = api.load_run(run)
    results["cyclegan-unpaired"] = api.evaluate(model, api.run_data(spec, None), extractor="pixels")
    RESULTS.write_text(json.dumps(results, indent=1, sort_keys=True, default=str))
    print(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
