"""`doit publish sign=KEY` against a real registry: every artifact signed, an unchanged signed one costs one
request more, an unsigned one gets signed, a tag release signs, and a key that cannot be used publishes nothing."""

# ruff: noqa: F811  (pytest fixtures imported from other test modules)

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from test_pipeline import doit, executed
from test_pipeline_registry import COUNT, CountingRegistry, counting_registry, fresh_clone, project  # noqa: F401
from test_signing import PASSWORD, keys  # noqa: F401

from tools import require

ENV = {"COSIGN_PASSWORD": PASSWORD}


def report(root: Path) -> dict:
    return json.loads((root / "build" / "publish" / "report.json").read_text())


def cosign_verifies(ref: str, pub: Path, home: Path) -> bool:
    env = {**os.environ, "HOME": str(home)}
    cmd = [require("cosign"), "verify", "--key", str(pub), "--insecure-ignore-tlog=true", ref]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120).returncode == 0


def test_publish_signs_everything_and_an_unchanged_signed_artifact_costs_one_request(
    project: Path,
    tmp_path: Path,
    counting_registry: CountingRegistry,
    keys,
) -> None:
    reg, sign = f"registry={counting_registry.host}", f"sign={keys['alice'].key}"
    first = doit(project, "publish", reg, sign, env=ENV)
    assert f"{COUNT} published" in first.stdout
    assert f"signatures: {COUNT} signed now, 0 already signed" in first.stdout
    rep = report(project)
    assert rep["signing"]["counts"]["signed"] == COUNT
    assert all(e["signature"]["status"] == "signed" for e in rep["extensions"])
    ref = next(e["reference"] for e in rep["extensions"] if e["key"] == "taskservs/svc3")
    assert cosign_verifies(ref, keys["alice"].pub, tmp_path)
    assert not cosign_verifies(ref, keys["mallory"].pub, tmp_path)

    # a fresh clone: nothing uploaded, each signature found with one request more than the unsigned case
    clone = fresh_clone(project, tmp_path / "clone")
    before = counting_registry.requests()
    again = doit(clone, "publish", reg, sign, env=ENV)
    assert f"0 published, {COUNT} unchanged" in again.stdout
    assert f"signatures: 0 signed now, {COUNT} already signed" in again.stdout
    spent = counting_registry.request_lines()[before:]
    assert not [line for line in spent if line.startswith(('"PUT', '"POST', '"PATCH'))], spent
    # plus the namespace's catalog, read and found signed: its manifest, its layer, its .sig manifest
    assert len(spent) <= COUNT * 2.1 + 3, f"{len(spent)} requests for {COUNT} unchanged signed extensions: {spent}"

    # the doit database warm: nothing runs; the summary says the signatures were made by an earlier run
    warm = doit(clone, "publish", reg, sign, env=ENV)
    assert executed(warm.stdout, "publish") == set()
    assert f"{COUNT} signed in an earlier run" in warm.stdout


def test_unsigned_artifacts_get_signed_and_a_release_tag_signs(
    project: Path,
    tmp_path: Path,
    counting_registry: CountingRegistry,
    keys,
) -> None:
    reg = f"registry={counting_registry.host}"
    doit(project, "publish", reg, "tag=taskservs/svc3/v1.3.0")  # unsigned
    released = doit(project, "publish", reg, "tag=taskservs/svc4/v1.4.0", f"sign={keys['alice'].key}", env=ENV)
    assert "signatures: 1 signed now" in released.stdout
    clone = fresh_clone(project, tmp_path / "clone")
    before = counting_registry.requests()
    signed = doit(clone, "publish", reg, f"sign={keys['alice'].key}", env=ENV)
    assert f"{COUNT - 2} published, 2 unchanged" in signed.stdout
    assert f"signatures: {COUNT - 1} signed now, 1 already signed" in signed.stdout
    svc3 = next(e for e in report(clone)["extensions"] if e["key"] == "taskservs/svc3")
    assert svc3["status"] == "unchanged" and svc3["signature"]["status"] == "signed"
    pushed = [line for line in counting_registry.request_lines()[before:] if line.startswith('"PUT')]
    assert not [line for line in pushed if "svc3/manifests/1.3.0" in line]
    assert cosign_verifies(svc3["reference"], keys["alice"].pub, tmp_path)


def test_a_key_that_cannot_be_used_publishes_nothing(
    project: Path,
    counting_registry: CountingRegistry,
    keys,
) -> None:
    reg, sign = f"registry={counting_registry.host}", f"sign={keys['alice'].key}"
    wrong = doit(project, "publish", reg, sign, env={"COSIGN_PASSWORD": "wrong"}, check=False)
    assert wrong.returncode == 1
    assert "wrong password" in wrong.stdout + wrong.stderr
    assert "Traceback" not in wrong.stdout + wrong.stderr
    assert not [line for line in counting_registry.request_lines() if line.startswith(('"PUT', '"POST'))]
    missing = doit(project, "publish", reg, "sign=nowhere.key", env=ENV, check=False)
    assert missing.returncode == 1 and "no such key file" in missing.stdout + missing.stderr


def test_signing_key_from_the_config_and_the_embedded_store(project: Path, keys) -> None:
    (project / "config").mkdir()
    (project / "config" / "provisioning.yaml").write_text(
        f"signing:\n  key: {keys['alice'].key}\ndependencies:\n  extensions:\n    oci:\n"
        f"      registry: {project / 'store'}\n"
    )
    out = doit(project, "publish", env=ENV)
    assert f"signatures: {COUNT} signed now" in out.stdout
    from provisioning.cli import main

    ref = f"oci-layout:{project / 'store'}/provisioning-extensions/svc1:1.1.0"
    assert main(["oci", "verify", ref, "--key", str(keys["alice"].pub)]) == 0
