"""Facades, paired vs unpaired (issue 11): pix2pix on the CMP facades pairs against CycleGAN on the
same pairs with the pairing thrown away, same 64 px, same 106 test pairs, same metrics.

    nice -n 10 python benchmarks/cyclegan_facades.py [--steps 4000] [--only PART ...] [--threads 1]

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


PARTS = ("pix2pix-labels2photo", "pix2pix-photo2labels", "cyclegan-unpaired")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=4000, help="training steps of every model (batch 4)")
    p.add_argument("--out", type=Path, default=None, help="runs folder (default runs/bench-cyclegan-facades/STEPS)")
    p.add_argument("--only", nargs="+", choices=PARTS, default=list(PARTS),
                   help="train and score only these (two processes can share the work; results merge)")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads of each training")
    args = p.parse_args()
    out = args.out or Path("runs/bench-cyclegan-facades") / str(args.steps)
    common = [f"--train.max_steps={args.steps}"] + ([f"--train.threads={args.threads}"] if args.threads else [])
    for name in args.only:
        run = out / name
        seconds = None
        if not (run / "model").is_dir():
            if name == "cyclegan-unpaired":
                seconds = train("cyclegan", run, [*common, *QUIET], config="configs/cyclegan_facades.toml",
                                data=f"facades-unpaired:{FACADES}")
            else:
                direction = "BtoA" if name == "pix2pix-labels2photo" else "AtoB"
                seconds = train("pix2pix", run, [f"--data.options.direction={direction}", *common, *PIX2PIX],
                                data=f"facades:{FACADES}")
        model, spec = api.load_run(run)
        scores = api.evaluate(model, api.run_data(spec, None), extractor="pixels")
        result = {"steps": args.steps, "train_seconds": seconds, "scores": scores}
        # reread just before writing: another process may have added its part meanwhile
        results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
        results[f"{name}/{args.steps}"] = result
        RESULTS.write_text(json.dumps(results, indent=1, sort_keys=True, default=str))
        print(name, json.dumps(result, indent=1, default=str), flush=True)


if __name__ == "__main__":
    main()
