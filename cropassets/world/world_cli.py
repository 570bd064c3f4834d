"""Command line of the world generator: ``python -m cropassets.world``, ``demo-world``."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the generator's options to ``parser``."""
    parser.add_argument("--out", type=Path, required=True, help="world folder to write")
    parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    parser.add_argument("--size", type=int, default=512,
                        help="tile edge in 10 m pixels, a multiple of 16 (default 512)")
    parser.add_argument("--tiles", type=int, default=4, help="number of tiles (default 4)")
    parser.add_argument("--workers", type=int, default=None,
                        help="processes rendering scenes (default: automatic)")
    parser.add_argument("--quiet", action="store_true", help="no progress output")


def run(args: argparse.Namespace) -> int:
    """Generate the world described by parsed ``args``; returns an exit code."""
    from cropassets.world.generate import generate_world

    t0 = time.perf_counter()
    step = [0]

    def progress(done: int, total: int, message: str) -> None:
        if args.quiet:
            return
        if done == total or done == 1 or done - step[0] >= max(1, total // 20):
            step[0] = done
            print(f"[{done:4d}/{total}] {time.perf_counter() - t0:6.1f}s {message}",
                  file=sys.stderr, flush=True)

    try:
        out = generate_world(args.out, seed=args.seed, size=args.size, tiles=args.tiles,
                             progress=progress, workers=getattr(args, "workers", None))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not args.quiet:
        print(str(out))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: parse ``argv`` and generate."""
    parser = argparse.ArgumentParser(prog="python -m cropassets.world",
                                     description="Generate the synthetic Sentinel-1/2 world.")
    add_arguments(parser)
    return run(parser.parse_args(argv))
