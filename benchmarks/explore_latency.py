"""Latency of one `genlab explore` frame: 16 images of 64x64 decoded, gridded, PNG-encoded and sent.

Times a full HTTP round trip (GET /render?view=samples&n=16 on a live server in this process, read
to the last byte) and, separately, the render alone (decode + grid, no PNG, no HTTP), for a conv VAE
(the decoder of configs/vae_celeba64.toml) and a DCGAN generator, both 3x64x64. Weights are the
untrained initial ones: a frame's cost does not depend on their values, and no face data is needed.
Models and measurements are interleaved, so slow spells of a shared machine hit both alike.

``--during-attribute N`` also times N frames of the other views (samples, interpolation; each on a new
connection, as a page's first frames are) while the DCGAN's attribute vector is being computed (the
projection of 2x20 labelled images, which takes 13-30 s on a CPU): the vector is computed step by step
outside the model lock, so these frames should stay within the same target as frames on an idle server.

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
import types

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


def frames_during_attribute(family: str, config: dict, frames: int, project_steps: int) -> dict:
    """Frames of other views on new connections while ``GET /render?view=attribute`` computes its vector."""
    torch.manual_seed(0)
    c, h, w = config["image_shape"]
    g = torch.Generator().manual_seed(0)  # the images' content does not change a projection step's cost
    labelled = types.SimpleNamespace(x=torch.rand(80, c, h, w, generator=g), y=torch.arange(80) % 2,
                                     info={"class_names": ["without", "with"]})
    explorer = Explorer(build_model(family, config).eval(), labelled=labelled, labelled_count=20,
                        project_steps=project_steps)
    server = ExploreServer(explorer, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    port = server.server_address[1]
    attribute_status: list[int] = []

    def attribute() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=3600)
        connection.request("GET", "/render?view=attribute&attr=with&n=8")
        attribute_status.append(connection.getresponse().status)

    computing = threading.Thread(target=attribute, daemon=True)
    computing.start()
    time.sleep(1.0)  # the projection is under way
    times: list[float] = []
    for i in range(frames):
        query = f"view=samples&n=16&seed={i}" if i % 2 == 0 else f"view=interpolate&a={i}&b={i + 1}&t=0.5"
        start = time.perf_counter()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        connection.request("GET", "/render?" + query)
        response = connection.getresponse()
        body = response.read()
        times.append(time.perf_counter() - start)
        connection.close()
        assert response.status == 200 and body[:4] == b"\x89PNG", body[:200]
    still_computing = computing.is_alive()
    server.shutdown()
    server.server_close()  # stops the projection within a step
    computing.join(60)
    if not still_computing:
        raise SystemExit(f"the attribute vector was done before {frames} frames were timed: raise --project-steps")
    return {**summary(times), "project_steps": project_steps, "attribute_reply_after_stop": attribute_status}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None, help="JSON file for the numbers")
    parser.add_argument("--during-attribute", type=int, default=0, metavar="N",
                        help="also time N frames of other views while the DCGAN's attribute vector is computed")
    parser.add_argument("--project-steps", type=int, default=200, help="projection steps of that attribute vector")
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
    if args.during_attribute:
        results["during_attribute"] = {"dcgan-64": frames_during_attribute(*MODELS["dcgan-64"], args.during_attribute,
                                                                            args.project_steps)}
    print(json.dumps(results, indent=2))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
