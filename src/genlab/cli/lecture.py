"""``genlab lecture``: every figure of the lecture, each checked against its claim, in one HTML page."""
from __future__ import annotations

import argparse

from . import command, positive_int


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--budget", choices=["smoke", "full"], default="smoke",
                   help="smoke: small data and few steps, every figure in minutes (weaker checks, each says so); "
                        "full: the quality run, resumable")
    p.add_argument("--only", nargs="+", metavar="ID", default=None, help="make only these figures (see --list)")
    p.add_argument("--out", default="runs/lecture", help="folder for index.html, lecture.json and one folder per figure")
    p.add_argument("--runs", default=None, help="folder of the trained runs the figures share (default OUT/runs); "
                                                 "reused when present, so a second call only redraws")
    p.add_argument("--data-root", default=None, help="folder holding mnist/, fashion-mnist/ and celeba-10k/ (default $GENLAB_DATA, "
                                                      "else ../shared/data when present)")
    p.add_argument("--seed", type=int, default=0, help="seed for data, initialisation and sampling")
    p.add_argument("--list", action="store_true", help="list the figures (id, slides, claim) and exit")
    p.add_argument("--publish", metavar="DEST", default=None,
                   help="run no figure: copy the report built in OUT into the gallery folder DEST (PNGs, index.html, "
                        "README.md, gallery.json), leaving out pictures of real photographs whose terms forbid it")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--threads", type=positive_int, default=None, metavar="N",
                   help="torch intra-op threads (per worker with --jobs; default: torch's own choice, or the cores over --jobs)")
    p.add_argument("--jobs", type=positive_int, default=1, metavar="N",
                   help="make the figures in N worker processes; a shared run two figures need is trained once")


@command("lecture", "redo the lecture's figures on real data, check each claim, write one self-contained HTML page", _arguments)
def lecture(args: argparse.Namespace) -> int:
    from ..lecture import ordered_figures, run_lecture

    if args.list:
        for figure in ordered_figures():
            print(f"{figure.id:20} {figure.slides:11} {figure.claim}")
        return 0
    if args.publish:
        from ..lecture.gallery import publish

        gallery = publish(args.out, args.publish)
        print(f"published {gallery.figures} figures ({gallery.pictures} pictures) to {gallery.path}")
        for figure, why in gallery.withheld.items():
            print(f"  {figure}: {why}")
        if gallery.unbuilt:
            print(f"  not in the report: {', '.join(gallery.unbuilt)}")
        return 0
    results = run_lecture(args.out, budget=args.budget, only=args.only, seed=args.seed, runs=args.runs,
                          data_root=args.data_root, progress=not args.no_progress, jobs=args.jobs, threads=args.threads)
    print_results(results)
    print(f"wrote {args.out}/index.html")
    return 1 if any(r.failed for r in results) else 0


def print_results(results) -> None:
    for r in results:
        line = f"{r.verdict:8} {r.id:20} {r.seconds:7.1f} s wall {r.cpu_seconds:7.1f} s CPU"
        if r.error:
            line += f"  {r.error}"
        print(line)
        for text, ok in r.conditions:
            if not ok:
                print(f"{'':8} not held: {text}")
