"""Bundle a 200-extension closure from a loopback registry and load it into an empty one: ours and the oras CLI.

    PATH=DIR_WITH_ORAS:$PATH python benchmarks/bundle.py [--count 200] [--oras PATH]

Publishes COUNT extensions (each with a realistic ~30 kB layer and one referrer, an SBOM-like
manifest whose ``subject`` is the extension, found through the tag schema as distribution 2.8
has no referrers API) to a fresh loopback docker-registry, then times, in one run:

- ``provisioning bundle create OUT REF…`` (one process, every artifact and its referrer) against
  ``oras backup --include-referrers`` of the same references, one per repository into the same
  store shape (oras backs up one repository per call);
- a resumed create: the create killed (SIGKILL) once half of the artifacts are finished, then the
  same command again (timed);
- ``provisioning bundle push OUT REGISTRY`` into an empty registry against ``oras restore`` of the
  oras backups into another empty registry.

Both sides are checked afterwards (every tag and referrer present) so neither wins by doing less.
Our modules are compiled to bytecode first, as an installed package has them (a process that
compiles them instead spends about 0.25 s more starting). Beside each wall time: the CPU
seconds of the client's processes and of the registry during it (from ``/proc``), which a busy
machine disturbs less than wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from oci_samples import push_referrer  # noqa: E402
from registry_server import RegistryServer  # noqa: E402
from test_workspace_helpers import build_artifact, extension_manifest  # noqa: E402

from provisioning.oci.open import open_storage  # noqa: E402

NAMESPACE = "provisioning-extensions"


def publish(host: str, count: int) -> list[str]:
    rng = random.Random(7)
    storage = open_storage(host)
    refs = []
    words = "cluster node control plane worker pod service ingress storage volume network policy".split()
    for i in range(count):
        name, version = f"ext{i:03d}", f"1.{i % 7}.{i % 5}"
        meta = extension_manifest(name, version)  # a real extension: the create resolves each one
        body = " ".join(rng.choice(words) for _ in range(6000)).encode()
        files = {"manifest.yaml": json.dumps(meta).encode(), "kcl/main.k": body, "docs/README.md": body[:4000]}
        mdesc, manifest, blobs = build_artifact(meta, files=files)
        target = storage.repository(f"{NAMESPACE}/{name}")
        for d, data in blobs:
            target.push(d, [data])
        target.push(mdesc, [manifest])
        target.tag(mdesc, version)
        push_referrer(target, mdesc, f"sbom of {name}".encode())
        refs.append(f"{host}/{NAMESPACE}/{name}:{version}")
    return refs


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _process_cpu(pid: int) -> float:
    """CPU seconds a running process has used so far (user + system, from /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Timing:
    """Wall time, the client's CPU (child processes) and the registry's CPU of one measured step."""

    def __init__(self, wall: float, client: float, registry: float) -> None:
        self.wall, self.client, self.registry = wall, client, registry

    def __truediv__(self, other: Timing) -> float:
        return self.wall / other.wall


def timed(fn, registry: RegistryServer) -> Timing:  # type: ignore[no-untyped-def]
    pid = registry.process.pid if registry.process else 0
    cpu, reg, start = _children_cpu(), _process_cpu(pid), time.perf_counter()
    fn()
    return Timing(time.perf_counter() - start, _children_cpu() - cpu, _process_cpu(pid) - reg)


def ours(*argv: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-m", "provisioning", *argv], check=True, capture_output=True, env=env)


def ours_killed_halfway(argv: list[str], out: Path, count: int) -> None:
    """Run a create and kill it once ``count // 2`` artifacts are noted finished in its progress journal."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "provisioning", *argv]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    journal = out / ".bundle-progress"
    try:
        while proc.poll() is None:
            # the first line is the header (what was asked and what it resolved to), then one per artifact
            if journal.exists() and journal.read_bytes().count(b"\n") - 1 >= count // 2:
                proc.kill()
                break
            time.sleep(0.01)
    finally:
        proc.wait()
    if proc.returncode == 0:
        raise SystemExit("the create finished before it could be interrupted; use a larger --count")


def oras(binary: str, *argv: str) -> None:
    subprocess.run([binary, *argv, "--no-tty"], check=True, capture_output=True)


def check(host: str, refs: list[str]) -> None:
    storage = open_storage(host)
    for ref in refs:
        repo, _, tag = ref.split("/", 1)[1].rpartition(":")
        target = storage.repository(repo)
        desc = target.resolve(tag)
        if not target.referrers(desc):
            raise SystemExit(f"{host}: {ref} lost its referrer")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--oras", default=shutil.which("oras"))
    args = ap.parse_args()
    if not args.oras:
        raise SystemExit("the oras CLI is not on PATH (.ci/setup builds it); pass --oras PATH")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "provisioning")], check=True, env=env)
    work = Path(tempfile.mkdtemp(prefix="bench-bundle-"))
    try:
        with RegistryServer(work / "origin") as origin:
            refs = publish(origin.host, args.count)
            bundle, backup = work / "bundle", work / "oras"

            create_argv = ["bundle", "create", str(bundle), *refs, "--registry", origin.host]

            def ours_create() -> None:
                ours(*create_argv)

            def oras_backup() -> None:
                for ref in refs:
                    repo = ref.split("/", 1)[1].rpartition(":")[0]
                    oras(args.oras, "backup", "--plain-http", "--include-referrers",
                         "--distribution-spec", "v1.1-referrers-tag", "--output", str(backup / repo), ref)  # fmt: skip

            t_oras = timed(oras_backup, origin)
            t_ours = timed(ours_create, origin)
            t_noop = timed(ours_create, origin)
            shutil.rmtree(bundle)
            ours_killed_halfway(create_argv, bundle, args.count)
            t_resume = timed(ours_create, origin)
            ours("bundle", "verify", str(bundle))

        with RegistryServer(work / "site-ours") as a, RegistryServer(work / "site-oras") as b:
            t_push = timed(lambda: ours("bundle", "push", str(bundle), a.host), a)

            def oras_restore() -> None:
                for ref in refs:
                    repo, _, tag = ref.split("/", 1)[1].rpartition(":")
                    oras(args.oras, "restore", "--plain-http", "--distribution-spec", "v1.1-referrers-tag",
                         "--input", str(backup / repo), f"{b.host}/{repo}:{tag}")  # fmt: skip

            t_restore = timed(oras_restore, b)
            check(a.host, [r.replace(r.split("/")[0], a.host, 1) for r in refs])
            check(b.host, [r.replace(r.split("/")[0], b.host, 1) for r in refs])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    n = args.count
    rows = [
        (f"bundle create, {n} extensions + referrers", t_ours, t_oras, "oras backup --include-referrers"),
        ("bundle create again, nothing to copy", t_noop, None, ""),
        ("bundle create resumed, killed at 50%", t_resume, None, f"{t_resume / t_ours:.0%} of a full create"),
        (f"bundle push into an empty registry, {n}", t_push, t_restore, "oras restore"),
    ]
    print(f"{'':44} {'ours':>7} {'oras CLI':>8} {'ratio':>6}  {'CPU s: ours+registry':>20} {'oras+registry':>13}")
    for label, a, b, note in rows:
        other = f"{b.wall:7.1f}s" if b is not None else " " * 8
        ratio = f"{b / a:5.1f}x" if b is not None else " " * 6
        cpu_b = f"{b.client:5.1f} + {b.registry:4.1f}" if b is not None else " " * 12
        print(f"{label:44} {a.wall:6.1f}s {other} {ratio}  {a.client:11.1f} + {a.registry:4.1f}  {cpu_b:>13}  {note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
