"""An inter-process lock on an object-store prefix (the local ``folder_lock``'s twin).

The lock is an object ``<prefix>/.lock`` created with a conditional PUT
(``If-None-Match: *``): only one writer can create it. It holds a lease time; a lock older
than its lease (its holder was killed) is broken by the next writer. Released by deleting
it.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from cropassets.core.objstore import obj_client
from cropassets.core.objstore.objpath import ObjPath

LOCK_NAME = ".lock"


@contextmanager
def prefix_lock(folder: ObjPath, lease_s: float = 120.0, wait_s: float = 300.0,
                poll_s: float = 0.2) -> Iterator[None]:
    """Hold ``folder/.lock`` for the block.

    Raises:
        TimeoutError: Another live holder kept it for ``wait_s``, naming the URL.
    """
    lock = folder / LOCK_NAME
    token = json.dumps({"owner": f"{socket.gethostname()}:{os.getpid()}",
                        "id": uuid.uuid4().hex, "expires": time.time() + lease_s}).encode()
    deadline = time.monotonic() + wait_s
    while not obj_client.put_if_absent(lock.bucket, lock.key, token, lock.options):
        try:
            held = json.loads(lock.read_bytes())
            stale = float(held.get("expires", 0)) < time.time()
        except FileNotFoundError:
            continue  # released meanwhile
        except ValueError:
            stale = True
        if stale:
            lock.unlink(missing_ok=True)
            continue
        if time.monotonic() > deadline:
            raise TimeoutError(f"{lock} is held by {held.get('owner')} for over {wait_s} s")
        time.sleep(poll_s)
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)
