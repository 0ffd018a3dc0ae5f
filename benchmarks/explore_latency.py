"""Latency of one `genlab explore` frame: 16 images of 64x64 decoded, gridded, PNG-encoded and sent.

Times a full HTTP round trip (GET /render?view=samples&n=16 on a live server in this process, read
to the last byte) and, separately, the render alone (decode + grid, no PNG, no HTTP), for a conv VAE
(the decoder of configs/vae_celeba64.toml) and a DCGAN generator, both 3x64x64. Weights are the
untrained initial ones: a frame's cost does not depend on their values, and no face data is needed.
Models and measurements are interleaved, so slow spells of a shared machine hit both alike.

    taskset -c 1 python benchmarks/explore_latency.py --repeats 200 --out benchmarks/results/explore_latency.json
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import statistics
import threading
import time

import torch

from genlab.explore import Explorer, ExploreServer
from genlab.models import build_model

MODELS = {
    "vae-conv-64": ("vae", {"architecture": "conv", "image_shape": [3, 64, 64], "latent_dim": 256,
                            "channels": [32, 64, 128, 256], "likelihood": "gaussian", "scale": "fixed"}),
    "dcgan-64": ("gan", {"image_shape": [3, 64, 64], "latent_dim": 64}),
}


def summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"median_ms": round(1000 * statistics.median(ordered), 2), "p95_ms": round(1000 * p95, 2),
            "min_ms": round(1000 * ordered[0], 2), "count": len(ordered)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None, help="JSON file for the numbers")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    servers, connections = {}, {}
    for name, (family, config) in MODELS.items():
        torch.manual_seed(0)
        server = ExploreServer(Explorer(build_model(family, config).eval()), "127.0.0.1", 0)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers[name] = server
        connections[name] = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=60)

    def frame(name: str, seed: int) -> float:
        start = time.perf_counter()
        connections[name].request("GET", f"/render?view=samples&n=16&seed={seed}")
        response = connections[name].getresponse()
        body = response.read()
        elapsed = time.perf_counter() - start
        assert response.status == 200 and body[:4] == b"\x89PNG", body[:200]
        return elapsed

    def render_only(name: str, seed: int) -> float:
        explorer = servers[name].explorer
        start = time.perf_counter()
        explorer.render({"view": "samples", "n": 16, "seed": seed})
        return time.perf_counter() - start

    http_times: dict[str, list[float]] = {name: [] for name in MODELS}
    render_times: dict[str, list[float]] = {name: [] for name in MODELS}
    for i in range(args.warmup + args.repeats):
        for name in MODELS:  # interleaved: model after model, HTTP frame then render alone
            t_http, t_render = frame(name, i), render_only(name, i)
            if i >= args.warmup:
                http_times[name].append(t_http)
                render_times[name].append(t_render)

    results = {
        "command": "python benchmarks/explore_latency.py " + " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if v is not None),
        "cpus": sorted(os.sched_getaffinity(0)),  # the cores the process was pinned to (taskset)
        "frame": "GET /render?view=samples&n=16: 16 images of 3x64x64, 4x4 grid, PNG",
        "torch": torch.__version__, "threads": args.threads, "machine": platform.machine(),
        "http_frame": {name: summary(t) for name, t in http_times.items()},
        "render_only": {name: summary(t) for name, t in render_times.items()},
    }
    for server in servers.values():
        server.shutdown()
        server.server_close()
    print(json.dumps(results, indent=2))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
