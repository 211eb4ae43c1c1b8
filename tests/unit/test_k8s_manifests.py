"""The KubeRay manifests (k8s/) validate offline as the API server would validate them: KubeRay
kinds against ../shared/k8s-crds, built-in kinds against Kubernetes' schemas; the rendered dev and
prod overlays too. A wrong field, type or enum fails. The RayService carries serve-prod.yaml."""
import copy
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from memos_cluster.deploy.k8s import K8S_DIR, RAYSERVICE, sync
from memos_cluster.deploy.manifests import documents, errors
from memos_cluster.deploy.serve_config import PROD_SERVE_CONFIG

CRDS = str(Path(__file__).resolve().parents[3] / "shared" / "k8s-crds")
BASE = sorted(p for p in (K8S_DIR / "base").glob("*.yaml") if p.name != "kustomization.yaml")
STANDALONE = sorted((K8S_DIR / "standalone").glob("*.yaml"))


def base_docs():
    return [d for p in BASE for d in documents(p.read_text())]


def doc(kind):
    return copy.deepcopy(next(d for d in base_docs() if d["kind"] == kind))


@pytest.mark.parametrize("path", BASE + STANDALONE, ids=lambda p: p.name)
def test_base_manifests_validate(path):
    for document in documents(path.read_text()):
        assert list(errors(document, CRDS)) == []


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_rendered_overlays_validate(overlay):
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl (kustomize) is not installed")
    text = subprocess.run(["kubectl", "kustomize", str(K8S_DIR / "overlays" / overlay)],
                          capture_output=True, text=True, check=True).stdout
    rendered = documents(text)
    assert {d["kind"] for d in rendered} >= {"RayService", "RayJob"}
    for document in rendered:
        assert list(errors(document, CRDS)) == []
    service = next(d for d in rendered if d["kind"] == "RayService")
    shards = service["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["replicas"]
    assert shards == (1 if overlay == "dev" else 4)


def test_wrong_fields_types_and_enums_are_caught():
    service = doc("RayService")
    group = service["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]
    group["replica"] = 3  # misspelled field
    assert any("replica" in e for e in errors(service, CRDS))
    service = doc("RayService")
    service["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["replicas"] = "two"
    assert any("not of type 'integer'" in e for e in errors(service, CRDS))
    service = doc("RayService")
    service["spec"]["rayClusterConfig"]["authOptions"]["mode"] = "password"
    assert any("is not one of" in e for e in errors(service, CRDS))
    container = doc("RayJob")
    container["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0][
        "imagePullPolicy"] = 7
    assert list(errors(container, CRDS))
    claim = doc("PersistentVolumeClaim")
    claim["spec"]["accessModes"] = "ReadWriteMany"
    assert list(errors(claim, CRDS))
    claim = doc("PersistentVolumeClaim")
    claim["spec"]["storageClass"] = "fast"  # the field is storageClassName
    assert list(errors(claim, CRDS))


def test_the_rayservice_carries_the_production_serve_config():
    assert sync(check=True)
    service = doc("RayService")
    assert yaml.safe_load(service["spec"]["serveConfigV2"]) == \
        yaml.safe_load(PROD_SERVE_CONFIG.read_text())
    assert RAYSERVICE.name == "rayservice.yaml"


def test_the_deployment_has_what_the_cluster_needs():
    spec = doc("RayService")["spec"]
    ports = {p["name"]: p["port"] for p in spec["serveService"]["spec"]["ports"]}
    assert ports == {"grpc": 9000, "grpc-tls": 9443, "http": 8000}
    cluster = spec["rayClusterConfig"]
    assert cluster["authOptions"]["mode"] == "token"
    head = cluster["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert head["readinessProbe"]["httpGet"] == {"path": "/-/healthz", "port": 8000}
    assert head["livenessProbe"]["httpGet"]["path"] == "/-/healthz"
    env = {e["name"]: e for e in head["env"]}
    assert env["MEMOS__STORAGE__MILVUS_URI"]["valueFrom"]["secretKeyRef"]["name"] == "memos-milvus"
    shards, gpu = cluster["workerGroupSpecs"]
    # Every pod runs a Serve proxy: each needs the admin key and the TLS port's certificate.
    for pod in [cluster["headGroupSpec"]] + cluster["workerGroupSpecs"]:
        container = pod["template"]["spec"]["containers"][0]
        env = {e["name"]: e for e in container["env"]}
        assert env["MEMOS_ADMIN_KEY"]["valueFrom"]["secretKeyRef"] == \
            {"name": "memos-auth", "key": "admin-key"}
        assert env["MEMOS__GATEWAY__TLS_PORT"]["value"] == "9443"
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        assert env["MEMOS__GATEWAY__TLS_CERT_FILE"]["value"].startswith(mounts["memos-tls"])
        volumes = {v["name"]: v for v in pod["template"]["spec"]["volumes"]}
        assert volumes["memos-tls"]["secret"]["secretName"] == "memos-gateway-tls"
    assert "memos-shard" in shards["rayStartParams"]["resources"]
    gpu_pod = gpu["template"]["spec"]
    assert gpu_pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert gpu_pod["tolerations"][0]["key"] == "nvidia.com/gpu"
