"""Shared helpers for the workspace tests: build extension artifacts, publish them, write workspaces.

The artifacts follow DESIGN.md's contract (config blob = the extension's manifest as JSON, one
tar+gzip layer with the extension's files at the archive root) but are built here, so these
tests do not depend on the packaging code.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml

from provisioning.oci.descriptor import (
    ARTIFACT_TYPE,
    CONFIG_TYPE,
    LAYER_TYPE,
    MANIFEST,
    Descriptor,
    canonical_json,
)
from provisioning.oci.layout import LayoutStorage
from provisioning.oci.reference import DEFAULT_NAMESPACE

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# The seed's example workspace, and a registry in which it resolves (etcd comes in through kubernetes).
SEED_CATALOG: dict[str, dict[str, Any]] = {
    "aws": {"type": "provider", "versions": {"1.9.0": {}, "2.0.0": {}, "2.1.0-rc.1": {}}},
    "upcloud": {"type": "provider", "versions": {"1.4.0": {}, "1.5.0": {}}},
    "local": {"type": "provider", "versions": {"1.0.0": {}}},
    "containerd": {"type": "taskserv", "versions": {"1.6.0": {}, "1.7.0": {}, "1.7.2": {}}},
    "etcd": {"type": "taskserv", "versions": {"3.4.0": {}, "3.5.0": {}, "3.5.9": {}}},
    "kubernetes": {
        "type": "taskserv",
        "versions": {
            "1.27.0": {"containerd": ">=1.6.0", "etcd": ">=3.4.0"},
            "1.28.0": {"containerd": ">=1.7.0", "etcd": ">=3.5.0"},
            "1.29.0": {"containerd": ">=1.7.0", "etcd": ">=3.5.0"},
        },
    },
    "cilium": {
        "type": "taskserv",
        "versions": {"1.13.0": {"kubernetes": ">=1.26.0"}, "1.14.0": {"kubernetes": "^1.27"}},
    },
    "buildkit": {
        "type": "cluster",
        "versions": {"0.11.0": {"kubernetes": ">=1.26.0"}, "0.12.0": {"kubernetes": ">=1.27.0", "containerd": "^1.7"}},
    },
}

SEED_MODULES = {
    "providers": ["aws:2.0.0", "upcloud:1.5.0"],
    "taskservs": ["kubernetes:1.28.0", "containerd:1.7.0", "cilium:1.14.0"],
    "clusters": ["buildkit:0.12.0"],
}


def deterministic_tar(
    files: dict[str, bytes | tuple[bytes, int]], extra: Callable[[tarfile.TarFile], None] | None = None
) -> bytes:
    """A tar+gzip with sorted entries, zero mtimes and fixed owners (same bytes on every run)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs = sorted({"/".join(p.split("/")[: i + 1]) for p in files for i in range(p.count("/"))})
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for path in sorted(files):
            data = files[path]
            mode = 0o644
            if isinstance(data, tuple):
                data, mode = data
            info = tarfile.TarInfo(path)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
        if extra:
            extra(tar)
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, filename="") as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def extension_manifest(
    name: str,
    version: str,
    type_: str = "taskserv",
    dependencies: dict[str, str] | None = None,
    min_provisioning_version: str | None = "3.0.0",
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": name,
        "type": type_,
        "version": version,
        "description": f"{name} {type_}",
        "author": "Provisioning Team",
        "license": "MIT",
        "dependencies": dict(dependencies or {}),
        "tags": [name],
        "platforms": ["linux/amd64", "linux/arm64"],
    }
    if min_provisioning_version:
        doc["min_provisioning_version"] = min_provisioning_version
    return doc


def extension_files(meta: dict[str, Any]) -> dict[str, bytes | tuple[bytes, int]]:
    name = meta["name"]
    return {
        "manifest.yaml": yaml.safe_dump(meta, sort_keys=False).encode(),
        f"kcl/{name}.k": f'schema {name.capitalize()}:\n    version: str = "{meta["version"]}"\n'.encode(),
        "kcl/kcl.mod": f'[package]\nname = "{name}"\nversion = "{meta["version"]}"\n'.encode(),
        "scripts/install.nu": (f"def main [] {{ print 'installing {name}' }}\n".encode(), 0o755),
        "docs/README.md": f"# {name}\n".encode(),
    }


def build_artifact(
    meta: dict[str, Any],
    *,
    files: dict[str, bytes | tuple[bytes, int]] | None = None,
    layer: bytes | None = None,
    config_media_type: str = CONFIG_TYPE,
    artifact_type: str | None = ARTIFACT_TYPE,
) -> tuple[Descriptor, bytes, list[tuple[Descriptor, bytes]]]:
    """(manifest descriptor, manifest bytes, [(blob descriptor, blob bytes)])."""
    config = canonical_json(meta)
    if layer is None:
        layer = deterministic_tar(files if files is not None else extension_files(meta))
    cdesc = Descriptor.of(config_media_type, config)
    ldesc = Descriptor.of(LAYER_TYPE, layer, annotations={"org.opencontainers.image.title": f"{meta['name']}.tar.gz"})
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": cdesc.to_dict(),
        "layers": [ldesc.to_dict()],
        "annotations": {
            "org.opencontainers.image.title": meta["name"],
            "org.opencontainers.image.version": meta["version"],
        },
    }
    if artifact_type:
        doc["artifactType"] = artifact_type
    manifest = canonical_json(doc)
    mdesc = Descriptor.of(MANIFEST, manifest, artifact_type=artifact_type)
    return mdesc, manifest, [(cdesc, config), (ldesc, layer)]


def push(storage: Any, meta: dict[str, Any], *, namespace: str = DEFAULT_NAMESPACE, **kw: Any) -> Descriptor:
    """Push one artifact and tag it with its version."""
    mdesc, manifest, blobs = build_artifact(meta, **kw)
    target = storage.repository(f"{namespace}/{meta['name']}")
    for desc, data in blobs:
        target.push(desc, [data])
    target.push(mdesc, [manifest])
    target.tag(mdesc, meta["version"].replace("+", "_"))
    return mdesc


def publish_catalog(
    storage: Any,
    catalog: dict[str, dict[str, Any]] | None = None,
    *,
    namespace: str = DEFAULT_NAMESPACE,
    min_provisioning_version: str | None = "3.0.0",
) -> dict[str, Descriptor]:
    out = {}
    for name, spec in (catalog or SEED_CATALOG).items():
        for version, deps in spec["versions"].items():
            meta = extension_manifest(name, version, spec["type"], deps, min_provisioning_version)
            out[f"{name}:{version}"] = push(storage, meta, namespace=namespace)
    return out


def seed_config(
    registry: str,
    namespace: str = DEFAULT_NAMESPACE,
    *,
    modules: dict[str, list[Any]] | None = None,
    full_refs: bool = True,
    extra: dict[str, Any] | None = None,
    tls_enabled: bool = False,
) -> str:
    """The seed's example ``config/provisioning.yaml`` pointed at ``registry``."""
    mods = modules if modules is not None else SEED_MODULES
    if full_refs and modules is None:
        mods = {k: [f"oci://{registry}/{namespace}/{m}" for m in v] for k, v in mods.items()}
    doc: dict[str, Any] = {
        "dependencies": {
            "core": {"version": "3.5.0"},
            "extensions": {
                "source_type": "oci",
                "oci": {"registry": registry, "namespace": namespace, "tls_enabled": tls_enabled},
                "modules": mods,
            },
        },
    }
    for k, v in (extra or {}).items():
        doc[k] = v
    return "# Workspace configuration\n" + yaml.safe_dump(doc, sort_keys=False)


def make_workspace(root: Path, config_text: str) -> Path:
    (root / "config").mkdir(parents=True, exist_ok=True)
    (root / "config" / "provisioning.yaml").write_text(config_text)
    return root


def snapshot(root: Path) -> dict[str, str]:
    """Every file below ``root`` with its sha256 and mode (links as their targets)."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_symlink():
            out[rel] = "-> " + str(p.readlink())
        elif p.is_file():
            out[rel] = f"{oct(p.stat().st_mode & 0o777)} {hashlib.sha256(p.read_bytes()).hexdigest()}"
        else:
            out[rel] = "dir"
    return out


class CountingStorage:
    """Wraps a Storage and counts what a resolver asks of it (tag lists, manifests, blobs)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[tuple[str, str, str]] = []

    def repository(self, name: str) -> Any:
        return _CountingTarget(self, self.inner.repository(name))

    def catalog(self) -> list[str]:
        self.calls.append(("catalog", "", ""))
        return self.inner.catalog()


class _CountingTarget:
    def __init__(self, owner: CountingStorage, inner: Any) -> None:
        self.owner, self.inner, self.name = owner, inner, inner.name

    def _count(self, op: str, arg: str) -> None:
        self.owner.calls.append((op, self.name, arg))

    def tags(self) -> list[str]:
        self._count("tags", "")
        return self.inner.tags()

    def resolve(self, ref: str) -> Descriptor:
        self._count("resolve", ref)
        return self.inner.resolve(ref)

    def fetch(self, desc: Descriptor) -> Iterable[bytes]:
        self._count("fetch", desc.digest)
        return self.inner.fetch(desc)

    def exists(self, desc: Descriptor) -> bool:
        self._count("exists", desc.digest)
        return self.inner.exists(desc)

    def push(self, desc: Descriptor, content: Iterable[bytes]) -> None:
        self.inner.push(desc, content)

    def tag(self, desc: Descriptor, tag: str) -> None:
        self.inner.tag(desc, tag)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private ~/.provisioning (cache, locks) and no registry settings leaking in from the shell."""
    h = tmp_path / "home"
    monkeypatch.setenv("PROVISIONING_HOME", str(h))
    monkeypatch.delenv("PROVISIONING_REGISTRY", raising=False)
    monkeypatch.delenv("PROVISIONING_NAMESPACE", raising=False)
    return h


@pytest.fixture
def ws(tmp_path: Path, store: LayoutStorage, home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A workspace with the seed's config, resolving from ``store`` (the current folder)."""
    root = make_workspace(tmp_path / "ws", seed_config(str(store.root), full_refs=False))
    monkeypatch.chdir(root)
    return root


@pytest.fixture
def store(tmp_path: Path) -> LayoutStorage:
    """An embedded store holding the seed catalogue."""
    s = LayoutStorage(tmp_path / "store")
    publish_catalog(s)
    return s


def lock_json(workspace: Path) -> dict[str, Any]:
    return json.loads((workspace / "config" / "provisioning.lock").read_text())
