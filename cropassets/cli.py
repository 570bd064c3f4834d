"""Command line: ``cropassets demo-world | serve-stac | materialize``."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from cropassets.settings import load_settings


def _cmd_demo_world(args: argparse.Namespace) -> int:
    from cropassets.world import cli as world_cli

    return world_cli.run(args) or 0


def _cmd_serve_stac(args: argparse.Namespace) -> int:
    from cropassets.core.stac_server import main_serve

    stac_dir = Path(args.stac_dir or load_settings().world_dir / "stac")
    main_serve(stac_dir, args.host, args.port)
    return 0


def _cmd_materialize(args: argparse.Namespace) -> int:
    from cropassets.materialize import materialize_partitions

    failed = materialize_partitions(args.assets, tiles=args.tiles, weeks=args.weeks,
                                    missing_only=args.missing, workers=args.workers)
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    """The ``cropassets`` argument parser."""
    parser = argparse.ArgumentParser(prog="cropassets", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    world = sub.add_parser("demo-world", help="generate the synthetic Sentinel world")
    from cropassets.world import cli as world_cli

    world_cli.add_arguments(world)
    world.set_defaults(func=_cmd_demo_world)

    serve = sub.add_parser("serve-stac", help="serve a world's STAC catalog as a STAC API")
    serve.add_argument("--stac-dir", default="", help="catalog folder (default: world/stac)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8081)
    serve.set_defaults(func=_cmd_serve_stac)

    mat = sub.add_parser("materialize",
                         help="materialize assets for tile x week partitions through Dagster "
                              "(in one process, recorded in $DAGSTER_HOME's instance)")
    mat.add_argument("assets", nargs="+", help="asset names, e.g. raw_scenes")
    mat.add_argument("--tiles", nargs="*", default=None, help="tile ids (default: all)")
    mat.add_argument("--weeks", default=None,
                     help="week range 'START...END', one week, a season id such as "
                          "2025, or 'current' (the current season; default: all weeks)")
    mat.add_argument("--missing", action="store_true",
                     help="skip partitions already materialized")
    mat.add_argument("--workers", type=int, default=1,
                     help="processes to spread tiles over (each tile runs in week order)")
    mat.set_defaults(func=_cmd_materialize)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``cropassets`` command."""
    from cropassets.core.grid import TileGridError
    from cropassets.core.seasons import SeasonError

    args = build_parser().parse_args(argv)
    t0 = time.perf_counter()
    try:
        rc = args.func(args)
    except (SeasonError, TileGridError) as exc:  # bad input: a clear line, no traceback
        print(f"cropassets {args.command}: error: {exc}", file=sys.stderr)
        return 2
    print(f"[cropassets] {args.command} finished in {time.perf_counter() - t0:.1f} s",
          file=sys.stderr)
    return rc


if __name__ == "__main__":
    sys.exit(main())
