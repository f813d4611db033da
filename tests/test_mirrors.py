"""Mirrors in the workspace config: tried in order by digest, a lying mirror refused, the origin last unless
mirror_only, the lock unchanged; a missing version says where the resolver looked."""

# ruff: noqa: F811  (pytest fixtures imported from test_workspace_helpers)

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import yaml
from test_workspace_helpers import home, lock_json, make_workspace, publish_catalog, seed_config  # noqa: F401

from provisioning.cli import main
from provisioning.errors import NotFound
from provisioning.oci.descriptor import Descriptor
from provisioning.oci.layout import LayoutStorage
from provisioning.oci.mirror import MirrorStorage
from provisioning.oci.namespace import copy_namespace
from provisioning.oci.open import open_storage
from provisioning.oci.store import fetch_bytes


def _config(origin: str, namespace: str, registry_section: dict) -> str:
    doc = yaml.safe_load(seed_config(origin, namespace))
    doc["dependencies"]["registry"] = registry_section
    return yaml.safe_dump(doc, sort_keys=False)


@pytest.fixture
def namespace() -> str:
    return f"mr-{uuid.uuid4().hex[:10]}"


def test_a_mirror_serving_other_bytes_is_refused_and_the_next_one_used(tmp_path: Path, caplog) -> None:
    good, bad = LayoutStorage(tmp_path / "good"), LayoutStorage(tmp_path / "bad")
    publish_catalog(good)
    copy_namespace(good, bad)
    repo = "provisioning-extensions/kubernetes"
    desc = good.repository(repo).resolve("1.28.0")
    doc = fetch_bytes(good.repository(repo), desc)
    layer = Descriptor.from_dict(__import__("json").loads(doc)["layers"][0])
    path = bad.repository(repo).blob_path(layer.digest)
    path.write_bytes(bytes(b ^ 0xFF for b in path.read_bytes()))  # same size, other bytes
    origin_opened = []
    mirror = MirrorStorage(
        "harbor.example",
        [("./bad", lambda: bad), ("./good", lambda: good)],
        lambda: origin_opened.append(1) or good,
    )
    content = b"".join(mirror.repository(repo).fetch(layer))
    assert Descriptor.of(layer.media_type, content).digest == layer.digest
    assert "refused" in caplog.text and "./bad" in caplog.text
    assert origin_opened == []  # the origin was not needed

    only_bad = MirrorStorage("harbor.example", [("./bad", lambda: bad)], lambda: good, mirror_only=True)
    with pytest.raises(NotFound) as err:
        b"".join(only_bad.repository(repo).fetch(layer))
    assert "./bad served other content" in str(err.value) and "mirror_only" in str(err.value)


def test_mirrors_first_then_the_origin_and_the_lock_keeps_canonical_references(
    tmp_path: Path, registry, namespace: str, home: Path, capsys
) -> None:
    origin = open_storage(registry.host, tls_enabled=False)
    publish_catalog(origin, namespace=namespace)
    online = make_workspace(tmp_path / "online", seed_config(registry.host, namespace))
    assert main(["dep", "resolve", "-w", str(online)]) == 0
    # a partial mirror (no cilium) in front of the origin: what it lacks comes from the origin
    mirror = LayoutStorage(tmp_path / "mirror")
    names = [r for r in origin.catalog() if r.startswith(namespace + "/") and not r.endswith("/cilium")]
    copy_namespace(origin, mirror, repositories=names)
    ws = make_workspace(
        tmp_path / "ws", _config(registry.host, namespace, {"mirrors": {registry.host: [str(tmp_path / "mirror")]}})
    )
    assert main(["dep", "resolve", "-w", str(ws)]) == 0
    assert lock_json(ws)["extensions"] == lock_json(online)["extensions"]
    assert lock_json(ws)["extensions"]["cilium"]["reference"].startswith(f"oci://{registry.host}/")

    # mirror_only: cilium is nowhere to be found, and the message says where the resolver looked
    only = make_workspace(
        tmp_path / "only",
        _config(registry.host, namespace, {"mirrors": {registry.host: ["../mirror"]}, "mirror_only": True}),
    )
    capsys.readouterr()
    assert main(["dep", "resolve", "-w", str(only)]) == 1
    err = capsys.readouterr().err
    assert "cilium" in err and str(tmp_path / "mirror") in err and "mirror_only" in err
    assert "Traceback" not in err
