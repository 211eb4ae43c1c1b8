"""Validation of Kubernetes manifests offline, as the API server would: KubeRay kinds against
their CRD's openAPIV3Schema (with jsonschema, after filling the schema's defaults, and strictly:
a field the schema does not know is an error, as `kubectl apply --validate=strict` makes it),
built-in kinds with kubernetes-validate's bundled schemas.

Who calls it: the manifest tests (tests/unit/test_k8s_manifests.py).
"""
from __future__ import annotations

import copy
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

import jsonschema
import yaml

KUBERNETES_VERSION = "1.31.0"  # built-in kinds are checked against this release's schemas
CRD_FILES = {"RayCluster": "ray.io_rayclusters.yaml", "RayService": "ray.io_rayservices.yaml",
             "RayJob": "ray.io_rayjobs.yaml"}


def documents(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


def _strict(schema: Any) -> Any:
    """The schema with unknown fields refused wherever the CRD lists its fields."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if ("properties" in out and "additionalProperties" not in out
                and not out.get("x-kubernetes-preserve-unknown-fields")):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


@lru_cache(maxsize=None)
def crd_schema(crd_dir: str, kind: str, version: str) -> dict[str, Any]:
    crd = yaml.safe_load((Path(crd_dir) / CRD_FILES[kind]).read_text())
    for entry in crd["spec"]["versions"]:
        if entry["name"] == version:
            return _strict(entry["schema"]["openAPIV3Schema"])
    raise KeyError(f"{kind} has no version {version}")


def with_defaults(instance: Any, schema: dict[str, Any]) -> Any:
    """A copy with the schema's `default`s filled in where absent (the API server does this
    before validating; several KubeRay fields are required but defaulted)."""
    instance = copy.deepcopy(instance)
    _fill(instance, schema)
    return instance


def _fill(instance: Any, schema: dict[str, Any]) -> None:
    if isinstance(instance, dict):
        for name, sub in schema.get("properties", {}).items():
            if name not in instance and "default" in sub:
                instance[name] = copy.deepcopy(sub["default"])
            if name in instance:
                _fill(instance[name], sub)
    elif isinstance(instance, list) and isinstance(schema.get("items"), dict):
        for item in instance:
            _fill(item, schema["items"])


def errors(doc: dict[str, Any], crd_dir: str) -> Iterator[str]:
    """Every problem the API server would reject the document for (empty when valid)."""
    kind = doc.get("kind", "")
    if kind in CRD_FILES:
        group, _, version = doc.get("apiVersion", "").partition("/")
        if group != "ray.io":
            yield f"{kind}: apiVersion {doc.get('apiVersion')!r} is not ray.io/..."
            return
        schema = crd_schema(crd_dir, kind, version)
        validator = jsonschema.Draft7Validator(schema)
        for error in validator.iter_errors(with_defaults(doc, schema)):
            where = "/".join(str(p) for p in error.absolute_path)
            yield f"{kind} {doc['metadata'].get('name')}: {where}: {error.message}"
        return
    import kubernetes_validate

    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = "/".join(str(p) for p in exc.path)
        yield f"{kind} {doc.get('metadata', {}).get('name')}: {where}: {exc.message}"
