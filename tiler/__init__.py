"""cropassets tiler: a TiTiler application serving the published week layers.

``tiler.app.create_app(data_root)`` builds the FastAPI app; ``python -m tiler`` runs it.
Routes and error rules: docs/CONTRACTS.md "Tiler HTTP API".
"""

import os

# titiler-mosaic reads the assets of one tile in a new thread pool per request unless this
# is 1 (read when titiler.mosaic.factory is first imported). The server already runs
# requests in parallel: per-request pools made tiles 2-3x slower and stop "first" pixel
# selection from skipping assets once the tile is full. Set it in the environment to
# override.
os.environ.setdefault("MOSAIC_CONCURRENCY", "1")
