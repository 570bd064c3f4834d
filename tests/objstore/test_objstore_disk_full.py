"""A full disk while staging or writing: a clear error naming the URL or path, nothing
published. The disk is "full" for a subprocess through its file-size limit (RLIMIT_FSIZE):
a write past it fails with EFBIG, as one on a full disk fails with ENOSPC."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import REPO_ROOT, options

from cropassets.core.objstore import location

SCRIPT = r'''
import resource, signal, sys
import numpy as np
from affine import Affine
from cropassets.core.objstore import location
from cropassets.core.publish.cog import write_cog
from cropassets.core.storage import atomic_file
from cropassets.settings import load_settings

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
target = location(sys.argv[2], load_settings().object_store)
try:
    if sys.argv[1] == "checkpoint":
        with atomic_file(target) as fh:
            for _ in range(10):
                fh.write(b"x" * 100_000)
    else:
        noise = np.random.default_rng(0).integers(0, 60000, (1024, 1024)).astype(np.uint16)
        write_cog(target, noise, "EPSG:32647", Affine(10, 0, 0, 0, -10, 10240), 0)
except OSError as err:
    print("ERROR", err)
    sys.exit(3)
'''


def _run(kind: str, url: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run([sys.executable, "-c", SCRIPT, kind, url], env=env,
                          capture_output=True, text=True, timeout=120)


def test_full_disk_while_staging_a_checkpoint_names_it_and_publishes_nothing(s3_root):
    url = f"{s3_root}/cnn2d_checkpoint/k07.pt"
    out = _run("checkpoint", url)
    assert out.returncode == 3, out.stderr[-2000:]
    assert f"writing {url}" in out.stdout and "File too large" in out.stdout
    assert not location(url, options()).exists()


def test_full_disk_while_staging_a_cog_names_it_and_publishes_nothing(s3_root):
    url = f"{s3_root}/sos_map/T00/2025-05-05.tif"
    out = _run("cog", url)
    assert out.returncode == 3, out.stderr[-2000:]
    assert f"{url}: staging the COG" in out.stdout and "nothing was published" in out.stdout
    assert not location(url, options()).exists()


def test_full_local_disk_names_the_path_and_keeps_the_old_file(tmp_path):
    path = tmp_path / "cnn2d_checkpoint" / "k07.pt"
    path.parent.mkdir()
    path.write_bytes(b"old checkpoint")
    out = _run("checkpoint", str(path))
    assert out.returncode == 3, out.stderr[-2000:]
    assert f"writing {path}" in out.stdout
    assert path.read_bytes() == b"old checkpoint"
    assert [p.name for p in path.parent.iterdir()] == ["k07.pt"]  # no temporary file left
