# ruff: noqa: F811  (the project fixture imported from test_pipeline_registry)
"""``doit publish shard=I/N`` and the merge job ``doit publish_catalog``, against a real registry.

Each shard runs in its own clone (as a CI matrix job does) through a loopback proxy that records
every request, so the test sees that a shard touches only its own extensions' repositories; the
merge turns the shards' reports into one summary, one report and one (signed) catalog.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from registry_server import RegistryProxy
from test_pipeline import doit
from test_pipeline_registry import COUNT, fresh_clone, project  # noqa: F401 (a fixture)

from provisioning.catalog import read_catalog, rebuild_catalog
from provisioning.errors import UsageError
from provisioning.oci.open import open_storage
from provisioning.tasks.shards import in_shard, parse_shard, shard_of

NS = "provisioning-extensions"
SHARDS = 3


def test_rendezvous_split_is_stable_complete_and_moves_only_what_was_added() -> None:
    keys = [f"taskservs/svc{i}" for i in range(500)]
    split = {k: shard_of(k, 4) for k in keys}
    assert split == {k: shard_of(k, 4) for k in keys}  # the same on every machine
    sizes = [list(split.values()).count(i) for i in (1, 2, 3, 4)]
    assert all(100 <= n <= 150 for n in sizes), sizes  # about a quarter each
    dirs = [Path("/x/taskservs") / f"svc{i}" for i in range(500)]
    parts = [in_shard(dirs, (i, 4)) for i in (1, 2, 3, 4)]
    assert sorted(d for p in parts for d in p) == sorted(dirs)  # each extension in exactly one part
    grown = {k: shard_of(k, 4) for k in [*keys, "taskservs/newcomer"]}
    assert {k for k in keys if grown[k] != split[k]} == set()  # adding one extension moves nothing else
    assert parse_shard("2/4") == (2, 4)
    for bad in ("0/4", "5/4", "2", "a/b", "1/0"):
        with pytest.raises(UsageError, match="expected I/N"):
            parse_shard(bad)


def test_shards_publish_their_part_and_the_merge_writes_one_summary_and_one_signed_catalog(
    project: Path, tmp_path: Path, fresh_registry, monkeypatch
) -> None:
    from provisioning.signing.keys import load_public_key, write_key_pair
    from provisioning.signing.verify import verify_artifact

    registry = fresh_registry
    monkeypatch.setenv("COSIGN_PASSWORD", "shard-test-password")
    key, pub = write_key_pair(tmp_path / "release", b"shard-test-password")
    with RegistryProxy(registry.host) as proxy:
        reg = f"registry={proxy.host}"
        merge = fresh_clone(project, tmp_path / "merge")
        by_shard: dict[int, set[str]] = {}
        for i in range(1, SHARDS + 1):
            job = fresh_clone(project, tmp_path / f"shard-{i}")
            proxy.seen.clear()
            run = doit(job, "publish", reg, f"shard={i}/{SHARDS}")
            assert f"shard {i}/{SHARDS}: the catalog is written by the merge" in run.stdout
            report = json.loads((job / "build" / "publish" / "report.json").read_text())
            assert report["shard"] == {"index": i, "count": SHARDS} and "catalog" not in report
            mine = {r["name"] for r in report["extensions"]}
            by_shard[i] = mine
            touched = {p.split("/")[3] for _, p in proxy.seen if p.startswith(f"/v2/{NS}/")}
            assert touched <= mine, f"shard {i} touched {touched - mine}, which other shards publish"
            dest = merge / "build" / "publish" / "shards" / str(i)
            dest.mkdir(parents=True)
            shutil.copy(job / "build" / "publish" / "report.json", dest / "report.json")
        names = {"base", *(f"svc{i}" for i in range(1, COUNT))}
        assert sorted(n for part in by_shard.values() for n in part) == sorted(names)  # exactly once

        # a merge with a shard missing says which, and fails
        held = merge / "build" / "publish" / "shards" / "2"
        shutil.move(held, tmp_path / "held")
        partial = doit(merge, "publish_catalog", reg, check=False)
        assert partial.returncode == 1 and "no report from shard(s) 2" in partial.stdout + partial.stderr
        shutil.move(tmp_path / "held", held)

        proxy.seen.clear()
        merged = doit(merge, "publish_catalog", reg, f"sign={key}")
        # the shards saw every version the catalog lists: the merge reads no tag list, as one unsharded run
        assert not [p for _, p in proxy.seen if "/tags/list" in p], proxy.seen
        assert f"publish summary: {COUNT} published, 0 unchanged, 0 refused, 0 failed" in merged.stdout
        report = json.loads((merge / "build" / "publish" / "report.json").read_text())
        assert report["counts"]["published"] == COUNT and len(report["extensions"]) == COUNT
        # the failed merge above already wrote the catalog (the registry holds what the two shards published,
        # and the tree names the rest); this one signs it
        assert report["catalog"]["status"] in ("written", "unchanged")

    storage = open_storage(registry.host, tls_enabled=False)
    loaded = read_catalog(storage, NS)
    assert loaded is not None and set(loaded.catalog.extensions) == names
    assert loaded.catalog.same_content(rebuild_catalog(storage, NS))
    target = storage.repository(f"{NS}/provisioning-catalog")
    check = verify_artifact(target, target.resolve("latest"), [load_public_key(pub)])
    assert check.ok, check.reason()
    # the same registry under another name is another destination: the merge refuses the shards' reports
    other = doit(merge, "publish_catalog", f"registry={registry.host}", check=False)
    assert other.returncode == 1 and f"this merge is for {{'registry': '{registry.host}'" in other.stdout
    assert read_catalog(storage, NS).digest == loaded.digest  # type: ignore[union-attr]  # nothing changed
