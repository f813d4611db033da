"""Push and pull 200 generated extensions to a loopback registry: our code and oras-py side by side.

    python benchmarks/push_pull.py [--count 200] [--workers 4] [--keep DIR]

Generates realistic extensions (KCL schemas, Nushell scripts, Jinja templates, docs), starts
two fresh loopback docker-registry instances (one per client, so neither sees the other's
blobs), and times for each client:

- push: ours packages deterministically and publishes (one graph copy per extension);
  oras-py pushes the same tar.gz layer and config with the same media types;
- republish, nothing changed: what a fresh CI clone pays;
- pull: fetch the manifest and layer, verify, extract safely into a folder (oras-py's pull
  downloads the tar.gz, which is then extracted the same way).

Both clients run one extension at a time (``--workers`` adds a run of ours with a thread
pool, which is how ``doit -n N publish`` runs). Every HTTP request either client sends is
counted at requests' transport adapter.
"""

from __future__ import annotations

import argparse
import importlib
import io
import json
import logging
import random
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import requests.adapters

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from registry_server import RegistryServer  # noqa: E402

from provisioning.oci.descriptor import CONFIG_TYPE, LAYER_TYPE  # noqa: E402

NAMESPACE = "provisioning-extensions"

# ------------------------------------------------------------------------------------ generation

WORDS = (
    "cluster node control plane worker pod service ingress storage volume network policy secret config "
    "certificate rotation backup restore metrics logging tracing upgrade rollout health probe quota "
    "replica leader election snapshot encryption audit firewall route gateway mesh sidecar"
).split()
TASKSERVS = (
    "kubernetes containerd etcd cilium calico coredns postgres redis mysql mariadb mongodb kafka zookeeper "
    "rabbitmq nats minio ceph longhorn rook haproxy nginx traefik envoy istio linkerd vault consul nomad "
    "prometheus grafana loki tempo jaeger fluentbit opensearch elasticsearch keycloak harbor gitea "
    "argocd flux tekton buildkit registry cert-manager external-dns metallb velero"
).split()
PROVIDERS = "aws upcloud local hetzner gcp azure digitalocean openstack vsphere libvirt".split()
CLUSTERS = "web buildkit ci data observability edge gitops mesh storage ml".split()


def _para(rng: random.Random, sentences: int) -> str:
    out = []
    for _ in range(sentences):
        words = [rng.choice(WORDS) for _ in range(rng.randint(8, 18))]
        out.append(" ".join(words).capitalize() + ".")
    return " ".join(out)


def _kcl_schema(rng: random.Random, name: str, version: str) -> str:
    ident = name.replace("-", "_").title().replace("_", "")
    fields = []
    for i in range(rng.randint(8, 24)):
        kind, default = rng.choice((("str", '"default"'), ("int", str(rng.randint(1, 65535))), ("bool", "True")))
        fields.append(f"    {rng.choice(WORDS)}_{i}: {kind} = {default}")
    return (
        f'"""\n{name} settings.\n\n{_para(rng, 3)}\n"""\n\n'
        f"schema {ident}:\n"
        f'    """{_para(rng, 1)}"""\n'
        f'    name: str = "{name}"\n'
        f'    version: str = "{version}"\n'
        + "\n".join(fields)
        + '\n\n    check:\n        len(name) > 0, "name must not be empty"\n'
        + f"\n{name.replace('-', '_')} = {ident} {{}}\n"
    )


def _nu_script(rng: random.Random, name: str, action: str) -> str:
    steps = "\n".join(
        f'    print $"({action}) {name}: {rng.choice(WORDS)} {rng.choice(WORDS)} step {i}"'
        for i in range(rng.randint(6, 20))
    )
    return (
        f"# {action} {name}\n# {_para(rng, 2)}\n\n"
        f'def main [--check (-c), --settings (-s): string = "settings.yaml"] {{\n'
        f"    let cfg = if ($settings | path exists) {{ open $settings }} else {{ {{}} }}\n"
        f"{steps}\n"
        f'    if $check {{ print "check mode: nothing changed" }}\n'
        f"}}\n"
    )


def make_extension(root: Path, kind: str, name: str, version: str, rng: random.Random, deps: dict[str, str]) -> Path:
    """One extension folder as the seed describes it (kcl/, scripts/, templates/, docs/, tests/, manifest)."""
    ext = root / f"{kind}s" / name
    for sub in ("kcl", "scripts", "templates", "docs", "tests"):
        (ext / sub).mkdir(parents=True, exist_ok=True)
    manifest = {
        "name": name,
        "type": kind,
        "version": version,
        "description": f"{name} {kind}: {_para(rng, 1)[:120]}",
        "author": "Platform Team",
        "license": "Apache-2.0",
        "tags": sorted({rng.choice(WORDS) for _ in range(3)}),
        "dependencies": deps or None,
    }
    import yaml

    (ext / "manifest.yaml").write_text(yaml.safe_dump({k: v for k, v in manifest.items() if v}, sort_keys=False))
    (ext / "kcl" / "kcl.mod").write_text(f'[package]\nname = "{name}"\nedition = "v0.11.0"\nversion = "{version}"\n')
    (ext / "kcl" / f"{name}.k").write_text(_kcl_schema(rng, name, version))
    (ext / "kcl" / "version.k").write_text(f'version = "{version}"\n')
    dep_lines = "\n".join(f'    "{d}": "{c}"' for d, c in sorted(deps.items()))
    (ext / "kcl" / "dependencies.k").write_text(f"dependencies = {{\n{dep_lines}\n}}\n")
    for action in ("install", "check", "uninstall"):
        (ext / "scripts" / f"{action}.nu").write_text(_nu_script(rng, name, action))
    for t in range(rng.randint(1, 4)):
        body = "\n".join(f"{rng.choice(WORDS)}_{i}: {{{{ {rng.choice(WORDS)}_{i} }}}}" for i in range(30))
        (ext / "templates" / f"{name}-{t}.yaml.j2").write_text(f"# {name} template {t}\n{body}\n")
    (ext / "docs" / "README.md").write_text(
        f"# {name}\n\n{_para(rng, 12)}\n\n## Usage\n\n{_para(rng, 10)}\n\n## Settings\n\n{_para(rng, 14)}\n"
    )
    (ext / "tests" / "smoke.nu").write_text(f'print "smoke test {name}"\n')
    return ext


def extensions(root: Path, count: int) -> list[Path]:
    """The shared benchmark generator (``benchmarks/generate.py``) when present, else the one here."""
    try:
        shared = importlib.import_module("generate")
    except ImportError:
        shared = None
    if shared is not None and hasattr(shared, "generate") and hasattr(shared, "extension_dirs"):
        shared.generate(root, count)
        return list(shared.extension_dirs(root))
    return generate(root, count)


def generate(root: Path, count: int, seed: int = 2024) -> list[Path]:
    """A simpler generator of valid extensions (KCL, Nushell, templates, docs)."""
    rng = random.Random(seed)
    pools = [("provider", PROVIDERS), ("taskserv", TASKSERVS), ("cluster", CLUSTERS)]
    weights = (0.1, 0.75, 0.15)
    out: list[Path] = []
    names: set[str] = set()
    while len(out) < count:
        kind, pool = rng.choices(pools, weights)[0]
        name = rng.choice(pool)
        if name in names:
            name = f"{name}-{len(out)}"
        names.add(name)
        version = f"{rng.randint(0, 3)}.{rng.randint(0, 30)}.{rng.randint(0, 12)}"
        earlier = sorted(names - {name})
        deps = {d: f">={rng.randint(0, 1)}.0.0" for d in rng.sample(earlier, min(len(earlier), rng.randint(0, 3)))}
        out.append(make_extension(root, kind, name, version, rng, deps))
    return out


# ------------------------------------------------------------------------------------ measuring


class RequestCounter:
    """Counts every request sent through requests' HTTP adapter (both clients use it)."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()
        self._orig = requests.adapters.HTTPAdapter.send
        counter = self

        def send(adapter, request, *args, **kwargs):  # type: ignore[no-untyped-def]
            with counter._lock:
                counter.count += 1
            return counter._orig(adapter, request, *args, **kwargs)

        requests.adapters.HTTPAdapter.send = send  # type: ignore[method-assign]

    def close(self) -> None:
        requests.adapters.HTTPAdapter.send = self._orig  # type: ignore[method-assign]


@dataclass
class Phase:
    name: str
    seconds: float
    requests: int


def measure(counter: RequestCounter, name: str, work: Callable[[], object]) -> Phase:
    before = counter.count
    started = time.perf_counter()
    work()
    return Phase(name, time.perf_counter() - started, counter.count - before)


def side_by_side(
    counter: RequestCounter,
    name: str,
    items: list[object],
    ours: Callable[[object], object],
    theirs: Callable[[object], object],
) -> tuple[Phase, Phase]:
    """Run both clients item by item, alternating who goes first, so background load hits both alike."""
    mine, other = Phase(name, 0.0, 0), Phase(name, 0.0, 0)
    for i, item in enumerate(items):
        steps = [(mine, ours), (other, theirs)]
        for phase, work in steps if i % 2 == 0 else steps[::-1]:
            before = counter.count
            started = time.perf_counter()
            work(item)
            phase.seconds += time.perf_counter() - started
            phase.requests += counter.count - before
    return mine, other


def extract(archive: Path | io.BytesIO, dest: Path) -> None:
    from provisioning.archive import safe_extract

    safe_extract(archive, dest, what=str(archive))


# ------------------------------------------------------------------------------------ the two clients


class Ours:
    def __init__(self, host: str, work: Path) -> None:
        from provisioning.oci.open import open_storage

        self.host, self.work = host, work
        self.storage = open_storage(host, plain_http=True)

    def package(self, ext: Path) -> object:
        from provisioning.package import build_artifact

        return build_artifact(ext, use_git=False)

    def push(self, artifact: object) -> None:
        from provisioning.publish import publish

        result = publish(artifact, self.storage, NAMESPACE)  # type: ignore[arg-type]
        assert result.status in ("published", "unchanged"), result

    def republish(self, ext: Path) -> None:
        """What ``doit publish`` does from a fresh clone: ask the registry first, package only if changed."""
        from provisioning.publish import publish_extension

        result = publish_extension(ext, self.storage, NAMESPACE)
        assert result.status == "unchanged", result

    def pull(self, name: str, version: str) -> None:
        from provisioning.cli.oci.transfer import _content_layer, pull_into
        from provisioning.oci.reference import Reference
        from provisioning.oci.store import fetch_manifest

        target = self.storage.repository(f"{NAMESPACE}/{name}")
        _, raw = fetch_manifest(target, version)
        layer = _content_layer(Reference(self.host, f"{NAMESPACE}/{name}", version), json.loads(raw))
        pull_into(target, layer, self.work / "pulled-ours" / name)


class Oras:
    def __init__(self, host: str, work: Path) -> None:
        import oras.client

        logging.getLogger("oras").setLevel(logging.WARNING)
        self.host, self.work = host, work
        self.client = oras.client.OrasClient(hostname=host, insecure=True)
        self.staged: dict[str, tuple[Path, Path]] = {}

    def stage(self, ext: Path) -> tuple[str, str]:
        """oras pushes files: give it the same layer and config our packaging makes (not timed)."""
        from provisioning.package import build_artifact

        artifact = build_artifact(ext, use_git=False)
        folder = self.work / "oras-staging" / artifact.name
        folder.mkdir(parents=True, exist_ok=True)
        layer = folder / f"{artifact.name}-{artifact.version}.tar.gz"
        config = folder / "config.json"
        layer.write_bytes(artifact.layer)
        config.write_bytes(artifact.config)
        self.staged[artifact.name] = (layer, config)
        return artifact.name, artifact.version

    def push(self, name: str, version: str) -> None:
        layer, config = self.staged[name]
        response = self.client.push(
            target=f"{self.host}/{NAMESPACE}/{name}:{version}",
            files=[f"{layer}:{LAYER_TYPE}"],
            manifest_config=f"{config}:{CONFIG_TYPE}",
            manifest_annotations={"org.opencontainers.image.title": name},
            disable_path_validation=True,
            quiet=True,
        )
        assert response.status_code in (200, 201), response.text

    def pull(self, name: str, version: str) -> None:
        out = self.work / "pulled-oras-raw" / name
        files = self.client.pull(target=f"{self.host}/{NAMESPACE}/{name}:{version}", outdir=str(out))
        dest = self.work / "pulled-oras" / name
        for f in files:
            if f.endswith(".tar.gz"):
                extract(Path(f), dest)


# ------------------------------------------------------------------------------------ main


def run(count: int, workers: int, keep: Path | None) -> int:
    from provisioning.extension import load_extension

    work = Path(keep or tempfile.mkdtemp(prefix="provisioning-bench-"))
    if keep and work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    print(f"generating {count} extensions in {work / 'extensions'} …", flush=True)
    exts = extensions(work / "extensions", count)
    size = sum(f.stat().st_size for e in exts for f in e.rglob("*") if f.is_file())
    versions = {e: load_extension(e).version for e in exts}
    print(f"  {count} extensions, {sum(1 for e in exts for _ in e.rglob('*'))} files, {size / 1e6:.1f} MB of sources")

    counter = RequestCounter()
    reg_ours = RegistryServer(work / "registry-ours").start()
    reg_oras = RegistryServer(work / "registry-oras").start()
    reg_par = RegistryServer(work / "registry-ours-parallel").start() if workers > 1 else None
    try:
        ours, oras = Ours(reg_ours.host, work), Oras(reg_oras.host, work)
        for e in exts:  # oras needs files on disk: staging is not timed
            oras.stage(e)
        names = [(e.name, versions[e]) for e in exts]
        results: list[tuple[Phase, Phase]] = []

        artifacts: list[object] = []
        package = measure(counter, "package", lambda: artifacts.extend(ours.package(e) for e in exts))
        pairs = list(zip(artifacts, names, exts, strict=True))
        results.append(side_by_side(counter, "push", pairs, lambda p: ours.push(p[0]), lambda p: oras.push(*p[1])))
        ours_fresh = Ours(reg_ours.host, work)  # a fresh process's view: no warm connection or token
        oras_fresh = Oras(reg_oras.host, work)
        oras_fresh.staged = oras.staged
        results.append(
            side_by_side(
                counter,
                "republish, nothing changed",
                pairs,
                lambda p: ours_fresh.republish(p[2]),
                lambda p: oras_fresh.push(*p[1]),
            )
        )
        results.append(
            side_by_side(counter, "pull + extract", pairs, lambda p: ours.pull(*p[1]), lambda p: oras.pull(*p[1]))
        )
        parallel: list[Phase] = []
        if reg_par is not None:
            par = Ours(reg_par.host, work / "parallel")
            (work / "parallel").mkdir(exist_ok=True)
            with ThreadPoolExecutor(workers) as pool:
                parallel.append(measure(counter, "push", lambda: list(pool.map(par.push, artifacts))))
                parallel.append(measure(counter, "pull", lambda: list(pool.map(lambda nv: par.pull(*nv), names))))
    finally:
        counter.close()
        for reg in (reg_ours, reg_oras, reg_par):
            if reg is not None:
                reg.stop()

    _check_same_content(work, names)
    _report(count, package, results, parallel, workers)
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _check_same_content(work: Path, names: list[tuple[str, str]]) -> None:
    for name, _ in names:
        ours = sorted(p.relative_to(work / "pulled-ours" / name) for p in (work / "pulled-ours" / name).rglob("*"))
        theirs = sorted(p.relative_to(work / "pulled-oras" / name) for p in (work / "pulled-oras" / name).rglob("*"))
        if ours != theirs:
            raise SystemExit(f"pulled trees differ for {name}: ours {len(ours)} entries, oras {len(theirs)}")


def _report(
    count: int, package: Phase, results: list[tuple[Phase, Phase]], parallel: list[Phase], workers: int
) -> None:
    print()
    print(f"{count} extensions, loopback docker-registry, one extension at a time, the two clients alternating")
    header = f"{'phase':<28} {'ours s':>8} {'oras-py s':>10} {'oras/ours':>10} {'ours req':>9} {'oras req':>9}"
    print(header)
    print("-" * len(header))
    for mine, theirs in results:
        ratio = theirs.seconds / mine.seconds if mine.seconds else float("inf")
        print(
            f"{mine.name:<28} {mine.seconds:>8.2f} {theirs.seconds:>10.2f} {ratio:>9.1f}x "
            f"{mine.requests:>9} {theirs.requests:>9}"
        )
    print(
        f"packaging all {count} (ours, deterministic tar.gz + manifest; oras-py is handed the same files): "
        f"{package.seconds:.2f}s; ours package + push: {package.seconds + results[0][0].seconds:.2f}s"
    )
    for phase in parallel:
        print(f"ours with {workers} workers: {phase.name} {phase.seconds:.2f}s, {phase.requests} requests")
    per_ext = results[1][0].requests / count
    print(f"republish of unchanged extensions: {per_ext:.2f} requests per extension (ours)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=200, help="extensions to generate (default 200)")
    parser.add_argument("--workers", type=int, default=4, help="threads for the extra parallel run of ours (1: none)")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (default: a temp folder)")
    args = parser.parse_args(argv)
    return run(args.count, args.workers, args.keep)


if __name__ == "__main__":
    sys.exit(main())
