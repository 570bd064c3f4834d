"""The Kubernetes deployment (deploy/k8s/) against Dagster's and dagster-k8s's own schemas.

The instance file is checked as the webserver, the daemon and each run pod would load it:
Dagster's instance schema first, then each configured class's schema (run launcher,
PostgreSQL storage, compute logs, artifacts) with its ``env:`` values resolved from the
ConfigMap and Secret files of the kustomization. From the launcher so configured, the Job
of a step is built as dagster-k8s's ``k8s_job_executor`` builds it (no cluster needed): the
training and inference steps ask for a GPU, the others do not. The manifests are loaded into
the Kubernetes client's models (unknown keys fail) and their cross references checked.
"""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import kubernetes.client
import pytest
import yaml
from dagster import AssetsDefinition, DagsterInvalidConfigError, DagsterRun
from dagster_k8s import K8sRunLauncher, construct_dagster_k8s_job, k8s_job_executor
from dagster_k8s.container_context import K8sContainerContext
from dagster_k8s.job import USER_DEFINED_K8S_CONFIG_KEY, get_user_defined_k8s_config
from dagster_k8s.models import k8s_model_from_dict, k8s_snake_case_dict

from cropassets.dagster_internals import InstanceRef, process_config, resolve_to_config_type
from cropassets.definitions import defs
from cropassets.deployment import (
    GPU_OP_TAGS,
    GPU_POOL,
    GPU_RESOURCE,
    K8S_CONFIG_TAG,
    executor_for,
)
from cropassets.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "k8s"
INSTANCE_FILE = K8S / "dagster-instance.yaml"
GPU_ASSETS = {"cnn2d_checkpoint", "crop_map"}
# The instance's configurable classes and the InstanceRef field each becomes.
SECTIONS = {"storage": "storage_data", "run_launcher": "run_launcher_data",
            "compute_logs": "compute_logs_data",
            "local_artifact_storage": "local_artifact_storage_data",
            "run_coordinator": "run_coordinator_data"}
KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: none, user: {token: none}}]
contexts: [{name: none, context: {cluster: none, user: none}}]
current-context: none
"""


# --- helpers -------------------------------------------------------------------------------

def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a kustomize env file (comments and blank lines skipped)."""
    pairs = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value
    return pairs


def deployment_env() -> dict[str, str]:
    """What ``cropassets-env`` and ``cropassets-secrets`` (its template) put in every pod."""
    return read_env_file(K8S / "cropassets.env") | read_env_file(K8S / "secrets.example.env")


def env_refs(node: Any) -> Iterator[str]:
    """Every ``{env: NAME}`` in a parsed YAML tree."""
    if isinstance(node, Mapping):
        if set(node) == {"env"} and isinstance(node["env"], str):
            yield node["env"]
        else:
            for value in node.values():
                yield from env_refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from env_refs(value)


def validate_instance(config_dir: Path) -> dict[str, Any]:
    """Check ``config_dir/dagster.yaml`` as Dagster does when it opens the instance.

    The instance schema (unknown or misplaced keys), then each configured class's own schema
    with ``env:`` values read from the environment (a variable that is not set fails),
    without instantiating the classes (no database, no cluster).

    Returns:
        The processed config of each section in :data:`SECTIONS`.

    Raises:
        DagsterInvalidConfigError: Naming the key or the environment variable.
    """
    ref = InstanceRef.from_dir(str(config_dir))
    values = {}
    for section, field in SECTIONS.items():
        data = getattr(ref, field)
        klass = getattr(importlib.import_module(data.module_name), data.class_name)
        result = process_config(resolve_to_config_type(klass.config_type()), data.config_dict)
        if not result.success:
            raise DagsterInvalidConfigError(
                f"{section} ({data.class_name}) in {config_dir / 'dagster.yaml'}",
                result.errors, data.config_dict)
        values[section] = result.value
    return values


def launcher_from(config: Mapping[str, Any], tmp_path: Path) -> K8sRunLauncher:
    """The run launcher the instance configures, on a kubeconfig that reaches no cluster."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    return K8sRunLauncher(**{**config, "load_incluster_config": False,
                             "kubeconfig_file": str(kubeconfig)})


def step_job(launcher: K8sRunLauncher, op_tags: Mapping[str, str]) -> kubernetes.client.V1Job:
    """The Job of one step as ``k8s_job_executor`` builds it: launcher config + op tags."""
    context = K8sContainerContext.create_for_run(
        DagsterRun(job_name="__ASSET_JOB"), launcher, include_run_tags=False
    ).merge(K8sContainerContext(run_k8s_config=get_user_defined_k8s_config(op_tags)))
    assert context.namespace == launcher.job_namespace
    return construct_dagster_k8s_job(
        context.get_k8s_job_config(None, launcher), args=["dagster", "api", "execute_step"],
        job_name="dagster-step-test", pod_name="dagster-step-test", component="step_worker",
        user_defined_k8s_config=context.run_k8s_config, labels={}, env_vars=[])


def manifests() -> list[dict[str, Any]]:
    """Every object of the kustomization's resources."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    return [doc for name in kustomization["resources"]
            for doc in yaml.safe_load_all((K8S / name).read_text()) if doc]


def assets_defs() -> list[AssetsDefinition]:
    """Every assets definition of the code location (asset checks included)."""
    return list(defs.resolve_asset_graph().assets_defs)


def requests_gpu(tags: Mapping[str, str]) -> bool:
    """Whether op tags give the step's pod a GPU (dagster-k8s's reading of the tag)."""
    limits = get_user_defined_k8s_config(tags).container_config.get("resources", {})
    return any(GPU_RESOURCE in (limits.get(k) or {}) for k in ("limits", "requests"))


@pytest.fixture
def instance_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the instance file as $DAGSTER_HOME/dagster.yaml, the pods' env applied."""
    for key, value in deployment_env().items():
        monkeypatch.setenv(key, value)
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(INSTANCE_FILE, home / "dagster.yaml")
    return home


def edit_instance(home: Path, edit: Any) -> None:
    """Rewrite ``home/dagster.yaml`` with ``edit(config)`` applied."""
    config = yaml.safe_load((home / "dagster.yaml").read_text())
    edit(config)
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))


# --- assets --------------------------------------------------------------------------------

def test_training_and_inference_and_nothing_else_request_the_gpu():
    """GPU tag, gpu pool and the torch_device resource go together, on exactly two assets."""
    tagged, pooled, torch_users = set(), set(), set()
    for a in assets_defs():
        names = {k.path[-1] for k in a.keys} or {a.node_def.name}
        if requests_gpu(a.node_def.tags):
            tagged |= names
        if a.is_executable and a.op.pool == GPU_POOL:
            pooled |= names
        if "torch_device" in a.required_resource_keys:
            torch_users |= names
    assert tagged == pooled == torch_users == GPU_ASSETS
    for name in GPU_ASSETS:
        op = defs.get_assets_def(name).op
        assert json.loads(op.tags[K8S_CONFIG_TAG]) == GPU_OP_TAGS[K8S_CONFIG_TAG]
    # the tags the executor reads are the step's (node) tags of the asset job
    job = defs.resolve_implicit_global_asset_job_def()
    for name in ("crop_map", "cnn2d_checkpoint", "week_model", "sos_map"):
        assert requests_gpu(job.graph.node_named(name).tags) == (name in GPU_ASSETS)
    assert K8S_CONFIG_TAG == USER_DEFINED_K8S_CONFIG_KEY


def test_pool_comments_name_the_gpu_assets():
    """Each instance file says which assets hold the gpu pool, and limits it to one op."""
    named = f"({', '.join(sorted(GPU_ASSETS))}) run in the \"{GPU_POOL}\" pool"
    for path in (ROOT / "deploy/dagster.yaml", ROOT / "deploy/dagster-postgres.yaml",
                 INSTANCE_FILE):
        text = path.read_text()
        assert named in " ".join(text.split()), path
        assert yaml.safe_load(text)["concurrency"]["pools"]["default_limit"] == 1, path


def test_executor_setting():
    assert executor_for("") is None
    assert executor_for("k8s") is k8s_job_executor
    assert load_settings({}).executor == ""
    assert load_settings({"CROPASSETS_EXECUTOR": " K8s "}).executor == "k8s"
    assert read_env_file(K8S / "cropassets.env")["CROPASSETS_EXECUTOR"] == "k8s"
    with pytest.raises(ValueError, match="CROPASSETS_EXECUTOR.*'dask'"):
        executor_for("dask")


# --- the instance --------------------------------------------------------------------------

def test_instance_validates_with_dagster_schema(instance_dir: Path):
    values = validate_instance(instance_dir)
    launcher = values["run_launcher"]
    env = deployment_env()
    assert launcher["job_namespace"] == env["CROPASSETS_K8S_NAMESPACE"]
    assert launcher["job_image"] == env["CROPASSETS_IMAGE"]
    assert values["storage"]["postgres_db"]["hostname"] == env["DAGSTER_PG_HOST"]
    assert values["storage"]["postgres_db"]["port"] == int(env["DAGSTER_PG_PORT"])
    # every variable the instance reads is in the ConfigMap or the Secret of every pod
    config = yaml.safe_load(INSTANCE_FILE.read_text())
    assert set(env_refs(config)) <= set(env), set(env_refs(config)) - set(env)
    assert launcher["env_config_maps"] == ["cropassets-env"]
    assert launcher["env_secrets"] == ["cropassets-secrets"]
    # what Dagster writes lives on the shared volume of every pod
    mount = launcher["volume_mounts"][0]["mount_path"]
    for path in (values["compute_logs"]["base_dir"], values["local_artifact_storage"]["base_dir"],
                 env["CROPASSETS_DATA"]):
        assert Path(path).is_relative_to(mount), path


def test_step_pods_of_training_and_inference_get_a_gpu(instance_dir: Path, tmp_path: Path):
    launcher = launcher_from(validate_instance(instance_dir)["run_launcher"], tmp_path)
    env = deployment_env()
    for name in ("crop_map", "cnn2d_checkpoint", "sos_map", "weekly_cube"):
        job = step_job(launcher, defs.get_assets_def(name).op.tags)
        pod = job.spec.template.spec
        container = pod.containers[0]
        limits, requests = container.resources.limits, container.resources.requests
        assert container.image == env["CROPASSETS_IMAGE"]
        assert pod.service_account_name == "cropassets"
        assert [m.mount_path for m in container.volume_mounts] == ["/data"]
        assert {s.config_map_ref.name for s in container.env_from if s.config_map_ref} == {
            "cropassets-env"}
        # the launcher's CPU and memory stay, deep-merged with the op tag
        assert requests == {"cpu": "1", "memory": "4Gi"} and limits["memory"] == "12Gi"
        if name in GPU_ASSETS:
            assert limits[GPU_RESOURCE] == "1"
            assert [t.key for t in pod.tolerations] == [GPU_RESOURCE]
        else:
            assert GPU_RESOURCE not in limits and not pod.tolerations
    # the run pod (run tags only) orchestrates: no GPU
    run_context = K8sContainerContext.create_for_run(
        DagsterRun(job_name="__ASSET_JOB"), launcher, include_run_tags=True)
    assert GPU_RESOURCE not in str(run_context.run_k8s_config.container_config)


@pytest.mark.parametrize("variable", ["DAGSTER_PG_HOST", "DAGSTER_PG_PASSWORD",
                                      "CROPASSETS_IMAGE", "CROPASSETS_K8S_NAMESPACE"])
def test_a_missing_environment_variable_is_named(instance_dir: Path, variable: str,
                                                 monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv(variable)
    with pytest.raises(DagsterInvalidConfigError, match=f'variable "{variable}" which is not set'):
        validate_instance(instance_dir)


@pytest.mark.parametrize(("edit", "key"), [
    (lambda c: c.update(run_launcer=c.pop("run_launcher")), "run_launcer"),
    (lambda c: c["run_launcher"]["config"].update(job_namepsace="x"), "job_namepsace"),
    (lambda c: c["storage"]["postgres"]["postgres_db"].update(hostnme="x"), "hostnme"),
    (lambda c: c["compute_logs"]["config"].update(base_directory="/x"), "base_directory"),
    (lambda c: c["concurrency"]["pools"].update(defaultlimit=2), "defaultlimit"),
])
def test_a_wrong_key_is_named(instance_dir: Path, edit: Any, key: str):
    edit_instance(instance_dir, edit)
    with pytest.raises(DagsterInvalidConfigError, match=f'unexpected config entry "{key}"'):
        validate_instance(instance_dir)


def test_a_wrong_kubernetes_key_is_named(instance_dir: Path, tmp_path: Path):
    """run_k8s_config and op tags are Kubernetes objects: dagster-k8s rejects unknown keys."""
    edit_instance(instance_dir, lambda c: c["run_launcher"]["config"]["run_k8s_config"][
        "container_config"].update(resource={}))
    launcher = launcher_from(validate_instance(instance_dir)["run_launcher"], tmp_path)
    with pytest.raises(Exception, match="V1Container.*'resource'"):
        step_job(launcher, {})
    bad = {"container_config": {"resources": {"limit": {GPU_RESOURCE: 1}}}}
    with pytest.raises(Exception, match="V1ResourceRequirements.*'limit'"):
        get_user_defined_k8s_config({K8S_CONFIG_TAG: json.dumps(bad)})
    with pytest.raises(DagsterInvalidConfigError, match="container_cfg"):
        get_user_defined_k8s_config({K8S_CONFIG_TAG: json.dumps({"container_cfg": {}})})


# --- the manifests -------------------------------------------------------------------------

def test_manifests_are_valid_kubernetes_objects():
    """Each object loads into the client's model of its kind (unknown keys fail)."""
    for doc in manifests():
        model = getattr(kubernetes.client, f"V1{doc['kind']}")
        obj = k8s_model_from_dict(model, k8s_snake_case_dict(model, doc))
        group = {"Deployment": "apps/v1", "Role": "rbac.authorization.k8s.io/v1",
                 "RoleBinding": "rbac.authorization.k8s.io/v1"}.get(doc["kind"], "v1")
        assert obj.api_version == group, doc["metadata"]["name"]


def test_manifests_refer_to_what_the_kustomization_defines():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    objects = manifests()
    names = {(d["kind"], d["metadata"]["name"]) for d in objects}
    config_maps = {g["name"] for g in kustomization["configMapGenerator"]}
    secrets = {g["name"] for g in kustomization["secretGenerator"]}
    for g in kustomization["configMapGenerator"] + kustomization["secretGenerator"]:
        for entry in g.get("files", []) + g.get("envs", []):
            source = entry.split("=")[-1]
            assert (K8S / source).exists() or source == "secrets.env", source
    assert (K8S / "secrets.example.env").exists()
    assert "deploy/k8s/secrets.env" in (ROOT / ".gitignore").read_text().split()
    env = read_env_file(K8S / "cropassets.env")
    assert kustomization["namespace"] == env["CROPASSETS_K8S_NAMESPACE"]
    [image] = kustomization["images"]
    assert f"{image['newName']}:{image['newTag']}" == env["CROPASSETS_IMAGE"]
    services = {d["metadata"]["name"]: d for d in objects if d["kind"] == "Service"}
    for d in (d for d in objects if d["kind"] == "Deployment"):
        pod = d["spec"]["template"]
        spec = pod["spec"]
        assert ("ServiceAccount", spec["serviceAccountName"]) in names
        assert d["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
        for volume in spec["volumes"]:
            if "configMap" in volume:
                assert volume["configMap"]["name"] in config_maps
            if "persistentVolumeClaim" in volume:
                claim = volume["persistentVolumeClaim"]["claimName"]
                assert ("PersistentVolumeClaim", claim) in names
        for c in spec["containers"]:
            assert c["image"] == image["name"]
            for source in c.get("envFrom", []):
                if "configMapRef" in source:
                    assert source["configMapRef"]["name"] in config_maps
                if "secretRef" in source:
                    assert source["secretRef"]["name"] in secrets
            mounted = {m["name"] for m in c.get("volumeMounts", [])}
            assert mounted <= {v["name"] for v in spec["volumes"]}
        service = services.get(d["metadata"]["name"])
        if service is not None:
            assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
            ports = {p["name"] for c in spec["containers"] for p in c.get("ports", [])}
            assert {p["targetPort"] for p in service["spec"]["ports"]} <= ports
    # the workspace reaches the code server's Service
    [location] = yaml.safe_load((K8S / "workspace.yaml").read_text())["load_from"]
    server = location["grpc_server"]
    assert [p["port"] for p in services[server["host"]]["spec"]["ports"]] == [server["port"]]
    # the run launcher names what exists
    launcher = yaml.safe_load(INSTANCE_FILE.read_text())["run_launcher"]["config"]
    assert ("ServiceAccount", launcher["service_account_name"]) in names
    assert launcher["instance_config_map"] in config_maps
    assert set(launcher["env_config_maps"]) <= config_maps
    assert set(launcher["env_secrets"]) <= secrets
    for volume in launcher["volumes"]:
        assert ("PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"]) in names


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (kustomize) not installed")
def test_kustomization_renders(tmp_path: Path):
    work = tmp_path / "k8s"
    shutil.copytree(K8S, work)
    shutil.copy(work / "secrets.example.env", work / "secrets.env")
    done = subprocess.run(["kubectl", "kustomize", str(work)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    rendered = [d for d in yaml.safe_load_all(done.stdout) if d]
    kinds = sorted(d["kind"] for d in rendered)
    assert kinds.count("Deployment") == 4 and {"ConfigMap", "Secret"} <= set(kinds)
    instance = next(d for d in rendered if d["metadata"]["name"] == "cropassets-instance")
    assert yaml.safe_load(instance["data"]["dagster.yaml"]) == yaml.safe_load(
        INSTANCE_FILE.read_text())
    assert {d["metadata"].get("namespace") for d in rendered if d["kind"] != "Namespace"} == {
        "cropassets"}
