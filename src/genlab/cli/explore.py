"""``genlab explore RUN``: the latent-space explorer in the browser, served from localhost."""
from __future__ import annotations

import argparse

from . import command


def _explore_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN", help="run folder (or a model folder with config.json + model.safetensors)")
    p.add_argument("--port", type=int, default=8765, help="port to listen on (0: any free port)")
    p.add_argument("--host", default=None,
                   help="address to bind (default 127.0.0.1, this machine only); any other makes the page reachable from the network")
    p.add_argument("--labels", nargs="+", metavar="NAME", default=None,
                   help="labels the attribute slider offers (class names or attribute columns; default all)")
    p.add_argument("--data", metavar="SPEC", default=None, help="labelled data for attribute vectors (default: the run's)")
    p.add_argument("--labelled", type=int, default=20, help="labelled examples with and without an attribute")
    p.add_argument("--project-steps", type=int, default=200,
                   help="optimisation steps to find the code of an image, for models without an encoder")
    p.add_argument("--max-upload-mb", type=float, default=5.0, help="largest image file the page may upload")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps")
    p.add_argument("--no-ema", action="store_true", help="use the raw weights even when EMA weights were saved")


@command("explore", "explore a model's latent space in the browser (a local web page)", _explore_args)
def explore(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from ..explore import ExploreServer, open_run, serve

    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must lie in [0, 65535], got {args.port}")
    if args.labelled < 1 or args.project_steps < 1 or args.max_upload_mb <= 0:
        raise ConfigError("--labelled and --project-steps must be >= 1 and --max-upload-mb > 0")
    host = (args.host or "127.0.0.1").strip("[]")  # an IPv6 address may come as in a URL: [::1]
    try:  # bind before loading the model: a busy port is reported at once, not after seconds of loading
        server = ExploreServer(None, host, args.port)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{args.port}: {exc.strerror or exc}") from None
    try:
        server.explorer = open_run(args.run, data=args.data, labels=args.labels, device=args.device, ema=not args.no_ema,
                                   labelled_count=args.labelled, project_steps=args.project_steps,
                                   max_upload_bytes=int(args.max_upload_mb * 2**20))
    except BaseException:
        server.server_close()
        raise
    explorer = server.explorer
    if not server.local_only:
        port = server.server_address[1]
        print(f"warning: listening on {host}: the page is reachable from the network; anyone who can reach "
              f"this machine on port {port} can use the page and the model", flush=True)
    try:  # a Ctrl-C right after the URL is printed, before serving starts, stops as cleanly
        print(f"genlab explore: {explorer.name} at {server.url} (Ctrl-C stops)", flush=True)
        serve(server)
    except KeyboardInterrupt:
        server.server_close()
    print("genlab explore: stopped", flush=True)
    return 0
