"""cropassets tiler: a TiTiler application serving the published week layers.

``tiler.app.create_app(data_root)`` builds the FastAPI app; ``python -m tiler`` runs it.
Routes and error rules: docs/CONTRACTS.md "Tiler HTTP API".
"""
