# ruff: noqa: F811  (pytest fixtures imported from test_workspace_helpers)
"""The writer side of the catalog against a real registry: the incremental refresh agrees with a rebuild.

Versions and whole repositories are deleted from the registry and pushed behind the catalog's
back; the refresh at the end of a publish run must then say what a rebuild from the registry
says, at one tag list per repository it knows of (counted by a loopback proxy), and must never
push a catalog over one with a higher generation.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from registry_server import RegistryProxy
from test_catalog import namespace, proxy, storage_of  # noqa: F401 (fixtures)
from test_pipeline import doit
from test_pipeline_registry import project  # noqa: F401 (a fixture)
from test_workspace_helpers import SEED_CATALOG, extension_manifest, home, push  # noqa: F401
from test_workspace_helpers import publish_catalog as publish_seed

from provisioning.catalog import read_catalog, rebuild_catalog, write_catalog
from provisioning.catalog.refresh import CatalogRaced, refresh_catalog, write_over
from provisioning.catalog.registry import catalog_repository
from provisioning.cli import main
from provisioning.oci.descriptor import Descriptor

NS = "provisioning-extensions"  # the pipeline's default


def delete_version(storage, namespace: str, name: str, version: str) -> None:
    target = storage.repository(f"{namespace}/{name}")
    target.delete(target.resolve(version))


def rebuilt(storage, namespace: str):
    return rebuild_catalog(storage, namespace, names=[*SEED_CATALOG, "newcomer"])


def test_a_refresh_after_deletions_and_pushes_behind_its_back_agrees_with_a_rebuild(
    proxy: RegistryProxy, registry, namespace: str
) -> None:
    seeded = publish_seed(storage_of(registry.host), namespace=namespace)
    storage = storage_of(proxy.host)  # _catalog refused, as on GHCR: names come from the catalog and the run
    first = refresh_catalog(storage, namespace, [], names=list(SEED_CATALOG))
    assert first.status == "written" and first.rebuilt and first.generation == 1
    # behind the catalog's back: a version deleted, the newest version of another, a whole repository,
    # a version pushed with another tool, and a new repository the run itself publishes
    delete_version(storage, namespace, "kubernetes", "1.27.0")
    delete_version(storage, namespace, "containerd", "1.7.2")
    for version in SEED_CATALOG["buildkit"]["versions"]:
        delete_version(storage, namespace, "buildkit", version)
    push(storage, extension_manifest("etcd", "3.6.0"), namespace=namespace)
    new = push(storage, extension_manifest("newcomer", "0.1.0"), namespace=namespace)
    proxy.seen.clear()
    update = refresh_catalog(storage, namespace, [("newcomer", "0.1.0", new.digest)], names=list(SEED_CATALOG))
    asked = list(proxy.seen)
    assert update.status == "written" and update.generation == 2 and not update.rebuilt
    assert sorted(update.removed) == [
        "buildkit 0.11.0",
        "buildkit 0.12.0",
        "containerd 1.7.2",
        "kubernetes 1.27.0",
    ]
    assert sorted(update.added) == ["etcd 3.6.0", "newcomer 0.1.0"]
    loaded = read_catalog(storage, namespace)
    assert loaded is not None and loaded.catalog.generation == 2
    assert loaded.catalog.same_content(rebuilt(storage, namespace))
    assert "buildkit" not in loaded.catalog.extensions
    assert loaded.catalog.extensions["kubernetes"].versions["1.28.0"].digest == seeded["kubernetes:1.28.0"].digest
    # one tag list per repository the catalog names (the run saw none of their versions; the newcomer it
    # saw whole); reads only for what changed
    tag_lists = [p for _, p in asked if "/tags/list" in p]
    assert len(tag_lists) == len(SEED_CATALOG) == update.checked
    reads = [p for m, p in asked if m == "GET" and "/manifests/" in p and "provisioning-catalog" not in p]
    assert sorted(p.rsplit("/", 1)[1] for p in reads) == ["0.1.0", "1.7.0", "3.6.0"]  # containerd's newest now
    # a run that saw every version the catalog lists (as a publish of a tree holding them all does): no tag
    # list, nothing written
    everything = [(n, v, e.digest) for n, x in loaded.catalog.extensions.items() for v, e in x.versions.items()]
    proxy.seen.clear()
    again = refresh_catalog(storage, namespace, everything, names=list(SEED_CATALOG))
    assert again.status == "unchanged" and again.generation == 2 and again.checked == 0
    assert [m for m, p in proxy.seen if p != "/v2/"] == ["GET", "GET"] and again.requests == 2  # the catalog
    # a version another tool pushed into a repository the run saw whole: the merge job (full) finds it
    push(storage, extension_manifest("local", "1.1.0", "provider"), namespace=namespace)
    assert refresh_catalog(storage, namespace, everything, names=list(SEED_CATALOG)).status == "unchanged"
    merged = refresh_catalog(storage, namespace, everything, names=list(SEED_CATALOG), full=True)
    assert merged.status == "written" and merged.added == ["local 1.1.0"] and merged.checked == len(SEED_CATALOG) + 1
    assert read_catalog(storage, namespace).catalog.same_content(rebuilt(storage, namespace))  # type: ignore[union-attr]


def test_a_catalog_is_never_pushed_over_a_newer_one(registry, namespace: str) -> None:
    storage = storage_of(registry.host)
    publish_seed(storage, namespace=namespace)
    newer = rebuilt(storage, namespace)
    newer.generation = 5
    held = write_catalog(storage, namespace, newer)
    older = rebuilt(storage, namespace)
    older.generation = 3
    with pytest.raises(CatalogRaced) as exc:
        write_over(storage, namespace, older)
    assert "is at generation 5, this catalog would be generation 3: not pushed over it" in str(exc.value)
    assert "doit publish_catalog" in str(exc.value)
    target = storage.repository(catalog_repository(namespace))
    assert target.resolve("latest").digest == held.digest  # the newer one stays


class RacingCache:
    """A cache that, once the refresh has read the catalog, lets another writer publish a newer one.

    The other writer is real (it writes to the registry); only its timing is injected: between
    this refresh's read and its write, which no real server can be asked to arrange.
    """

    def __init__(self, storage, namespace: str, generation: int) -> None:
        self.storage, self.namespace, self.generation = storage, namespace, generation
        self.data: dict[str, bytes] = {}
        self.raced = 0

    def read_digest(self, digest: str) -> bytes | None:
        return self.data.get(digest)

    def store_bytes(self, desc: Descriptor, data: bytes) -> None:
        self.data[desc.digest] = data
        if desc.media_type.endswith("catalog.v1+json") and not self.raced:
            self.raced += 1
            theirs = rebuild_catalog(self.storage, self.namespace, names=list(SEED_CATALOG))
            theirs.generation = self.generation
            write_catalog(self.storage, self.namespace, theirs)


def test_a_refresh_that_loses_a_race_starts_again_from_the_newer_catalog(registry, namespace: str) -> None:
    storage = storage_of(registry.host)
    publish_seed(storage, namespace=namespace)
    assert refresh_catalog(storage, namespace, [], names=list(SEED_CATALOG)).generation == 1
    new = push(storage, extension_manifest("newcomer", "0.1.0"), namespace=namespace)
    cache = RacingCache(storage, namespace, generation=9)
    update = refresh_catalog(storage, namespace, [("newcomer", "0.1.0", new.digest)], cache=cache)
    assert cache.raced == 1
    assert update.status == "written" and update.generation == 10  # past the other writer's 9, not 2 over it
    loaded = read_catalog(storage, namespace)
    assert loaded is not None and loaded.catalog.generation == 10
    assert loaded.catalog.same_content(rebuilt(storage, namespace))


def test_publish_and_the_merge_job_leave_a_catalog_that_a_rebuild_agrees_with(
    project: Path, fresh_registry, home, capsys
) -> None:
    """The pipeline end to end: versions deleted between runs leave the catalog the next run writes."""
    host = fresh_registry.host
    storage = storage_of(host)
    doit(project, "publish", f"registry={host}")

    def agrees() -> bool:
        capsys.readouterr()
        return main(["catalog", "rebuild", "--registry", host, "--namespace", NS, "--check"]) == 0

    assert agrees()
    svc1 = project / "extensions" / "taskservs" / "svc1"
    for f in ("manifest.yaml", "kcl/kcl.mod"):
        (svc1 / f).write_text((svc1 / f).read_text().replace("1.1.0", "1.1.1"))
    doit(project, "publish", f"registry={host}")
    assert sorted(read_catalog(storage, NS).catalog.extensions["svc1"].versions) == ["1.1.0", "1.1.1"]  # type: ignore[union-attr]
    # an old release deleted, and an extension retired: removed from the tree, its versions deleted
    delete_version(storage, NS, "svc1", "1.1.0")
    delete_version(storage, NS, "svc2", "1.2.0")
    shutil.rmtree(project / "extensions" / "taskservs" / "svc2")
    run = doit(project, "publish", f"registry={host}")
    assert "catalog: " in run.stdout and "2 removed" in run.stdout, run.stdout
    catalog = read_catalog(storage, NS).catalog  # type: ignore[union-attr]
    assert "svc2" not in catalog.extensions and sorted(catalog.extensions["svc1"].versions) == ["1.1.1"]
    assert agrees()
    # the tree's own version deleted and the merge job run (it publishes nothing): the catalog follows
    delete_version(storage, NS, "svc3", "1.3.0")
    doit(project, "publish_catalog", f"registry={host}")
    assert "svc3" not in read_catalog(storage, NS).catalog.extensions  # type: ignore[union-attr]
    assert agrees()


def test_an_unknown_name_is_matched_against_the_catalog_where_the_registry_lists_nothing(
    proxy: RegistryProxy, registry, namespace: str, home, tmp_path: Path, capsys
) -> None:
    from test_workspace_helpers import make_workspace, seed_config

    publish_seed(storage_of(registry.host), namespace=namespace)
    text = seed_config(proxy.host, namespace, modules={"taskservs": ["kubernetess"]})
    ws = make_workspace(tmp_path / "ws", text)
    assert main(["dep", "resolve", "-w", str(ws)]) == 1  # no catalog, and _catalog refused: nothing to suggest
    err = capsys.readouterr().err
    assert "no extension named 'kubernetess'" in err and "does not list its repositories" in err
    refresh_catalog(storage_of(registry.host), namespace, [], names=list(SEED_CATALOG))
    proxy.seen.clear()
    assert main(["dep", "resolve", "-w", str(ws)]) == 1
    err = capsys.readouterr().err
    assert "no extension named 'kubernetess'" in err and "Did you mean 'kubernetes'?" in err
    assert not any("_catalog" in p for _, p in proxy.seen)  # the namespace's catalog answered
    assert not (ws / "extensions").exists()


def untrusted_catalog(storage, namespace: str, generation: int) -> None:
    """A catalog artifact whose layer is not JSON, claiming ``generation`` in its manifest."""
    from provisioning.catalog.registry import layer_parts

    target = storage.repository(catalog_repository(namespace))
    blobs, mdesc, manifest = layer_parts(b"<html>not a catalog</html>", generation)
    for desc, data in blobs:
        target.push(desc, [data])
    target.push(mdesc, [manifest])
    target.tag(mdesc, "latest")


def test_a_rebuild_over_a_catalog_it_cannot_trust_still_passes_its_generation(
    registry, namespace: str, home, capsys
) -> None:
    storage = storage_of(registry.host)
    publish_seed(storage, namespace=namespace)
    untrusted_catalog(storage, namespace, 7)
    args = ["--registry", registry.host, "--namespace", namespace]
    assert main(["catalog", "rebuild", *args]) == 0
    out, err = capsys.readouterr()
    assert "the catalog is not JSON" in err and "rebuilding it from scratch" in err
    loaded = read_catalog(storage, namespace)
    assert loaded is not None and loaded.catalog.generation == 8  # past the one it replaced, so readers take it
    assert "generation 8" in out

    # the refresh at the end of a publish run does the same
    untrusted_catalog(storage, namespace, 11)
    update = refresh_catalog(storage, namespace, [], names=list(SEED_CATALOG))
    assert update.rebuilt and update.generation == 12 and "the catalog is not JSON" in update.note
    assert read_catalog(storage, namespace).catalog.same_content(loaded.catalog)  # type: ignore[union-attr]


def test_a_tag_pushed_again_with_other_content_is_left_to_the_merge_job_alone(registry, namespace: str) -> None:
    """Tags are not expected to move: the incremental check keeps the digest; ``full`` reads it again."""
    storage = storage_of(registry.host)
    publish_seed(storage, namespace=namespace)
    refresh_catalog(storage, namespace, [], names=list(SEED_CATALOG))
    delete_version(storage, namespace, "kubernetes", "1.27.0")
    other = push(
        storage, extension_manifest("kubernetes", "1.27.0", dependencies={"etcd": ">=3.5.0"}), namespace=namespace
    )
    assert refresh_catalog(storage, namespace, [], names=list(SEED_CATALOG)).status == "unchanged"
    update = refresh_catalog(storage, namespace, [], names=list(SEED_CATALOG), full=True)
    assert update.status == "written" and update.added == ["kubernetes 1.27.0"] and update.removed == []
    catalog = read_catalog(storage, namespace).catalog  # type: ignore[union-attr]
    assert catalog.extensions["kubernetes"].versions["1.27.0"].digest == other.digest
    assert catalog.same_content(rebuilt(storage, namespace))


def test_list_and_search_over_a_catalog_that_is_not_json_ask_the_registry_instead(
    proxy: RegistryProxy, registry, namespace: str, home, capsys
) -> None:
    storage = storage_of(registry.host)
    publish_seed(storage, namespace=namespace)
    untrusted_catalog(storage, namespace, 3)
    assert main(["oci", "list", "--registry", registry.host, "--namespace", namespace, "--output", "json"]) == 0
    out, err = capsys.readouterr()
    assert "the catalog is not JSON" in err and "asking the registry instead" in err
    assert "kubernetes" in {r["artifact"] for r in json.loads(out)}  # from _catalog
    # where _catalog is refused too: both said, exit 1, no traceback
    assert main(["oci", "search", "kube", "--registry", proxy.host, "--namespace", namespace]) == 1
    err = capsys.readouterr().err
    assert "the catalog is not JSON" in err and "does not allow listing its repositories" in err
    assert "Traceback" not in err
