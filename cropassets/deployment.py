"""Where the steps of a run execute when deployed: the GPU request, the pool, the executor.

Two assets use the accelerator: ``cnn2d_checkpoint`` (training) and ``crop_map``
(inference); they are the assets that require the ``torch_device`` resource. Both carry

* ``pool=GPU_POOL``: the instance's concurrency pools (``deploy/dagster.yaml``) let one op
  at a time hold the ``gpu`` pool, on a laptop and on a cluster alike, and
* ``op_tags=GPU_OP_TAGS``: the ``dagster-k8s/config`` tag (dagster-k8s) that gives the pod
  of their step one ``nvidia.com/gpu`` and tolerates the taint GPU nodes usually carry.

Op tags configure step pods: they take effect when the code location runs with
``CROPASSETS_EXECUTOR=k8s`` (:func:`executor_for`), Dagster's ``k8s_job_executor``, which
launches every step of a run as its own Kubernetes Job under the ``K8sRunLauncher``
(``deploy/k8s/``, ``docs/deploy-kubernetes.md``). The run pod itself then only orchestrates
and needs no GPU; only the GPU steps' pods are scheduled on GPU nodes. Without that
executor (``dagster dev``, ``cropassets materialize``, a run launcher that runs every step
in one process) the tag is inert and ``TorchDevice`` uses CUDA when the process sees one.
"""

from __future__ import annotations

from typing import Any, Final

from dagster import ExecutorDefinition

GPU_POOL: Final = "gpu"
"""Concurrency pool of the assets that train or predict on the accelerator."""

GPU_RESOURCE: Final = "nvidia.com/gpu"
"""Kubernetes extended resource of an NVIDIA GPU (the NVIDIA device plugin advertises it)."""

K8S_CONFIG_TAG: Final = "dagster-k8s/config"
"""Tag dagster-k8s reads a step's (op tag) or a run's (run tag) Kubernetes config from."""

GPU_OP_TAGS: Final[dict[str, Any]] = {
    K8S_CONFIG_TAG: {
        # Extended resources are set as limits; Kubernetes requests the same amount.
        "container_config": {"resources": {"limits": {GPU_RESOURCE: 1}}},
        # GPU node pools are commonly tainted so that only GPU pods land there.
        "pod_spec_config": {"tolerations": [
            {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}]},
    },
}
"""Op tags of the training and inference assets: their step pod requests one GPU.

The schema is dagster-k8s's ``UserDefinedDagsterK8sConfig`` (``container_config`` is a
``V1Container``, ``pod_spec_config`` a ``V1PodSpec``); it is deep-merged with the run
launcher's ``run_k8s_config`` (CPU and memory requests stay as the instance sets them).
"""

EXECUTORS: Final = ("", "k8s")
"""Values of ``CROPASSETS_EXECUTOR``: empty (Dagster's default executor) or ``k8s``."""


def executor_for(name: str) -> ExecutorDefinition | None:
    """The executor of the code location's jobs for a ``CROPASSETS_EXECUTOR`` value.

    Args:
        name: ``""`` for Dagster's default (every step in a subprocess of the run process)
            or ``"k8s"`` for dagster-k8s's ``k8s_job_executor`` (every step a Kubernetes
            Job; needs the ``K8sRunLauncher`` of ``deploy/k8s/dagster-instance.yaml``).

    Returns:
        The executor definition, or None for Dagster's default.

    Raises:
        ValueError: Another value, naming the variable and the accepted values.
    """
    if not name:
        return None
    if name == "k8s":
        from dagster_k8s import k8s_job_executor  # the kubernetes client: only when deployed

        return k8s_job_executor
    raise ValueError(f"CROPASSETS_EXECUTOR must be one of {list(EXECUTORS)} (empty: Dagster's "
                     f"default executor), got {name!r}")
