"""Accuracy of the MNIST classifier under FGSM and PGD (L-inf eps 0.1, 0.2, 0.3; PGD 40 steps with a
random start), for a naturally trained and an adversarially trained model.

Both train with ``genlab.api.train`` (exactly what ``genlab train classifier ...`` runs) on the
embedded subset's 4,000-image split and are attacked on its 1,000 test images. The adversarially
trained model draws fresh PGD examples against the current weights at every step (Madry et al.
2018), mixed 50/50 with clean examples (Goodfellow et al. 2015) to keep clean accuracy on this small
training set. On a shared CPU the default is one PGD step of 1.25 eps from a random start -- the
"fast FGSM" of Wong et al. (2020), "Fast is better than free", which matches multi-step PGD training
at a fraction of the cost; ``--adv-steps 7 --adv-step-size 0.1`` gives Madry's PGD-7 training.

    nice -n 10 python benchmarks/attacks.py --out runs/bench-attacks
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from genlab import api
from genlab.attacks import attack_table, format_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/bench-attacks")
    parser.add_argument("--data", default="mnist-embedded")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--adv-epochs", type=int, default=10)
    parser.add_argument("--adv-eps", type=float, default=0.3)
    parser.add_argument("--adv-steps", type=int, default=1)
    parser.add_argument("--adv-step-size", type=float, default=0.375, help="1.25 * eps for one step")
    parser.add_argument("--adv-weight", type=float, default=0.5, help="share of the loss on adversarial examples")
    parser.add_argument("--adv-name", default="adversarial", help="run folder (under --out) of the adversarial model")
    parser.add_argument("--pgd-steps", type=int, default=40)
    parser.add_argument("--limit", type=int, default=500, help="attack the first N test images (PGD-40 is costly on a CPU)")
    parser.add_argument("--only", choices=["natural", "adversarial"], default=None)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    runs = {
        "natural": [f"train.epochs={args.epochs}"],
        args.adv_name: [f"train.epochs={args.adv_epochs}", "model.adversarial=pgd", f"model.adv_eps={args.adv_eps}",
                        f"model.adv_steps={args.adv_steps}", f"model.adv_step_size={args.adv_step_size}",
                        f"model.adv_weight={args.adv_weight}"],
    }
    results = {}
    for name, overrides in runs.items():
        if args.only and (name == "natural") != (args.only == "natural"):
            continue
        run_dir = out / name
        overrides = [*overrides, "train.progress=false"]
        if (run_dir / "model").is_dir():
            print(f"{name}: reusing {run_dir}")
        elif (run_dir / "checkpoints").is_dir():
            print(f"{name}: genlab train --resume {run_dir}", flush=True)
            api.train(resume=run_dir)
        else:
            print(f"{name}: genlab train classifier --data {args.data} --out {run_dir} " + " ".join(f"--{o}" for o in overrides), flush=True)
            api.train("classifier", data=args.data, out=run_dir, overrides=overrides)
        model, spec = api.load_run(run_dir)
        test = api.run_data(spec, None)
        clean_all = attack_table(model, test.x, test.y, methods=(), eps=())[0]["accuracy"]
        print(f"{name}: clean accuracy on all {len(test)} test images: {100 * clean_all:.2f}%", flush=True)
        results[f"{name}/clean_all"] = clean_all
        test = test.head(args.limit)
        rows = attack_table(model, test.x, test.y, eps=(0.1, 0.2, 0.3), steps=args.pgd_steps)
        results[name] = rows
        (run_dir / "attacks.json").write_text(json.dumps(rows, indent=2))
        print(f"\n{name} ({len(test)} test images)\n" + format_table(rows), flush=True)
    print("\n| model | clean | FGSM 0.1 | FGSM 0.2 | FGSM 0.3 | PGD-40 0.1 | PGD-40 0.2 | PGD-40 0.3 |")
    print("|---|---|---|---|---|---|---|---|")
    for name, rows in results.items():
        if name.endswith("/clean_all"):
            continue
        cells = " | ".join(f"{100 * r['accuracy']:.1f}%" for r in rows)
        print(f"| {name} | {cells} |")


if __name__ == "__main__":
    main()
