"""``python -m tiler --data DIR --host 127.0.0.1 --port 8080``: serve the week layers."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line and run the tiler with uvicorn."""
    parser = argparse.ArgumentParser(prog="python -m tiler", description=__doc__)
    parser.add_argument("--data", default=None,
                        help="data root with week_layers/: a folder or s3://bucket/prefix "
                             "(default: $CROPASSETS_DATA or <repo>/data)")
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080,
                        help="port (default 8080; 0 picks a free one, logged at start)")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--no-access-log", dest="access_log", action="store_false",
                        help="do not log each request")
    args = parser.parse_args(argv)

    import uvicorn

    from cropassets.core.objstore import ObjPath
    from cropassets.settings import load_settings

    if args.data:
        os.environ["CROPASSETS_DATA"] = (args.data if "://" in args.data
                                         else os.path.abspath(args.data))
    data = load_settings().data_root
    if isinstance(data, ObjPath):
        data.is_dir()  # reachable, readable: else an error naming the URL (nothing published
        # yet is fine: weeks appear as they are published)
    elif not data.is_dir():
        parser.error(f"data root {data} does not exist")
    if args.workers > 1:  # each worker process builds the app from CROPASSETS_DATA
        uvicorn.run("tiler.app:app", host=args.host, port=args.port, workers=args.workers,
                    log_level=args.log_level, access_log=args.access_log)
        return
    from tiler.app import create_app

    uvicorn.run(create_app(data), host=args.host, port=args.port, log_level=args.log_level,
                access_log=args.access_log)


if __name__ == "__main__":
    main()
