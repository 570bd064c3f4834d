"""End to end (slow): the Dagster instance on PostgreSQL (``deploy/dagster-postgres.yaml``).

A throwaway PostgreSQL cluster (``initdb`` in a temp dir, ``pg_ctl`` on 127.0.0.1 and a free
port, its socket in the temp dir, password authentication over TCP) holds the instance whose
``dagster.yaml`` is ``deploy/dagster-postgres.yaml`` as shipped, configured only through its
``DAGSTER_PG_*`` variables. Then (a) an in-process materialization writes its events into
PostgreSQL, and (b) a daemon backfill launched through the webserver's GraphQL API runs
against the same database.

Needs the PostgreSQL server binaries (Debian: ``apt-get install -y postgresql``; the test
finds ``/usr/lib/postgresql/*/bin/{initdb,pg_ctl}``) and skips without them. PostgreSQL
refuses to run as root: as root the cluster runs as the ``postgres`` user the package
creates (``runuser -u postgres --``).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance, DagsterRunStatus, RunsFilter, materialize
from dagster_services import (
    free_port,
    launch_backfill,
    materialized_partitions,
    running_dagster,
    wait_backfill,
)

from cropassets.assets.ingest import raw_scenes
from cropassets.assets.series import weekly_cube
from cropassets.core.stac.server import serve
from cropassets.partitions import SEASONS, TILES
from cropassets.resources import DataRoot, build_resources
from cropassets.settings import REPO_ROOT, load_settings


def _pg_bin() -> Path | None:
    """Newest ``/usr/lib/postgresql/<version>/bin`` that has ``initdb`` and ``pg_ctl``."""
    found = [p for p in Path("/usr/lib/postgresql").glob("*/bin")
             if (p / "initdb").is_file() and (p / "pg_ctl").is_file()]
    found.sort(key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    return found[-1] if found else None


PG_BIN = _pg_bin()
RUN_AS = "postgres" if os.geteuid() == 0 else None
"""PostgreSQL refuses root: as root, the cluster runs as the package's ``postgres`` user."""


def _skip_reason() -> str | None:
    if PG_BIN is None:
        return ("PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin "
                "(Debian: apt-get install -y postgresql)")
    if RUN_AS is not None:
        try:
            pwd.getpwnam(RUN_AS)
        except KeyError:
            return "running as root and there is no 'postgres' user to run the cluster as"
    return None


SKIP_REASON = _skip_reason()
pytestmark = [pytest.mark.slow, pytest.mark.services,
              pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or "")]

CURRENT = next(s for s in SEASONS if s.role == "current")
TILE = sorted(TILES)[0]
FIRST_WEEK = CURRENT.week_starts()[0].isoformat()
BACKFILL_WEEK = CURRENT.week_starts()[1].isoformat()
BACKFILL_KEYS = {f"{t}|{BACKFILL_WEEK}" for t in TILES}
DB_USER = "dagster"
DB_NAME = "cropassets_test"


@dataclass(frozen=True)
class PgCluster:
    """A running throwaway cluster and how to reach it."""

    root: Path
    port: int
    password: str

    @property
    def env(self) -> dict[str, str]:
        """The ``DAGSTER_PG_*`` variables ``deploy/dagster-postgres.yaml`` reads."""
        return {"DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_PORT": str(self.port),
                "DAGSTER_PG_USER": DB_USER, "DAGSTER_PG_PASSWORD": self.password,
                "DAGSTER_PG_DB": DB_NAME}

    def query(self, sql: str, params: Sequence[object] = ()) -> list[tuple]:
        """Rows of one query on the test database (over TCP, with the password)."""
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user=DB_USER,
                                password=self.password, dbname=DB_NAME)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return list(cur.fetchall())
        finally:
            conn.close()


def _pg(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run a PostgreSQL program (as ``postgres`` when we are root); raise with its output."""
    cmd = [str(PG_BIN / args[0]), *args[1:]]
    if RUN_AS is not None:
        cmd = ["runuser", "-u", RUN_AS, "--", *cmd]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n"
                           f"{done.stdout}\n{done.stderr}")
    return done


@pytest.fixture(scope="module")
def postgres() -> Iterator[PgCluster]:
    """initdb + pg_ctl start in a temp dir; the database created; stopped and removed after."""
    # not under pytest's tmp dirs: those are private to root, and the server may run as postgres
    root = Path(tempfile.mkdtemp(prefix="cropassets-pg-"))
    data, sock, log = root / "data", root / "sock", root / "server.log"
    password = os.urandom(12).hex()
    started = False
    try:
        sock.mkdir()
        pwfile = root / "pwfile"
        pwfile.write_text(password + "\n")
        if RUN_AS is not None:
            user = pwd.getpwnam(RUN_AS)
            for p in (root, sock, pwfile):
                os.chown(p, user.pw_uid, user.pw_gid)
        _pg("initdb", "-D", str(data), "-U", DB_USER, f"--pwfile={pwfile}", "-E", "UTF8",
            "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync")
        port = free_port()
        options = (f"-c listen_addresses=127.0.0.1 -p {port} -k {sock} "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        _pg("pg_ctl", "-D", str(data), "-l", str(log), "-w", "-t", "60", "-o", options, "start")
        started = True
        _pg("createdb", "-h", str(sock), "-p", str(port), "-U", DB_USER, DB_NAME)
        yield PgCluster(root=root, port=port, password=password)
    except BaseException:
        if log.exists():
            print(f"----- {log} -----\n{log.read_text(errors='replace')[-5000:]}")
        raise
    finally:
        if started:
            try:
                _pg("pg_ctl", "-D", str(data), "-m", "fast", "-w", "-t", "60", "stop")
            except RuntimeError as e:  # leave nothing running; the rmtree still goes ahead
                print(e)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def home(postgres, tmp_path_factory) -> Iterator[Path]:
    """DAGSTER_HOME with ``deploy/dagster-postgres.yaml``; the env points at the cluster."""
    home = tmp_path_factory.mktemp("dagster_home_pg")
    shutil.copy(REPO_ROOT / "deploy" / "dagster-postgres.yaml", home / "dagster.yaml")
    with pytest.MonkeyPatch.context() as mp:
        for k, v in postgres.env.items():
            mp.setenv(k, v)
        mp.setenv("DAGSTER_HOME", str(home))
        yield home


def test_in_process_materialization_lands_in_postgres(postgres, home, tmp_path):
    data = tmp_path / "data"
    resources = build_resources() | {"data_root": DataRoot(root=str(data))}
    key = f"{TILE}|{FIRST_WEEK}"
    with DagsterInstance.get() as instance:
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        result = materialize([raw_scenes, weekly_cube], partition_key=key, instance=instance,
                             resources=resources)
        assert result.success
        assert key in materialized_partitions(instance, "weekly_cube")
    assert (data / "weekly_cube" / TILE / f"{FIRST_WEEK}.zarr").is_dir()
    # the rows are in PostgreSQL itself (read without Dagster)
    rows = postgres.query(
        "SELECT asset_key, partition FROM event_logs "
        "WHERE dagster_event_type = 'ASSET_MATERIALIZATION' AND run_id = %s", [result.run_id])
    assert sorted(rows) == sorted([(AssetKey("raw_scenes").to_string(), key),
                                   (AssetKey("weekly_cube").to_string(), key)])
    status = postgres.query("SELECT status FROM runs WHERE run_id = %s", [result.run_id])
    assert status == [("SUCCESS",)]


def test_daemon_backfill_runs_on_postgres(postgres, home, tmp_path):
    data = tmp_path / "data"
    env = {**postgres.env, "CROPASSETS_DATA": str(data), "CROPASSETS_SENSOR": "off"}
    with serve(load_settings().world_dir / "stac") as stac, \
            running_dagster(home, env={**env, "CROPASSETS_STAC_URL": stac.url}) as dagster:
        backfill_id = launch_backfill(dagster.graphql_url, ["raw_scenes", "weekly_cube"],
                                      partition_keys=sorted(BACKFILL_KEYS),
                                      run_config={"execution": {"config": {"in_process": {}}}})
        status = wait_backfill(dagster.graphql_url, backfill_id, timeout=600)
        if status != "COMPLETED_SUCCESS":
            pytest.fail(f"backfill {backfill_id}: {status}\n{dagster.log_tails(80)}")
    with DagsterInstance.get() as instance:
        runs = instance.get_runs(filters=RunsFilter(tags={"dagster/backfill": backfill_id}))
        assert runs and all(r.status == DagsterRunStatus.SUCCESS for r in runs)
        assert BACKFILL_KEYS <= materialized_partitions(instance, "weekly_cube")
    backfills = postgres.query("SELECT status FROM bulk_actions WHERE key = %s", [backfill_id])
    assert backfills == [("COMPLETED_SUCCESS",)]
    rows = postgres.query(
        "SELECT DISTINCT partition FROM event_logs WHERE dagster_event_type = "
        "'ASSET_MATERIALIZATION' AND asset_key = %s AND partition = ANY(%s)",
        [AssetKey("weekly_cube").to_string(), sorted(BACKFILL_KEYS)])
    assert {r[0] for r in rows} == BACKFILL_KEYS
    for key in BACKFILL_KEYS:
        tile, week = key.split("|")
        assert (data / "weekly_cube" / tile / f"{week}.zarr").is_dir()
