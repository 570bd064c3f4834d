"""Dask resource: where the dask graphs of the array assets run.

Three modes, picked by ``scheduler_address`` (env ``CROPASSETS_DASK_SCHEDULER``):

- ``""`` (default): no client; dask's threaded scheduler in the run's own process.
- ``"local"``: a ``distributed.LocalCluster`` of worker processes on 127.0.0.1, started at
  the first use in a run (in a step process, with Dagster's multiprocess executor) and
  closed when the run ends.
- ``"tcp://host:8786"`` (any scheduler address): a running dask.distributed cluster; the
  run connects a client at the first use and disconnects at the end (the cluster stays).

Assets compute inside ``with dask_cluster.compute_context():``, which makes the client the
current one (``Client.as_current``), so every ``compute()`` and ``to_zarr()`` in it runs on
the cluster, or, without a client, on threads as before: one code path. The numeric core
never sees the resource.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field, PrivateAttr

if TYPE_CHECKING:
    from distributed import Client

LOCAL = "local"
"""``scheduler_address`` value that starts a LocalCluster for the run."""


class DaskCluster(ConfigurableResource):
    """A dask.distributed client for the run, or none (threads in the run process)."""

    scheduler_address: str = Field(
        default="",
        description=("'' = dask's threaded scheduler in the run process (no client); "
                     "'local' = a LocalCluster on 127.0.0.1 for the run; otherwise the "
                     "address of a running scheduler, e.g. tcp://10.0.0.5:8786"))
    n_workers: int = Field(default=2, ge=1, description="LocalCluster worker processes")
    threads_per_worker: int = Field(default=1, ge=1, description="LocalCluster threads each")
    memory_limit: str = Field(
        default="auto",
        description="LocalCluster memory per worker, e.g. '4GiB'; 'auto' = RAM / n_workers")
    dashboard: bool = Field(default=False,
                            description="serve the LocalCluster dashboard on a free loopback "
                                        "port (its link goes to the run log)")
    _client: Any = PrivateAttr(default=None)
    _cluster: Any = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _log: Any = PrivateAttr(default=None)

    @property
    def mode(self) -> str:
        """``threads``, ``local-cluster`` or ``scheduler``."""
        if not self.scheduler_address:
            return "threads"
        return "local-cluster" if self.scheduler_address == LOCAL else "scheduler"

    def setup_for_execution(self, context: InitResourceContext) -> None:
        """Nothing starts here: a run that computes nothing with dask pays nothing."""
        self._log = context.log

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        """Close the client (and the LocalCluster, if this run started one)."""
        self.close()

    def get_client(self) -> Client | None:
        """The run's client, connected (or its LocalCluster started) on the first call."""
        if self.mode == "threads":
            return None
        with self._lock:
            if self._client is None:
                self._client = self._connect()
                if self._log is not None:
                    self._log.info(f"dask: {self.describe()}")
        return self._client

    def _connect(self) -> Client:
        from distributed import Client, LocalCluster

        if self.mode == "scheduler":
            return Client(self.scheduler_address, set_as_default=False)
        cluster = LocalCluster(
            n_workers=self.n_workers, threads_per_worker=self.threads_per_worker,
            processes=True, host="127.0.0.1", memory_limit=self.memory_limit,
            # the scheduler's HTTP server (health, metrics) always listens: on a free
            # loopback port rather than 8787, serving the dashboard only when asked
            dashboard_address="127.0.0.1:0", scheduler_kwargs={"dashboard": self.dashboard})
        try:
            client = Client(cluster, set_as_default=False)
        except BaseException:
            cluster.close()
            raise
        self._cluster = cluster
        return client

    @contextlib.contextmanager
    def compute_context(self) -> Iterator[Client | None]:
        """Make the run's client the current dask scheduler inside the block.

        Yields the client, or ``None`` in ``threads`` mode, where nothing changes.
        """
        client = self.get_client()
        if client is None:
            yield None
            return
        with client.as_current():
            yield client

    def describe(self) -> dict[str, object]:
        """Where computations run (for asset metadata): mode, scheduler, workers, threads."""
        client = self._client
        if client is None:
            return {"mode": self.mode}
        workers = client.scheduler_info(n_workers=-1).get("workers", {})
        out: dict[str, object] = {
            "mode": self.mode, "scheduler": client.scheduler.address,
            "workers": len(workers),
            "threads": sum(w.get("nthreads", 0) for w in workers.values())}
        if self._cluster is not None and self.dashboard:
            out["dashboard"] = client.dashboard_link
        return out

    def close(self) -> None:
        """Close the client and any LocalCluster this resource started (idempotent)."""
        with self._lock:
            client, cluster = self._client, self._cluster
            self._client = self._cluster = None
        try:
            if client is not None:
                client.close()
        finally:
            if cluster is not None:
                cluster.close()
