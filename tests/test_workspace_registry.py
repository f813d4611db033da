"""The seed's workspace against a real registry (CNCF distribution on 127.0.0.1): resolve, lock, install, no-op."""

# ruff: noqa: F811  (pytest fixtures imported from test_workspace_helpers)

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from test_workspace_helpers import (  # noqa: F401
    SEED_CATALOG,
    build_artifact,
    home,
    lock_json,
    make_workspace,
    publish_catalog,
    seed_config,
    snapshot,
)

from provisioning.cli import main
from provisioning.oci.open import open_storage

ORDER = ["aws", "containerd", "etcd", "upcloud", "kubernetes", "buildkit", "cilium"]


@pytest.fixture
def http_log(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every HTTP request this process sends, as 'METHOD path'."""
    log: list[str] = []
    real = requests.Session.send

    def send(self, request, **kw):  # type: ignore[no-untyped-def]
        log.append(f"{request.method} {request.path_url}")
        return real(self, request, **kw)

    monkeypatch.setattr(requests.Session, "send", send)
    yield log


@pytest.fixture
def namespace() -> str:
    return f"ws-{uuid.uuid4().hex[:10]}"  # the registry is shared by the session


@pytest.fixture
def published(registry, namespace: str) -> str:
    storage = open_storage(registry.host, tls_enabled=False)
    publish_catalog(storage, namespace=namespace)
    # a platform service image to pin (any manifest will do)
    meta = {"name": "orchestrator", "version": "1.2.0", "type": "service"}
    mdesc, manifest, blobs = build_artifact(
        meta, config_media_type="application/vnd.oci.image.config.v1+json", artifact_type=None
    )
    target = storage.repository(f"{namespace}-platform/orchestrator")
    for d, data in blobs:
        target.push(d, [data])
    target.push(mdesc, [manifest])
    target.tag(mdesc, "v1.2.0")
    return mdesc.digest


@pytest.fixture
def ws(tmp_path: Path, registry, namespace: str, published: str, home: Path, monkeypatch) -> Path:
    platform = {
        "platform": {
            "source_type": "oci",
            "oci": {"registry": registry.host, "namespace": f"{namespace}-platform", "tls_enabled": False},
            "images": {
                "orchestrator": f"{registry.host}/{namespace}-platform/orchestrator:v1.2.0",
                "control_center": f"{registry.host}/{namespace}-platform/control-center:v1.2.0",
            },
        }
    }
    root = make_workspace(tmp_path / "ws", seed_config(registry.host, namespace, extra=platform))
    monkeypatch.chdir(root)
    return root


def test_seed_workspace_from_a_real_registry(ws: Path, registry, namespace: str, published: str, capsys) -> None:
    assert "oci://127.0.0.1:" in (ws / "config" / "provisioning.yaml").read_text()  # the seed's full references
    assert main(["dep", "resolve"]) == 0
    lock = lock_json(ws)
    assert lock["order"] == ORDER
    assert lock["extensions"]["etcd"]["version"] == "3.5.9" and not lock["extensions"]["etcd"]["requested"]
    k8s = lock["extensions"]["kubernetes"]
    assert k8s["reference"] == f"oci://{registry.host}/{namespace}/kubernetes:1.28.0"
    assert (k8s["registry"], k8s["namespace"]) == (registry.host, namespace)
    for name, e in lock["extensions"].items():
        assert (ws / "extensions" / f"{e['type']}s" / name / "manifest.yaml").is_file()
    # platform images: pinned where the registry has them, left unpinned (with a warning) where not
    images = lock["platform"]["images"]
    assert images["orchestrator"]["digest"] == published
    assert images["control_center"]["digest"] is None


def test_second_resolve_makes_no_request(ws: Path, http_log: list[str], capsys) -> None:
    assert main(["dep", "resolve"]) == 0
    first = list(http_log)
    tag_lists = [r for r in first if r.endswith("/tags/list") or "/tags/list?" in r]
    assert len(tag_lists) == len(SEED_CATALOG) - 1  # one per name in the graph ("local" is not in it)
    assert not any("/blobs/" in r and r.startswith("HEAD") for r in first)
    http_log.clear()
    before = snapshot(ws)
    assert main(["dep", "resolve"]) == 0
    assert http_log == []
    assert snapshot(ws) == before
    assert main(["dep", "resolve", "--locked"]) == 0
    assert main(["dep", "tree", "kubernetes"]) == 0
    http_log.clear()
    assert main(["dep", "tree"]) == 0
    assert http_log == []


def test_cold_resolve_costs_the_minimum_requests(ws: Path, http_log: list[str]) -> None:
    assert main(["dep", "resolve", "--no-install"]) == 0
    names = 7
    chosen = 7
    minimum = names + 2 * chosen  # a tag list per name, a manifest and a config per chosen version
    probe = [r for r in http_log if "/provisioning-catalog/" in r]
    assert len(probe) == 1, probe  # the namespace has no catalog: one request learns that
    extension_requests = [r for r in http_log if "-platform/" not in r and r != "GET /v2/" and r not in probe]
    assert len(extension_requests) == minimum, extension_requests
    assert len([r for r in extension_requests if "/tags/list" in r]) == names
    assert len([r for r in extension_requests if r.startswith("GET") and "/manifests/" in r]) == chosen
    assert len([r for r in extension_requests if r.startswith("GET") and "/blobs/" in r]) == chosen  # configs only


def test_lock_reproduces_the_install_on_another_machine(ws: Path, tmp_path: Path, monkeypatch) -> None:
    assert main(["dep", "resolve"]) == 0
    other = tmp_path / "machine2" / "ws"
    (other / "config").mkdir(parents=True)
    for f in ("provisioning.yaml", "provisioning.lock"):
        shutil.copy(ws / "config" / f, other / "config" / f)
    monkeypatch.setenv("PROVISIONING_HOME", str(tmp_path / "machine2" / "home"))  # empty cache
    assert main(["dep", "resolve", "--locked", "-w", str(other)]) == 0
    assert snapshot(other / "extensions") == snapshot(ws / "extensions")
    assert (other / "config" / "provisioning.lock").read_bytes() == (ws / "config" / "provisioning.lock").read_bytes()


def test_unknown_name_and_registry_listing(tmp_path: Path, registry, namespace: str, published, home, capsys) -> None:
    text = seed_config(registry.host, namespace, modules={"taskservs": ["kubernetess"]})
    w = make_workspace(tmp_path / "w", text)
    assert main(["dep", "resolve", "-w", str(w)]) == 1
    err = capsys.readouterr().err
    assert f"no extension named 'kubernetess' is published at oci://{registry.host}/{namespace}/kubernetess" in err
    assert "Did you mean 'kubernetes'?" in err  # from the registry's catalog
    assert not (w / "extensions").exists()


def test_unreachable_registry_is_a_clear_error(tmp_path: Path, home, capsys) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    w = make_workspace(tmp_path / "w", seed_config(f"127.0.0.1:{port}", modules={"taskservs": ["kubernetes"]}))
    assert main(["dep", "resolve", "-w", str(w)]) == 1
    err = capsys.readouterr().err
    assert f"127.0.0.1:{port}" in err and "Traceback" not in err
    assert not (w / "extensions").exists() and not (w / "config" / "provisioning.lock").exists()
