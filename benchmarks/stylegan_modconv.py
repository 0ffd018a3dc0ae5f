"""Which form of the modulated convolution is fastest on a CPU? Times StyleGAN's synthesis network
(forward + backward, the generator phase's work) with each variant, interleaved, on one thread.

    taskset -c 1 nice -n 10 python benchmarks/stylegan_modconv.py --repeats 5

Variants (all compute the same numbers; tests/test_stylegan.py checks grouped == scaled):
  grouped        per-sample weights (B, O, I, k, k), demodulated, ONE convolution with B groups
  scaled         x * style, one shared-weight convolution, output * demodulation coefficients
  *-cl           the same in channels-last memory format
  *-bf16         the same under bf16 autocast (train.precision=bf16; weights and gradients stay fp32)
  *-compile      torch.compile of the synthesis network (skipped if the compiler is unavailable)
The issue's reference config is the default: 32 px, channel base 4096, max 128, z = w = 128, mapping 2,
batch 32; ``scaled`` (fp32, contiguous) is what genlab trained with before bf16 and channels-last.
It also profiles one generator step of the chosen form (top operators by self CPU time).
Writes benchmarks/results/stylegan_modconv.json.
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from pathlib import Path

import torch

from genlab.models import build_model
from genlab.precision import autocast

CONFIG = {"image_shape": [3, 32, 32], "latent_dim": 128, "w_dim": 128, "mapping_depth": 2,
          "channel_base": 4096, "channel_max": 128}


def step_fn(model, batch: int, channels_last: bool, compiled, precision: str = "fp32"):
    synthesis = compiled if compiled is not None else model.generator.synthesis

    def step() -> None:
        with autocast(precision, torch.device("cpu")):
            ws = model._as_ws(model.generator.mapping(torch.randn(batch, model.config.latent_dim)))
            noise = model.noise_inputs(batch, "random")
            image = synthesis(ws, noise)
            if channels_last:
                image = image.contiguous(memory_format=torch.channels_last)
            loss = image.float().square().mean()
        loss.backward()

    return step


def timed(step, iters: int) -> float:
    start = time.perf_counter()
    for _ in range(iters):
        step()
    return (time.perf_counter() - start) / iters


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--compile", action="store_true", help="also try torch.compile (minutes of compilation)")
    p.add_argument("--bf16", action="store_true", help="also time each form under bf16 autocast")
    p.add_argument("--only", nargs="*", default=None, help="time only these variants (e.g. scaled scaled-cl-bf16)")
    p.add_argument("--out", default="benchmarks/results")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    base = build_model("stylegan", CONFIG)
    variants: dict[str, object] = {}
    for impl in ("grouped", "scaled"):
        for cl in (False, True):
            model = copy.deepcopy(base)
            model.generator.synthesis.set_implementation(impl)
            if cl:
                model = model.to(memory_format=torch.channels_last)
            variants[f"{impl}{'-cl' if cl else ''}"] = step_fn(model, args.batch, cl, None)
            if args.bf16:
                variants[f"{impl}{'-cl' if cl else ''}-bf16"] = step_fn(model, args.batch, cl, None, "bf16")
        if args.compile:
            model = copy.deepcopy(base)
            model.generator.synthesis.set_implementation(impl)
            try:
                compiled = torch.compile(model.generator.synthesis)
                fn = step_fn(model, args.batch, False, compiled)
                fn()  # compile now, not inside the timing
                variants[f"{impl}-compile"] = fn
            except Exception as exc:  # noqa: BLE001  (no C++ compiler, unsupported op: report and go on)
                print(f"torch.compile with {impl} failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
    if args.only:
        variants = {name: fn for name, fn in variants.items() if name in args.only}
    for fn in variants.values():  # warm-up
        fn()
    times: dict[str, list[float]] = {name: [] for name in variants}
    for repeat in range(args.repeats):
        order = list(variants) if repeat % 2 == 0 else list(reversed(variants))  # alternate: load drifts
        for name in order:
            times[name].append(timed(variants[name], args.iters))
    medians = {name: statistics.median(t) for name, t in times.items()}
    reference_name = "scaled" if "scaled" in medians else next(iter(medians))
    reference = medians[reference_name]
    for name, t in sorted(medians.items(), key=lambda kv: kv[1]):
        print(f"{name:18s} {1000 * t:8.1f} ms/step  ({reference / t:.2f}x {reference_name})")

    best = min((n for n in ("grouped", "scaled") if n in medians), key=lambda n: medians[n], default=reference_name)
    model = copy.deepcopy(base)
    model.generator.synthesis.set_implementation(best)
    fn = step_fn(model, args.batch, False, None)
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)[:10]
    total = sum(e.self_cpu_time_total for e in prof.key_averages())
    top = [{"op": e.key, "self_cpu_share": e.self_cpu_time_total / total} for e in events]
    print(f"profile of one synthesis step ({best}):")
    for row in top:
        print(f"  {row['op']:40s} {100 * row['self_cpu_share']:5.1f} %")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "stylegan_modconv.json").write_text(json.dumps(
        {"args": vars(args), "config": CONFIG, "seconds_per_step": times, "median_seconds": medians,
         "reference": reference_name, "speedup_vs_reference": {n: reference / t for n, t in medians.items()}, "profile": {"implementation": best, "top_ops": top},
         "torch": torch.__version__}, indent=1))


if __name__ == "__main__":
    main()
