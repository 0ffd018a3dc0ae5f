"""DCGAN on MNIST / Fashion-MNIST: Fréchet distance, KID, precision/recall and density/coverage in
the features of genlab's MNIST classifier, against the test split.

    GENLAB_DATA=../shared/data nice -n 10 python benchmarks/gan_mnist.py --data mnist --steps 2000

Steps: (1) a feature classifier (genlab ``classifier``) is trained on the training split, or reused
with ``--classifier RUN``; its test accuracy is reported, since the features are only as good as it;
(2) a DCGAN (conv G and D, non-saturating loss, Adam 2e-4 / betas (0.5, 0.999), EMA generator) is
trained through ``genlab.api.train`` (the run folder gets sample grids and curves); (3) the GAN
evaluator scores ``--num-samples`` generated images against as many test images. Reference rows in
the same feature space: the training split against the test split (the floor a perfect generator
reaches at this N) and a VAE's samples (``--vae RUN``, or the default MLP VAE trained here). Writes benchmarks/results/gan_mnist-DATA.json.
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import torch

from genlab import api
from genlab.data import DataConfig, load_dataset
from genlab.metrics import compare_features, get_extractor


def train_classifier(data: str, out: Path, epochs: int) -> Path:
    run = out / f"classifier-{data}"
    if (run / "model").is_dir():
        return run
    api.train("classifier", data=data, out=run, overrides=[
        f"train.epochs={epochs}", "train.batch_size=128", "train.lr=1e-3", "train.progress=false",
        "train.tensorboard=false", "train.log_every=100"])
    return run


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="mnist", choices=["mnist", "fashion-mnist", "mnist-embedded"])
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--generator-channels", type=int, default=16, help="generator base width (the cost of a step is mostly here)")
    p.add_argument("--discriminator-channels", type=int, default=32)
    p.add_argument("--ema-decay", type=float, default=0.995)
    p.add_argument("--latent-dim", type=int, default=64)
    p.add_argument("--num-samples", type=int, default=5000)
    p.add_argument("--classifier", help="run folder of a trained classifier (default: train one)")
    p.add_argument("--classifier-epochs", type=int, default=1)
    p.add_argument("--run-name", help="GAN run folder name under --out (default dcgan-DATA); an unfinished run is resumed")
    p.add_argument("--vae", help="run folder of a VAE trained on the same data, scored the same way")
    p.add_argument("--vae-epochs", type=int, default=2, help="train the default VAE this long when --vae is not given (0 = skip)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0, help="the GAN's train.seed (initial weights, data order, noise)")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32", help="the GAN's train.precision")
    p.add_argument("--tag", default="", help="suffix of the results file name")
    p.add_argument("--out", default="benchmarks/out/gan_mnist")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)
    out = Path(args.out)
    result: dict = {"args": vars(args)}

    start = time.perf_counter()
    classifier_run = Path(args.classifier) if args.classifier else train_classifier(args.data, out, args.classifier_epochs)
    test = load_dataset(DataConfig(name=args.data), "test")
    classifier, _ = api.load_run(classifier_run)
    result["classifier"] = {"run": str(classifier_run), **api.evaluate(classifier, test)}
    print(f"feature classifier {classifier_run}: test accuracy {result['classifier']['accuracy']:.4f} "
          f"({time.perf_counter() - start:.0f}s)", flush=True)

    start = time.perf_counter()
    gan_run = out / (args.run_name or f"dcgan-{args.data}")
    overrides = [f"model.latent_dim={args.latent_dim}", f"model.generator_channels={args.generator_channels}",
                 f"model.discriminator_channels={args.discriminator_channels}", f"train.max_steps={args.steps}",
                 f"train.batch_size={args.batch_size}", f"train.ema_decay={args.ema_decay}", "train.progress=false",
                 "train.tensorboard=false", "train.log_every=100", f"train.sample_every={max(args.steps // 6, 1)}",
                 f"train.checkpoint_every={max(args.steps // 3, 1)}", "train.eval_batches=4", f"train.eval_every={max(args.steps // 6, 1)}",
                 f"train.seed={args.seed}", f"train.precision={args.precision}"]
    if (gan_run / "checkpoints").is_dir() and not (gan_run / "model").is_dir():
        # an interrupted run: continue it from its last checkpoint up to --steps
        api.train(resume=gan_run, overrides=[f"train.max_steps={args.steps}"])
    elif not (gan_run / "model").is_dir():
        api.train("gan", data=args.data, out=gan_run, overrides=overrides)
    result["gan_train_seconds"] = time.perf_counter() - start
    gan, _ = api.load_run(gan_run)
    n = min(args.num_samples, len(test))
    options = {"num_samples": n, "extractor": "classifier", "extractor_path": str(classifier_run), "seed": 0}
    result["dcgan"] = api.evaluate(gan, test, **options)
    print(f"DCGAN ({args.steps} steps, {result['gan_train_seconds']:.0f}s): " + _line(result["dcgan"]), flush=True)

    extract = get_extractor("classifier", path=str(classifier_run))
    reference = extract(test.x[:n]).numpy()
    train = load_dataset(DataConfig(name=args.data), "train")
    result["train_split"] = compare_features(extract(train.x[:n]).numpy(), reference, protocol={
        "reference": f"test split of {args.data} (first {n})", "generated": f"training split (first {n})",
        "extractor": extract.description})
    print("training split vs test (floor): " + _line(result["train_split"]), flush=True)
    vae_run = args.vae
    if vae_run is None and args.vae_epochs > 0:  # the default MLP VAE (Bernoulli decoder, 16-d latent, dynamically binarized data)
        vae_run = str(out / f"vae-{args.data}")
        if not (Path(vae_run) / "model").is_dir():
            api.train("vae", data=args.data, out=vae_run, overrides=[
                f"train.epochs={args.vae_epochs}", "train.batch_size=128", "train.progress=false", "data.binarize=dynamic",
                "train.tensorboard=false", "train.log_every=100"])
    if vae_run:
        vae, _ = api.load_run(vae_run)
        samples = api.sample(vae, n, seed=0)
        result["vae"] = compare_features(extract(samples).numpy(), reference, protocol={
            "reference": f"test split of {args.data} (first {n})", "generated": f"VAE samples (decoder means) {vae_run}",
            "extractor": extract.description})
        print("VAE: " + _line(result["vae"]), flush=True)
    path = Path("benchmarks/results") / f"gan_mnist-{args.data}{args.tag}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1, default=float))
    print(f"wrote {path}; GAN run folder {gan_run}")


def _line(r: dict) -> str:
    return (f"FID {r['fid']:.3f}  KID {r['kid']:.4f} ± {r['kid_std']:.4f}  precision {r['precision']:.3f}  "
            f"recall {r['recall']:.3f}  density {r['density']:.3f}  coverage {r['coverage']:.3f}  "
            f"(N={r['protocol']['num_generated']} vs {r['protocol']['num_reference']})")


if __name__ == "__main__":
    main()
