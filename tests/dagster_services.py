"""Run the real Dagster services (webserver + daemon) on a test instance, and drive backfills.

    from dagster_services import launch_backfill, running_dagster, wait_backfill

    with running_dagster(dagster_home, env={"CROPASSETS_DATA": str(data)}) as dagster:
        backfill_id = launch_backfill(dagster.graphql_url, ["raw_scenes", "weekly_cube"],
                                      partition_range=("T00|2025-05-05", "T01|2025-05-12"))
        assert wait_backfill(dagster.graphql_url, backfill_id, timeout=300) == "COMPLETED_SUCCESS"

``running_dagster`` starts ``dagster-webserver`` and ``dagster-daemon run`` on
``<repo>/workspace.yaml`` as subprocesses, each in its own process group, so the code servers
and run workers they spawn are stopped with them. Both inherit ``os.environ`` (the test
session's ``CROPASSETS_*`` world) updated with ``env`` and ``DAGSTER_HOME``. Their output
goes to ``<dagster_home>/service-logs/{webserver,daemon}.log`` (not ``logs/``, which Dagster
empties for telemetry; run workers log into the daemon's file, as children of its code
server). The tails are printed when startup fails or the ``with`` body raises; a test that
fails while the services run in a fixture does not raise into it, so put
``services.log_tails()`` in its failure message. The instance's tables are created before the
services start (on a fresh home they would race to create them). The code location's
new-week sensor launches backfills of its own unless ``CROPASSETS_SENSOR=off`` is in ``env``.

The GraphQL helpers (``launch_backfill``, ``wait_backfill``, ``graphql``...) live in
:mod:`cropassets.backfill`, which the ``cropassets backfill`` command uses too; they are
re-exported here.

Timing facts worth knowing (Dagster 1.13): the backfill daemon ticks every 30 s (fixed,
``DEFAULT_DAEMON_INTERVAL_SECONDS``), and an asset reached through a non-identity partition
mapping (``sos_map`` from ``weekly_cube``) is requested one tick after its parents are
materialized, so a backfill of a chain takes at least one tick per such edge plus one tick to
be marked complete. The queued-run coordinator dequeues every 5 s.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cropassets.backfill import (  # noqa: F401  (re-exported for the tests)
    TERMINAL_BACKFILL_STATUSES,
    GraphQLError,
    backfill_params,
    backfill_status,
    graphql,
    launch_backfill,
    wait_backfill,
)

if TYPE_CHECKING:
    from dagster import DagsterInstance, EventLogRecord

REPO_ROOT = Path(__file__).resolve().parents[1]
WORKSPACE = REPO_ROOT / "workspace.yaml"
_BIN = Path(sys.executable).parent
"""Where the venv's ``dagster-webserver`` / ``dagster-daemon`` scripts are."""

@dataclass(frozen=True)
class DagsterServices:
    """Addresses and log files of a running webserver + daemon pair."""

    base_url: str
    dagster_home: Path
    webserver_log: Path
    daemon_log: Path

    @property
    def graphql_url(self) -> str:
        """The webserver's GraphQL endpoint."""
        return f"{self.base_url}/graphql"

    def log_tails(self, lines: int = 60) -> str:
        """The last ``lines`` lines of both service logs, labelled."""
        return "\n".join(f"----- {p.name} (last {lines} lines) -----\n{_tail(p, lines)}"
                         for p in (self.webserver_log, self.daemon_log))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_dagster(dagster_home: str | Path, env: Mapping[str, str] | None = None,
                    startup_timeout: float = 180.0, stop_timeout: float = 20.0,
                    workspace: str | Path = WORKSPACE) -> Iterator[DagsterServices]:
    """Run ``dagster-webserver`` and ``dagster-daemon`` on ``dagster_home``; stop both on exit.

    Yields once the webserver answers GraphQL, the code location loaded without error and
    every required daemon has posted a healthy heartbeat. ``env`` entries override the
    inherited environment of both services (and so of their code servers and run workers).
    ``dagster_home`` must hold a ``dagster.yaml``. ``workspace`` defaults to the project's.
    """
    home = Path(dagster_home).resolve()
    if not (home / "dagster.yaml").is_file():
        raise FileNotFoundError(f"{home}/dagster.yaml is missing: copy an instance config there")
    logs = home / "service-logs"
    logs.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, **(env or {}), "DAGSTER_HOME": str(home),
                "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT),
                                                            os.environ.get("PYTHONPATH")]))}
    port = free_port()
    services = DagsterServices(base_url=f"http://127.0.0.1:{port}", dagster_home=home,
                               webserver_log=logs / "webserver.log",
                               daemon_log=logs / "daemon.log")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        _create_storage(full_env, services.webserver_log)
        procs.append(_spawn([_script("dagster-webserver"), "-w", str(workspace),
                             "-h", "127.0.0.1", "-p", str(port)],
                            full_env, services.webserver_log))
        procs.append(_spawn([_script("dagster-daemon"), "run", "-w", str(workspace)],
                            full_env, services.daemon_log))
        deadline = time.monotonic() + startup_timeout
        _wait_ready(services, procs, deadline)
        yield services
    except BaseException:
        print(services.log_tails(), file=sys.stderr)
        raise
    finally:
        for proc in procs:
            _signal_group(proc, signal.SIGTERM)
        for proc in procs:
            _reap(proc, stop_timeout)


def _script(name: str) -> str:
    """The console script ``name`` of this interpreter's environment (else from PATH)."""
    here = _BIN / name
    found = str(here) if here.is_file() else shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} not found beside {sys.executable} or on PATH")
    return found


def _create_storage(env: Mapping[str, str], log: Path) -> None:
    """Create (or migrate) the instance's tables before the services start.

    On a fresh home the webserver, the daemon and their code servers would otherwise each
    create the schema at once, and SQLite's alembic table ends up with two heads
    ("Version table 'alembic_version' has more than one head present").
    """
    code = ("from dagster import DagsterInstance\n"
            "DagsterInstance.get().dispose()\n")
    with open(log, "ab") as out:
        subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=dict(env),
                       stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                       check=True, timeout=120)


def _spawn(cmd: Sequence[str], env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:  # the child keeps its own descriptor
        return subprocess.Popen(cmd, cwd=REPO_ROOT, env=dict(env), stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Send ``sig`` to the process group led by ``proc`` (it and everything it spawned)."""
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def _reap(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Wait for ``proc`` to end after SIGTERM; SIGKILL its group after ``timeout``."""
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _signal_group(proc, signal.SIGKILL)
        proc.wait()
    # children that outlived their leader (a code server still shutting down) go too
    deadline = time.monotonic() + timeout
    while _group_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    _signal_group(proc, signal.SIGKILL)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_READY_QUERY = """
{
  version
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError {
          __typename
          ... on PythonError { message stack }
        }
      }
    }
  }
  instance {
    daemonHealth {
      allDaemonStatuses { daemonType required healthy lastHeartbeatTime }
    }
  }
}
"""


def _wait_ready(services: DagsterServices, procs: Sequence[subprocess.Popen[bytes]],
                deadline: float) -> None:
    """Poll until GraphQL answers, the code location is loaded and the daemons are healthy."""
    state = "webserver not answering"
    while True:
        for proc in procs:
            if proc.poll() is not None:
                raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode} ({state})")
        try:
            data = graphql(services.graphql_url, _READY_QUERY, timeout=10)
        except (urllib.error.URLError, ConnectionError, TimeoutError, GraphQLError) as e:
            state = f"webserver not answering: {e}"
        else:
            state = _readiness_problem(data)
            if state is None:
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"Dagster services not ready: {state}")
        time.sleep(0.5)


def _readiness_problem(data: Mapping[str, Any]) -> str | None:
    """Why the services are not ready yet, or None when they are."""
    workspace = data["workspaceOrError"]
    if workspace["__typename"] != "Workspace":
        return f"workspace: {workspace['__typename']}"
    for entry in workspace["locationEntries"]:
        if entry["loadStatus"] != "LOADED":
            return f"code location {entry['name']} {entry['loadStatus']}"
        loaded = entry["locationOrLoadError"] or {}
        if loaded.get("__typename") == "PythonError":
            raise RuntimeError(f"code location {entry['name']} failed to load:\n"
                               f"{loaded['message']}{''.join(loaded['stack'])}")
    statuses = data["instance"]["daemonHealth"]["allDaemonStatuses"]
    waiting = [s["daemonType"] for s in statuses if s["required"] and not s["healthy"]]
    if waiting or not statuses:
        return f"daemons without a healthy heartbeat: {waiting}"
    return None


def materialized_partitions(instance: DagsterInstance, asset: str) -> set[str]:
    """Partition keys of ``asset`` (a ``/``-separated key) with a materialization."""
    from dagster import AssetKey

    return set(instance.get_materialized_partitions(AssetKey(asset.split("/"))))


def latest_materializations(instance: DagsterInstance, asset: str,
                            after_storage_id: int | None = None, limit: int = 10_000,
                            ) -> dict[str | None, EventLogRecord]:
    """Newest materialization ``EventLogRecord`` of each partition of ``asset``.

    Records are compared by ``storage_id`` (event-log order). ``after_storage_id`` keeps only
    newer records, e.g. those of a later backfill.
    """
    from dagster import AssetKey, AssetRecordsFilter

    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey(asset.split("/")),
                           after_storage_id=after_storage_id),
        limit=limit, ascending=True).records
    return {r.partition_key: r for r in records}  # ascending: later records win


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])
