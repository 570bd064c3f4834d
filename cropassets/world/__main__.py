"""``python -m cropassets.world --out DIR``."""

from cropassets.world.world_cli import main

if __name__ == "__main__":
    raise SystemExit(main())
