"""Bias audit on CelebA faces: do the face autoencoder and VAE reproduce the training data's attribute skews?

    python benchmarks/bias_celeba.py --ae benchmarks/out/runs/ae_celeba64 --vae benchmarks/out/runs/vae_celeba64

For each attribute (default Male, Young, Eyeglasses: about 42 %, 78 % and 6 % of the faces) an
attribute classifier is trained with genlab (``genlab train classifier --data celeba:DIR
--data.options.label=ATTR``, the 9,000 training faces, reused when its run exists). Each sampler —
the VAE from N(0, I), the VAE and the AE from a Gaussian fitted to their training codes — draws
``--samples`` faces, and :func:`genlab.api.audit` compares the classifier's rates on them with the
training labels: raw, through the same classifier on the 1,000 held-out faces, and corrected for
the classifier's confusion. A control row classifies the models' *reconstructions* of the held-out
faces: they carry the models' blur but real attributes, so a shift there is the classifier reacting
to blur rather than the sampler's bias. The CLI equivalent of one sampler row is
``genlab audit RUN --classifier CLF --latent-density gaussian -n 5000``.
Results: benchmarks/results/bias_celeba.json and a table printed for RESULTS.md. Never commit the
faces or anything derived from them beyond these numbers (CelebA's licence).
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import torch

from genlab import api
from genlab.metrics import format_audit

HERE = Path(__file__).resolve().parent


def classifier_run(data: str, attribute: str, out: Path, epochs: int) -> Path:
    run = out / f"classifier-{attribute}"
    if not (run / "model").is_dir():
        api.train("classifier", data=data, out=run, overrides=[
            f"data.options.label={attribute}", "data.image_size=64", "model.channels=[32,64]", "model.kernel_size=3",
            "model.augment_shift=1", f"train.epochs={epochs}", "train.batch_size=128", "train.lr=1e-3",
            "train.progress=false", "train.tensorboard=false", "train.log_every=50"])
    return run


@torch.no_grad()
def classified_rate(classifier, images: torch.Tensor) -> float:
    """Share of ``images`` the (binary) attribute classifier labels 1."""
    return float(torch.cat([classifier.predict(c) for c in images.split(500)]).double().mean())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ae", required=True, help="face autoencoder run folder")
    p.add_argument("--vae", required=True, help="face VAE run folder")
    p.add_argument("--attrs", default="Male,Young,Eyeglasses")
    p.add_argument("--samples", type=int, default=5000)
    p.add_argument("--classifier-epochs", type=int, default=4)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=str(HERE / "out" / "bias_celeba"))
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)
    out = Path(args.out)
    models = {name: api.load_run(path) for name, path in (("AE", args.ae), ("VAE", args.vae))}
    spec = models["AE"][1]
    data = f"celeba:{spec.data.path}"
    train, test = api.run_data(spec, None, "train"), api.run_data(spec, None, "test")
    samplers = [("VAE", None), ("VAE", "gaussian"), ("AE", "gaussian")]
    results: dict = {"args": vars(args), "attributes": {}}
    for attribute in args.attrs.split(","):
        start = time.perf_counter()
        classifier, _ = api.load_run(classifier_run(data, attribute, out, args.classifier_epochs))
        entry: dict = {"classifier_seconds": round(time.perf_counter() - start, 1), "samplers": {}}
        for name, density in samplers:
            model = models[name][0]
            audit = api.audit(model, classifier, train, test, attribute=attribute, num_samples=args.samples,
                              seed=0, latent_density=density)
            label = f"{name} {density or 'N(0, I)'}"
            entry["samplers"][label] = audit
            print(f"== {attribute}: {label} (classifier accuracy {audit['protocol']['classifier_accuracy']:.3f})")
            print(format_audit(audit), flush=True)
        # control: the classifier's rate on *reconstructions* of the held-out faces. They carry the models'
        # blur but the real faces' attributes, so a shift here is the classifier reading blur, not the sampler.
        truth = float(test.y[:, test.info["attr_names"].index(attribute)].double().mean())
        entry["reconstruction_control"] = {"heldout_true_rate": truth}
        with torch.no_grad():
            for name, (model, _) in models.items():
                model.eval()
                recon = torch.cat([model.reconstruct(chunk) for chunk in test.x.split(500)])
                entry["reconstruction_control"][name] = classified_rate(classifier, recon)
        real = classified_rate(classifier, test.x)
        entry["reconstruction_control"]["real"] = real
        print(f"== {attribute}: classified rate on held-out faces {real:.3f} (true {truth:.3f}); on their "
              f"reconstructions AE {entry['reconstruction_control']['AE']:.3f}, VAE {entry['reconstruction_control']['VAE']:.3f}",
              flush=True)
        results["attributes"][attribute] = entry
    path = HERE / "results" / "bias_celeba.json"
    path.write_text(json.dumps(results, indent=1, default=str))
    print(f"wrote {path}")
    print("\n| attribute | sampler | data rate | generated (classified) | real held-out (classified) | z | generated (corrected) | amplification |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for attribute, entry in results["attributes"].items():
        control = entry["reconstruction_control"]
        print(f"| {attribute} | reconstructions of held-out faces (control): AE / VAE | {control['heldout_true_rate']:.3f} | "
              f"{control['AE']:.3f} / {control['VAE']:.3f} | {control['real']:.3f} | | | |")
        for label, audit in entry["samplers"].items():
            row = audit["classes"][1]  # the attribute present
            print(f"| {attribute} | {label} | {row['data_rate']:.3f} | {row['generated_rate']:.3f} "
                  f"[{row['generated_ci95'][0]:.3f}, {row['generated_ci95'][1]:.3f}] | {row['heldout_classified_rate']:.3f} | "
                  f"{row['same_lens_z']:.1f} | {row['generated_rate_corrected']:.3f} | {audit['amplification']:+.3f} |")


if __name__ == "__main__":
    main()
