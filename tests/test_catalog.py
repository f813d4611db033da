"""The namespace catalog against a real registry: rebuild, list/search where ``_catalog`` is refused, resolves.

The registry is CNCF distribution on 127.0.0.1; a loopback proxy in front of it refuses
``/v2/_catalog`` the way GHCR does and records every request, so the tests count what each
command asked for.
"""

# ruff: noqa: F811  (pytest fixtures imported from test_workspace_helpers)

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from registry_server import RegistryProxy
from test_workspace_helpers import (  # noqa: F401
    SEED_CATALOG,
    extension_manifest,
    home,
    lock_json,
    make_workspace,
    push,
    seed_config,
)
from test_workspace_helpers import publish_catalog as publish_seed

from provisioning.catalog import (
    Catalog,
    CatalogError,
    VersionEntry,
    read_catalog,
    rebuild_catalog,
    write_catalog,
)
from provisioning.catalog.registry import catalog_repository, layer_parts
from provisioning.cli import main
from provisioning.oci.descriptor import Descriptor, canonical_json
from provisioning.oci.open import open_storage

ORDER = ["aws", "containerd", "etcd", "upcloud", "kubernetes", "buildkit", "cilium"]


@pytest.fixture
def namespace() -> str:
    return f"cat-{uuid.uuid4().hex[:10]}"  # the registry is shared by the session


@pytest.fixture
def proxy(registry) -> Iterator[RegistryProxy]:
    with RegistryProxy(registry.host) as p:
        yield p


@pytest.fixture
def seeded(registry, namespace: str) -> dict[str, Descriptor]:
    return publish_seed(open_storage(registry.host, tls_enabled=False), namespace=namespace)


def storage_of(host: str):
    return open_storage(host, tls_enabled=False)


def cli(*argv: str) -> int:
    return main(list(argv))


def catalog_requests(proxy: RegistryProxy) -> list[tuple[str, str]]:
    return [r for r in proxy.seen if r[1] != "/v2/"]


def workspace(tmp_path: Path, host: str, namespace: str, name: str = "ws", extra: str = "") -> Path:
    return make_workspace(tmp_path / name, seed_config(host, namespace) + extra)


# ----------------------------------------------------------------------------------------- the document


def test_parse_refuses_what_it_cannot_trust() -> None:
    good = Catalog("ns", 3)
    entry = VersionEntry("1.0.0", "sha256:" + "a" * 64, 10, dependencies={"etcd": ">=3"})
    good.add("kubernetes", entry, type_="taskserv", description="k8s", keywords=("cncf",))
    assert Catalog.parse(good.to_bytes(), "x").to_bytes() == good.to_bytes()
    doc = json.loads(good.to_bytes())
    bad = {
        b"not json{": "not JSON",
        b"[]": "not a JSON object",
        canonical_json({**doc, "generation": -1}): "generation",
        canonical_json({**doc, "schemaVersion": 9}): "schemaVersion",
    }
    v = doc["extensions"]["kubernetes"]["versions"]["1.0.0"]
    for field, value, said in (
        ("digest", "sha256:zz", "is not a sha256 digest"),
        ("size", 0, "positive integer"),
        ("dependencies", {"etcd": 3}, "name -> version range"),
        ("deprecated", "yes", "true or false"),
    ):
        broken = json.loads(good.to_bytes())
        broken["extensions"]["kubernetes"]["versions"]["1.0.0"] = {**v, field: value}
        bad[canonical_json(broken)] = said
    for data, said in bad.items():
        with pytest.raises(CatalogError) as exc:
            Catalog.parse(data, "reg/ns/provisioning-catalog:latest")
        assert said in str(exc.value) and "reg/ns/provisioning-catalog:latest" in str(exc.value)


# ----------------------------------------------------------------------------------------- rebuild


def test_rebuild_agrees_with_the_registry_and_check_notices_a_new_version(
    registry, namespace: str, seeded, home, capsys
) -> None:
    args = ("--registry", registry.host, "--namespace", namespace)
    assert cli("catalog", "rebuild", *args) == 0
    loaded = read_catalog(storage_of(registry.host), namespace)
    assert loaded is not None
    cat = loaded.catalog
    assert sorted(cat.extensions) == sorted(SEED_CATALOG)
    for name, spec in SEED_CATALOG.items():
        assert sorted(cat.extensions[name].versions) == sorted(spec["versions"])
        for version, deps in spec["versions"].items():
            e = cat.extensions[name].versions[version]
            assert e.digest == seeded[f"{name}:{version}"].digest
            assert e.dependencies == deps and e.platforms == ("linux/amd64", "linux/arm64")
            assert e.min_provisioning_version == "3.0.0" and e.deprecated is False
    # a second rebuild: same content, nothing written, the generation stays
    assert cli("catalog", "rebuild", *args, "--check") == 0
    assert "is up to date" in capsys.readouterr().out
    again = rebuild_catalog(storage_of(registry.host), namespace, previous=cat)
    assert again.same_content(cat) and again.generation == cat.generation + 1
    # a version published behind the catalog's back: --check says so and exits 1; rebuild bumps the generation
    push(storage_of(registry.host), extension_manifest("etcd", "3.6.0"), namespace=namespace)
    assert cli("catalog", "rebuild", *args, "--check") == 1
    assert "+ etcd 3.6.0: in the registry, not in the catalog" in capsys.readouterr().out
    assert cli("catalog", "rebuild", *args) == 0
    newer = read_catalog(storage_of(registry.host), namespace)
    assert newer is not None and newer.catalog.generation == cat.generation + 1
    assert "3.6.0" in newer.catalog.extensions["etcd"].versions


def test_writing_moves_the_tag_only_after_the_manifest_is_complete(registry, namespace: str) -> None:
    storage = storage_of(registry.host)
    first = write_catalog(storage, namespace, Catalog(namespace, 1))
    target = storage.repository(catalog_repository(namespace))
    assert target.resolve("latest").digest == first.digest
    second = write_catalog(storage, namespace, Catalog(namespace, 2))
    assert target.resolve("latest").digest == second.digest
    assert target.exists(first)  # the old manifest stays addressable by digest: a reader mid-switch is fine


# ----------------------------------------------------------------------------------------- list / search


def test_list_and_search_where_the_registry_refuses_the_catalog_api(
    proxy: RegistryProxy, registry, namespace: str, seeded, home, capsys
) -> None:
    args = ("--registry", proxy.host, "--namespace", namespace)
    # neither a provisioning catalog nor _catalog: say so plainly, and how to fix it
    for command in (("list",), ("search", "kube")):
        assert cli("oci", *command, *args) == 1
        err = capsys.readouterr().err
        assert f"there is no provisioning catalog ({proxy.host}/{namespace}/provisioning-catalog:latest" in err
        assert "does not allow listing its repositories" in err and "catalog rebuild" in err
    # rebuild from the extension names we know (no _catalog to ask), then both commands work
    names = [a for n in SEED_CATALOG for a in ("--name", n)]
    assert cli("catalog", "rebuild", *args, *names) == 0
    capsys.readouterr()
    proxy.seen.clear()
    assert cli("oci", "list", *args, "--output", "json") == 0
    rows = {r["artifact"]: r for r in json.loads(capsys.readouterr().out)}
    assert sorted(rows) == sorted(SEED_CATALOG)
    assert rows["kubernetes"]["versions"] == ["1.27.0", "1.28.0", "1.29.0"]
    assert rows["aws"]["latest"] == "2.0.0"  # the prerelease is listed, not offered as latest
    assert rows["kubernetes"]["description"] == "kubernetes taskserv"
    assert not any("/tags/list" in p or "_catalog" in p for _, p in proxy.seen)  # one document answered it
    assert cli("oci", "search", "kube", *args, "--output", "json") == 0
    found = json.loads(capsys.readouterr().out)
    assert [f["artifact"] for f in found] == ["kubernetes"]
    assert found[0]["type"] == "taskserv" and found[0]["version"] == "1.29.0"
    assert cli("oci", "search", "provider", *args, "--output", "json") == 0  # descriptions match too
    assert {f["artifact"] for f in json.loads(capsys.readouterr().out)} == {"aws", "upcloud", "local"}


# ----------------------------------------------------------------------------------------- resolving


def test_cold_resolve_reads_the_catalog_only_and_an_unchanged_one_costs_one_head(
    proxy: RegistryProxy, registry, namespace: str, seeded, home, tmp_path, monkeypatch
) -> None:
    assert rebuild_catalog is not None
    write_catalog(storage_of(registry.host), namespace, rebuild_catalog(storage_of(registry.host), namespace))
    ws = workspace(tmp_path, proxy.host, namespace)
    proxy.seen.clear()
    assert cli("dep", "resolve", "--no-install", "-w", str(ws)) == 0
    asked = proxy.seen
    assert len(asked) == 2, asked  # the catalog's manifest and its layer: the whole graph, and no ping
    assert all("/provisioning-catalog/" in p for _, p in asked)
    lock = lock_json(ws)
    assert lock["order"] == ORDER
    # another workspace on this machine: one HEAD learns the catalog did not change
    other = workspace(tmp_path, proxy.host, namespace, "other")
    proxy.seen.clear()
    assert cli("dep", "resolve", "--no-install", "-w", str(other)) == 0
    head = ("HEAD", f"/v2/{namespace}/provisioning-catalog/manifests/latest")
    assert proxy.seen == [head]  # exactly one request: the HEAD's answer proves the registry, no ping
    assert lock_json(other)["extensions"] == lock["extensions"]
    proxy.seen.clear()
    assert cli("dep", "check-updates", "-w", str(ws), "--output", "json") == 0
    assert proxy.seen == [head]
    # the same answer as the tag-list path
    monkeypatch.setenv("PROVISIONING_CATALOG", "off")
    plain = workspace(tmp_path, proxy.host, namespace, "plain")
    proxy.seen.clear()
    assert cli("dep", "resolve", "--no-install", "-w", str(plain)) == 0
    assert not any("provisioning-catalog" in p for _, p in proxy.seen)
    assert lock_json(plain)["extensions"] == lock["extensions"]


def test_without_the_ping_a_server_that_is_not_a_registry_is_still_named_so(
    registry, tls_registry, namespace: str, home, tmp_path, capsys
) -> None:
    """The first read stands in for the ping only when its answer proves a registry; else the ping words it."""
    page = (200, {"Content-Type": "text/html"}, b"<html>a web server</html>")
    with RegistryProxy(registry.host, refuse=lambda method, path: page) as web:
        ws = workspace(tmp_path, web.host, namespace, "web")
        assert cli("dep", "resolve", "--no-install", "-w", str(ws)) == 1
        err = capsys.readouterr().err
        assert "does not look like an OCI registry" in err and "Traceback" not in err
        assert ("GET", "/v2/") in web.seen  # the answer proved nothing: the ping ran and said why
    # a TLS registry reached over plain HTTP (the loopback default): the ping's advice, as before
    ws = workspace(tmp_path, tls_registry.host, namespace, "tls")
    assert cli("dep", "resolve", "--no-install", "-w", str(ws)) == 1
    err = capsys.readouterr().err
    assert "speaks HTTPS but was contacted over plain HTTP" in err and "tls_enabled: true" in err
    assert not (ws / "config" / "provisioning.lock").exists()


def bad_catalog(registry, namespace: str, layer: bytes) -> None:
    """Push a catalog artifact whose layer is ``layer`` (anything) and tag it latest."""
    target = storage_of(registry.host).repository(catalog_repository(namespace))
    blobs, mdesc, manifest = layer_parts(layer, 1)
    for desc, data in blobs:
        target.push(desc, [data])
    target.push(mdesc, [manifest])
    target.tag(mdesc, "latest")


def test_a_catalog_that_is_not_json_falls_back_or_stops_as_the_policy_says(
    registry, namespace: str, seeded, home, tmp_path, monkeypatch, capsys
) -> None:
    bad_catalog(registry, namespace, b"<html>not a catalog</html>")
    ws = workspace(tmp_path, registry.host, namespace)
    assert cli("dep", "resolve", "-w", str(ws)) == 0
    err = capsys.readouterr().err
    assert "the catalog is not JSON" in err and "resolving from tag lists instead" in err
    assert lock_json(ws)["order"] == ORDER
    doc = yaml.safe_load(seed_config(registry.host, namespace))
    doc["dependencies"]["extensions"]["catalog"] = "require"  # the workspace's policy
    strict = make_workspace(tmp_path / "strict", yaml.safe_dump(doc))
    assert cli("dep", "resolve", "-w", str(strict)) == 1
    err = capsys.readouterr().err
    assert "the catalog is not JSON" in err and "Traceback" not in err
    assert not (strict / "config" / "provisioning.lock").exists() and not (strict / "extensions").exists()


def test_a_catalog_older_than_one_seen_is_refused(registry, namespace: str, seeded, home, tmp_path, capsys) -> None:
    storage = storage_of(registry.host)
    real = rebuild_catalog(storage, namespace)
    real.generation = 5
    write_catalog(storage, namespace, real)
    assert cli("dep", "resolve", "--no-install", "-w", str(workspace(tmp_path, registry.host, namespace))) == 0
    # an older catalog (rolled back, or replayed by someone in the middle) that hides kubernetes 1.29.0 and 1.28.0
    old = rebuild_catalog(storage, namespace)
    old.generation = 3
    for v in ("1.28.0", "1.29.0"):
        del old.extensions["kubernetes"].versions[v]
    write_catalog(storage, namespace, old)
    capsys.readouterr()
    ws = workspace(tmp_path, registry.host, namespace, "later")
    assert cli("dep", "resolve", "--no-install", "-w", str(ws)) == 0
    err = capsys.readouterr().err
    assert "has generation 3, lower than generation 5 seen before" in err
    assert lock_json(ws)["extensions"]["kubernetes"]["version"] == "1.28.0"  # from the tag lists


@pytest.mark.parametrize("lie", ["missing", "other-artifact"])
def test_a_catalog_naming_a_digest_that_is_not_there_never_installs_the_wrong_thing(
    lie: str, registry, namespace: str, seeded, home, tmp_path, capsys
) -> None:
    storage = storage_of(registry.host)
    cat = rebuild_catalog(storage, namespace)
    real = cat.extensions["kubernetes"].versions["1.28.0"]
    if lie == "missing":
        digest, size = "sha256:" + "0" * 64, real.size
    else:  # the digest of another extension's artifact, which does exist
        etcd = seeded["etcd:3.5.9"]
        digest, size = etcd.digest, etcd.size
    cat.extensions["kubernetes"].versions["1.28.0"] = VersionEntry(
        "1.28.0", digest, size, dependencies=dict(real.dependencies), platforms=real.platforms
    )
    write_catalog(storage, namespace, cat)
    ws = workspace(tmp_path, registry.host, namespace)
    assert cli("dep", "resolve", "-w", str(ws)) == 0
    err = capsys.readouterr().err
    assert "the catalog is stale" in err and "resolved again from tag lists" in err
    lock = lock_json(ws)
    assert lock["extensions"]["kubernetes"]["digest"] == seeded["kubernetes:1.28.0"].digest
    installed = (ws / "extensions" / "taskservs" / "kubernetes" / "manifest.yaml").read_text()
    assert "name: kubernetes" in installed and "version: 1.28.0" in installed


def test_without_a_catalog_tag_lists_are_read_concurrently(
    proxy: RegistryProxy, namespace: str, seeded, home, tmp_path
) -> None:
    ws = workspace(tmp_path, proxy.host, namespace)
    assert cli("dep", "resolve", "--no-install", "-w", str(ws)) == 0
    assert proxy.max_inflight > 1  # the roots' tag lists and candidates overlap
    assert lock_json(ws)["order"] == ORDER


def test_a_rebuild_leaves_out_a_version_the_manifest_schema_refuses(tmp_path, home) -> None:
    """The catalog describes only what the resolver would accept: the one schema decides for both."""
    from provisioning.oci.memory import MemoryStorage

    storage = MemoryStorage()
    good = extension_manifest("redis", "1.0.0", "taskserv", {})
    push(storage, good, namespace="ns")
    bad = extension_manifest("redis", "1.1.0", "taskserv", {})
    bad["dependencies"] = ["etcd"]  # a list: the schema wants a mapping of name to range
    push(storage, bad, namespace="ns")
    catalog = rebuild_catalog(storage, "ns", names=["redis"])
    assert sorted(catalog.extensions["redis"].versions) == ["1.0.0"]
