"""``oci copy`` of a whole namespace: every repository, tag, signature and referrer, between any two stores."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest
from oci_samples import push_referrer, push_signature
from test_cli_oci import Cli
from test_cli_oci import env as env  # noqa: F401  (the fixture)
from test_layout import make_artifact

from provisioning.oci.attached import attached
from provisioning.oci.layout import LayoutStorage
from provisioning.oci.namespace import copy_namespace, rename
from provisioning.oci.open import open_storage


def fill(root: Path, ns: str) -> dict:
    """A store with two repositories under ``ns`` (one signed, one with a referrer) and one outside it."""
    store = LayoutStorage(root)
    a, b, c = store.repository(f"{ns}/alpha"), store.repository(f"{ns}/beta"), store.repository("elsewhere/gamma")
    a1, a2 = make_artifact("alpha", "1.0.0"), make_artifact("alpha", "1.1.0")
    b1, c1 = make_artifact("beta", "2.0.0"), make_artifact("gamma", "0.1.0")
    a1.push(a, "1.0.0")
    a2.push(a, "1.1.0")
    b1.push(b, "2.0.0")
    c1.push(c, "0.1.0")
    sig = push_signature(a, a1.manifest)
    ref = push_referrer(b, b1.manifest)
    return {"alpha": (a1, a2, sig), "beta": (b1, ref), "gamma": c1}


@pytest.fixture
def cli(env: Path, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(capsys, "unused", "unused")


def run(cli: Cli, *argv: str) -> tuple[int, str, str]:
    return cli(*argv, raw=True)


def test_rename_keeps_or_replaces_the_prefix() -> None:
    assert rename("ns/a", "ns", None) == "ns/a"
    assert rename("ns/a", "ns", "mirror/x") == "mirror/x/a"
    assert rename("ns/a/b", "", "m") == "m/ns/a/b"


def test_store_to_registry_to_store_keeps_tags_signatures_and_referrers(
    cli: Cli,
    env: Path,
    fresh_registry,
) -> None:
    ns = f"n{uuid.uuid4().hex[:8]}"
    made = fill(env / "src", ns)
    host = fresh_registry.host

    code, out, err = run(cli, "copy", str(env / "src"), host)
    assert code == 0, err
    assert "3 repositories" in out and "5 tags" in out  # 4 versions + 1 signature tag
    remote = open_storage(host)
    assert remote.repository(f"{ns}/alpha").tags() == sorted(
        ["1.0.0", "1.1.0", "sha256-" + made["alpha"][0].manifest.digest[7:] + ".sig"]
    )
    # the referrer arrived and is found again (distribution has no referrers API: the tag schema stands in)
    beta = remote.repository(f"{ns}/beta")
    assert [r.descriptor.digest for r in attached(beta, made["beta"][0].manifest)] == [made["beta"][1].digest]

    # only the namespace, from the registry into another store
    code, out, err = run(cli, "copy", "--output", "json", f"{host}/{ns}", str(env / "dst"))
    assert code == 0, err
    summary = json.loads(out)
    assert summary["repositories"] == 2 and summary["failed"] == 0
    dst = LayoutStorage(env / "dst")
    assert dst.catalog() == [f"{ns}/alpha", f"{ns}/beta"]
    a1, a2, sig = made["alpha"]
    alpha = dst.repository(f"{ns}/alpha")
    assert alpha.resolve("1.1.0").digest == a2.manifest.digest
    assert [x.descriptor.digest for x in attached(alpha, a1.manifest)] == [sig.digest]
    assert [x.descriptor.digest for x in attached(dst.repository(f"{ns}/beta"), made["beta"][0].manifest)] == [
        made["beta"][1].digest
    ]
    # skopeo reads what was written
    subprocess.run(["skopeo", "inspect", "--raw", f"oci:{alpha.path}:1.0.0"], check=True, capture_output=True)

    # a rerun moves nothing
    again = json.loads(run(cli, "copy", "--output", "json", f"{host}/{ns}", str(env / "dst"))[1])
    assert again["copied"] == 0 and again["up_to_date"] == again["tags"]


def test_an_interrupted_copy_is_finished_by_a_rerun(cli: Cli, env: Path) -> None:
    fill(env / "src", "ns")
    src, dst = LayoutStorage(env / "src"), LayoutStorage(env / "dst")
    first = copy_namespace(src, dst, "ns")
    assert not first.failed and first.totals()["copied"] > 0
    # lose one repository and one version of another (manifest and blobs), as a crash half-way would
    for path in (env / "dst" / "ns" / "beta").rglob("*"):
        if path.is_file():
            path.unlink()
    dst.repository("ns/alpha").delete(make_artifact("alpha", "1.1.0").manifest)
    code, out, err = run(cli, "copy", "--output", "json", str(env / "src"), str(env / "dst"))
    assert code == 0, err
    second = json.loads(out)
    assert second["failed"] == 0
    assert 0 < second["copied"] < first.totals()["copied"] + 2
    assert dst.repository("ns/beta").resolve("2.0.0")
    assert dst.repository("ns/alpha").exists(make_artifact("alpha", "1.1.0").layer)


def test_a_failing_destination_is_reported_and_exit_1(cli: Cli, env: Path) -> None:
    from registry_server import free_port

    fill(env / "src", "ns")
    code, out, err = run(cli, "copy", str(env / "src"), f"127.0.0.1:{free_port()}")
    assert code == 1
    assert "failed" in err and "run the same command again" in err


def test_single_artifact_copy_brings_its_signature(cli: Cli, env: Path) -> None:
    made = fill(env / "src", "ns")
    code, out, err = run(
        cli, "copy", f"oci-layout:{env / 'src' / 'ns' / 'alpha'}:1.0.0", str(env / "dst"), "--namespace", "ns"
    )
    assert code == 0, err
    alpha = LayoutStorage(env / "dst").repository("ns/alpha")
    assert alpha.tags() == sorted(["1.0.0", "sha256-" + made["alpha"][0].manifest.digest[7:] + ".sig"])
