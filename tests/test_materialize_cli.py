"""The CLI loop frees concurrency-pool slots held by runs whose process died."""

import os
import subprocess
import sys

from dagster import DagsterInstance, DagsterRun, DagsterRunStatus

from cropassets.materialize import PID_TAG, release_dead_cli_slots


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_dead_run_slot_is_freed_and_live_one_kept(tmp_path):
    with DagsterInstance.local_temp(str(tmp_path)) as instance:
        storage = instance.event_log_storage
        storage.set_concurrency_slots("gpu", 1)
        dead = instance.add_run(DagsterRun(job_name="j", run_id="dead0001",
                                           status=DagsterRunStatus.STARTED,
                                           tags={PID_TAG: str(_dead_pid())}))
        live = instance.add_run(DagsterRun(job_name="j", run_id="live0001",
                                           status=DagsterRunStatus.STARTED,
                                           tags={PID_TAG: str(os.getpid())}))
        assert storage.claim_concurrency_slot("gpu", dead.run_id, "train").is_claimed
        storage.claim_concurrency_slot("gpu", live.run_id, "train")  # queued behind it
        assert storage.get_concurrency_info("gpu").pending_step_count == 1
        assert release_dead_cli_slots(instance) == [dead.run_id]
        assert instance.get_run_by_id(dead.run_id).status == DagsterRunStatus.FAILURE
        info = storage.get_concurrency_info("gpu")
        assert {s.run_id for s in info.claimed_slots} <= {live.run_id}
        assert release_dead_cli_slots(instance) == []
