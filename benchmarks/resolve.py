"""Resolve a 1,000-extension workspace: time cold and warm, and count registry requests.

    python benchmarks/resolve.py [--count 1000] [--versions 4] [--seed 7] [--registry] [--keep DIR]
                                 [--closure-only] [--baseline REV] [--repeat N]

Generates a catalogue of COUNT extensions (providers, taskservs, clusters) with several
versions each and a realistic dependency graph (a few hubs such as kubernetes and containerd
that most taskservs need, one to three dependencies per taskserv, four to eight per cluster,
caret and ``>=`` ranges, some prereleases, and a few newest versions that conflict so the
resolver must backtrack). The artifacts follow the artifact contract (config blob = manifest
as JSON, one tar+gzip layer) and go into an embedded OCI layout store, and with
``--registry`` also into a loopback docker-registry started like the test fixtures do.

A workspace listing every extension is then resolved (``dep resolve --no-install``):

- cold: empty cache, no lock: tag lists, manifests and config blobs are read;
- warm: cache filled (another workspace, no lock): configs come from the cache;
- locked: the lock is up to date: nothing is read at all.

Each run prints its time and its requests beside the minimum possible: one tag list per name
plus one manifest and one config per version chosen.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.append(str(ROOT / "benchmarks"))  # resolve_child, when loaded as a module (the tests)

import yaml  # noqa: E402
from resolve_child import http_counter  # noqa: E402

from provisioning.oci.descriptor import (  # noqa: E402
    ARTIFACT_TYPE,
    CONFIG_TYPE,
    LAYER_TYPE,
    MANIFEST,
    Descriptor,
    canonical_json,
)

NAMESPACE = "provisioning-extensions"
HUBS = ["containerd", "etcd", "kubernetes", "cert-manager", "prometheus", "longhorn", "coredns", "cilium"]


@dataclass
class Ext:
    name: str
    type: str
    versions: dict[str, dict[str, str]] = field(default_factory=dict)  # version -> dependencies


def generate(count: int, versions: int, seed: int) -> list[Ext]:
    """A catalogue whose dependencies only point backwards (a DAG), hubs first."""
    rng = random.Random(seed)
    n_providers = max(3, count // 60)
    n_clusters = max(2, count // 12)
    n_taskservs = count - n_providers - n_clusters
    exts: list[Ext] = []
    for i in range(n_providers):
        exts.append(Ext(f"provider-{i:03d}", "provider"))
    taskservs = [*HUBS, *(f"taskserv-{i:04d}" for i in range(n_taskservs - len(HUBS)))][:n_taskservs]
    exts += [Ext(n, "taskserv") for n in taskservs]
    exts += [Ext(f"cluster-{i:03d}", "cluster") for i in range(n_clusters)]
    by_name = {e.name: e for e in exts}

    def version_list() -> list[str]:
        major = rng.choice([0, 1, 1, 1, 2, 3])
        out = []
        minor = 0
        for _ in range(versions):
            out.append(f"{major}.{minor}.{rng.randint(0, 3)}")
            if rng.random() < 0.25:
                major, minor = major + 1, 0
            else:
                minor += 1
        if rng.random() < 0.2:
            out.append(f"{major + 1}.0.0-rc.1")  # a prerelease no plain range picks
        return out

    def constraint(dep: Ext) -> str:
        """A range the dependency's newest release satisfies (ranges that cannot meet would fail the run)."""
        vs = [v for v in dep.versions if "-" not in v]
        newest_major = vs[-1].split(".")[0]
        same_major = [v for v in vs if v.split(".")[0] == newest_major]
        pick = rng.choice(same_major)
        options = [f">={rng.choice(vs)}", f">={pick}, <{int(newest_major) + 1}.0.0"]
        if newest_major != "0":
            options += [f"^{pick}", f"^{newest_major}"]
        return rng.choice(options)

    hub_weights = {h: w for h, w in zip(HUBS, [18, 6, 30, 8, 8, 5, 4, 6], strict=True)}
    pool_names: list[str] = []
    for e in exts:
        vs = version_list()
        if e.type == "provider":
            fanout = 0
        elif e.type == "cluster":
            fanout = rng.randint(4, 8)
        else:
            fanout = rng.choice([0, 1, 1, 2, 2, 3]) if pool_names else 0
        candidates = [n for n in pool_names if by_name[n].type == "taskserv"]
        deps: dict[str, str] = {}
        if candidates and fanout:
            weights = [hub_weights.get(n, 1) for n in candidates]
            for d in rng.choices(candidates, weights=weights, k=fanout):
                deps[d] = constraint(by_name[d])
        for v in vs:
            e.versions[v] = dict(deps)
        # now and then a cluster's newest release needs a hub release that does not exist: the resolver
        # must reject it and take the one before (clusters only, so the graph stays solvable)
        if deps and e.type == "cluster" and rng.random() < 0.15:
            newest = [v for v in vs if "-" not in v][-1]
            hub = next(iter(deps))
            top = [v for v in by_name[hub].versions if "-" not in v][-1]
            e.versions[newest] = {**deps, hub: f">{top}"}
        if e.type == "taskserv":
            pool_names.append(e.name)
    return exts


def deterministic_layer(meta: dict[str, Any]) -> bytes:
    import gzip
    import io
    import tarfile

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, data in (
            ("manifest.yaml", yaml.safe_dump(meta, sort_keys=False).encode()),
            (f"kcl/{meta['name']}.k", f'schema S:\n    version: str = "{meta["version"]}"\n'.encode()),
            ("scripts/install.nu", b"def main [] { print 'install' }\n"),
        ):
            info = tarfile.TarInfo(path)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, filename="") as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def artifacts(exts: list[Ext]) -> Iterator[tuple[str, str, list[tuple[Descriptor, bytes]], Descriptor, bytes]]:
    for e in exts:
        for v, deps in e.versions.items():
            meta = {
                "name": e.name,
                "type": e.type,
                "version": v,
                "description": f"{e.name} {e.type}",
                "dependencies": deps,
                "min_provisioning_version": "3.0.0",
            }
            config = canonical_json(meta)
            layer = deterministic_layer(meta)
            c = Descriptor.of(CONFIG_TYPE, config)
            ld = Descriptor.of(LAYER_TYPE, layer)
            doc = {
                "schemaVersion": 2,
                "mediaType": MANIFEST,
                "artifactType": ARTIFACT_TYPE,
                "config": c.to_dict(),
                "layers": [ld.to_dict()],
            }
            manifest = canonical_json(doc)
            yield e.name, v, [(c, config), (ld, layer)], Descriptor.of(MANIFEST, manifest), manifest


def publish(storage: Any, exts: list[Ext], workers: int = 1) -> int:
    def one(item: tuple) -> None:
        name, version, blobs, mdesc, manifest = item
        target = storage.repository(f"{NAMESPACE}/{name}")
        for d, data in blobs:
            target.push(d, [data])
        target.push(mdesc, [manifest])
        target.tag(mdesc, version)

    items = list(artifacts(exts))
    if workers > 1:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(one, items))
    else:
        for item in items:
            one(item)
    return len(items)


# ------------------------------------------------------------------------------------------- counting


class CountingStorage:
    """Counts the store operations a resolve asks for (for the embedded store, which has no HTTP)."""

    def __init__(self, inner: Any, counts: Counter) -> None:
        self.inner, self.counts = inner, counts

    def repository(self, name: str) -> Any:
        return _CountingTarget(self.inner.repository(name), self.counts)

    def catalog(self) -> list[str]:
        self.counts["listing"] += 1
        return self.inner.catalog()


class _CountingTarget:
    def __init__(self, inner: Any, counts: Counter) -> None:
        self.inner, self.counts, self.name = inner, counts, inner.name

    def tags(self) -> list[str]:
        self.counts["tag lists"] += 1
        return self.inner.tags()

    def resolve(self, ref: str) -> Descriptor:
        self.counts["manifests"] += 1
        return self.inner.resolve(ref)

    def fetch(self, desc: Descriptor) -> Any:
        if not desc.is_manifest:  # a manifest read was counted at resolve (a GET by tag, remotely)
            self.counts["blobs"] += 1
        return self.inner.fetch(desc)

    def exists(self, desc: Descriptor) -> bool:
        return self.inner.exists(desc)


# ------------------------------------------------------------------------------------------- runs


def workspace(root: Path, registry: str, exts: list[Ext]) -> Path:
    modules: dict[str, list[str]] = {"providers": [], "taskservs": [], "clusters": []}
    for e in exts:
        modules[f"{e.type}s"].append(e.name)
    doc = {
        "dependencies": {
            "core": {"version": "3.5.0"},
            "extensions": {
                "source_type": "oci",
                "oci": {"registry": registry, "namespace": NAMESPACE, "tls_enabled": False},
                "modules": modules,
            },
        }
    }
    (root / "config").mkdir(parents=True, exist_ok=True)
    (root / "config" / "provisioning.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return root


@dataclass
class Run:
    store: str
    kind: str
    seconds: float
    counts: Counter
    chosen: int
    names: int
    cpu: float = 0.0  # the process's CPU time over the run (all its threads)
    registry_cpu: float | None = None  # the registry process's CPU time over the run (Linux /proc), if known
    round: int = 1  # --repeat: which round of the serial / baseline / pool comparison

    @property
    def requests(self) -> int:
        return sum(self.counts.values())

    @property
    def minimum(self) -> int:
        return self.names + 2 * self.chosen


@contextmanager
def environment(**values: str | None) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    for k, v in values.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def closure_roots(exts: list[Ext], count: int) -> list[Ext]:
    """The first ``count`` clusters: a workspace whose resolved closure is a fraction of the universe."""
    return [e for e in exts if e.type == "cluster"][:count]


def write_catalog_for(registry: str) -> tuple[float, int]:
    """What ``doit publish`` leaves behind: the namespace's catalog (here rebuilt from the registry)."""
    from provisioning.catalog import read_catalog, rebuild_catalog, write_catalog
    from provisioning.oci.open import open_storage

    storage = open_storage(registry, tls_enabled=False)
    t0 = time.perf_counter()
    old = read_catalog(storage, NAMESPACE)
    catalog = rebuild_catalog(storage, NAMESPACE, previous=old.catalog if old else None, workers=16)
    if old is None or not old.catalog.same_content(catalog):
        write_catalog(storage, NAMESPACE, catalog)
    return time.perf_counter() - t0, len(catalog.to_bytes())


def bench_paths(
    registry: str,
    universe: list[Ext],
    roots: list[Ext],
    work: Path,
    label: str,
    baseline: Baseline | None = None,
    repeat: int = 1,
    registry_cpu: Callable[[], float | None] = lambda: None,
) -> list[Run]:
    """This code's serial tag-list path, the concurrent one, and the catalog, on one workspace, in one run
    (with ``baseline``, also the serial path of the code at that revision; ``repeat`` rounds of the
    serial / baseline / pool comparison, one after another, so a burst of load hits one round, not one path)."""
    from provisioning.workspace import check_updates

    runs: list[Run] = []
    turn = 1

    def one(kind: str, ws_name: str, home: str, *, fresh: bool, **env: str | None) -> Any:
        os.environ["PROVISIONING_HOME"] = str(work / home)
        if fresh:
            shutil.rmtree(work / home, ignore_errors=True)
        shutil.rmtree(work / f"{label}-{ws_name}", ignore_errors=True)
        ws = workspace(work / f"{label}-{ws_name}", registry, roots)
        with environment(**env), http_counter() as counts:
            c0, r0 = time.process_time(), registry_cpu()
            seconds, outcome = timed_resolve(ws, None)
            cpu, r1 = time.process_time() - c0, registry_cpu()
        chosen = len(outcome.lock.extensions)
        spent = r1 - r0 if r0 is not None and r1 is not None else None
        runs.append(Run(label, kind, seconds, counts, chosen, chosen, cpu, spent, turn))
        return ws

    def updates(kind: str, ws: Path, home: str, **env: str | None) -> None:
        os.environ["PROVISIONING_HOME"] = str(work / home)
        with environment(**env), http_counter() as counts:
            t0 = time.perf_counter()
            rows = check_updates(ws)
            seconds = time.perf_counter() - t0
        runs.append(Run(label, kind, seconds, counts, 0, len(rows)))

    off = {"PROVISIONING_CATALOG": "off"}
    for turn in range(1, repeat + 1):
        serial = one("tags, serial", "serial", "home-serial", fresh=True, PROVISIONING_RESOLVE_WORKERS="1", **off)
        if turn == 1:
            updates("updates, serial", serial, "home-serial", PROVISIONING_RESOLVE_WORKERS="1", **off)
        if baseline is not None:  # beside this code's serial run, under the same load
            runs += bench_baseline(baseline, registry, roots, work, label, turn)
        conc = one("tags, pool", "pool", "home-pool", fresh=True, PROVISIONING_RESOLVE_WORKERS=None, **off)
        if turn == 1:
            updates("updates, pool", conc, "home-pool", **off)
    turn = 1
    cat = one("catalog, cold", "cat-a", "home-cat", fresh=True, PROVISIONING_CATALOG="auto")
    one("catalog, same", "cat-b", "home-cat", fresh=False, PROVISIONING_CATALOG="auto")
    updates("updates, catalog", cat, "home-cat", PROVISIONING_CATALOG="auto")
    return runs


@dataclass
class Baseline:
    """A temporary checkout of ``rev`` (``git worktree add --detach``), removed when the run ends."""

    rev: str
    commit: str
    checkout: Path

    @classmethod
    @contextmanager
    def checked_out(cls, rev: str, work: Path) -> Iterator[Baseline]:
        commit = _git("rev-parse", "--verify", f"{rev}^{{commit}}").strip()
        checkout = Path(tempfile.mkdtemp(prefix="baseline-", dir=work)) / "checkout"
        _git("worktree", "add", "--detach", str(checkout), commit)
        try:
            yield cls(rev, commit, checkout)
        finally:
            _git("worktree", "remove", "--force", str(checkout))
            shutil.rmtree(checkout.parent, ignore_errors=True)

    @property
    def label(self) -> str:
        return f"@{self.commit[:7]}"


def _git(*args: str) -> str:
    import subprocess

    done = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"git {' '.join(args)}: {done.stderr.strip() or 'failed'}")
    return done.stdout


def bench_baseline(
    baseline: Baseline, registry: str, roots: list[Ext], work: Path, label: str, turn: int = 1
) -> list[Run]:
    """The cold resolve of the same workspace by the code at ``baseline``: one at a time, and as it shipped.

    Each runs in a process of its own with PYTHONPATH at the checkout (resolve_child.py), after a
    warm-up resolve of a one-root workspace, so, like this code's runs, it pays no start-up.
    """
    import subprocess

    runs: list[Run] = []
    warm = workspace(work / f"{label}-baseline-warm-up", registry, roots[:1])
    for kind, flags in (("tags, serial", ["--serial"]), ("tags, as shipped", [])):
        shutil.rmtree(work / f"{label}-baseline", ignore_errors=True)  # no lock: a cold resolve
        ws = workspace(work / f"{label}-baseline", registry, roots)
        env = {**os.environ, "PYTHONPATH": str(baseline.checkout)}
        env.pop("PROVISIONING_RESOLVE_WORKERS", None)
        cmd = [sys.executable, str(ROOT / "benchmarks" / "resolve_child.py"), str(ws), str(work / "home-baseline")]
        done = subprocess.run(
            [*cmd, "--warm-up", str(warm), *flags], env=env, cwd=baseline.checkout, capture_output=True, text=True
        )
        if done.returncode != 0:
            tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
            print(f"baseline {baseline.rev} ({baseline.commit[:7]}) could not resolve this workspace: {tail}")
            return runs
        out = json.loads(done.stdout.strip().splitlines()[-1])
        if Path(out["code"]) != baseline.checkout.resolve():
            sys.exit(f"the baseline ran the code at {out['code']}, not the checkout of {baseline.rev}")
        store = f"{label}{baseline.label}"
        chosen = out["chosen"]
        runs.append(Run(store, kind, out["seconds"], Counter(out["counts"]), chosen, chosen, out["cpu"], round=turn))
    return runs


def process_cpu(pid: int) -> float | None:
    """A process's CPU time so far (user + system, from /proc), or None where there is no /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed_resolve(ws: Path, wrap: Callable[[Any], Any] | None) -> tuple[float, Any]:
    from provisioning.workspace import resolve_workspace
    from provisioning.workspace.stores import Stores, open_store

    factory = (lambda s: wrap(open_store(s))) if wrap else None
    t0 = time.perf_counter()
    outcome = resolve_workspace(ws, install_=False, stores=Stores(factory))
    return time.perf_counter() - t0, outcome


def bench_store(label: str, registry: str, exts: list[Ext], work: Path, http: bool) -> list[Run]:
    runs: list[Run] = []
    home = work / f"home-{label}"
    os.environ["PROVISIONING_HOME"] = str(home)
    shutil.rmtree(home, ignore_errors=True)
    for ws_name in ("ws-a", "ws-b"):
        shutil.rmtree(work / f"{label}-{ws_name}", ignore_errors=True)
    for kind, ws_name in (("cold", "ws-a"), ("warm", "ws-b"), ("locked", "ws-b")):
        ws = workspace(work / f"{label}-{ws_name}", registry, exts)
        counts: Counter = Counter()
        if http:  # the tag-list path, as labelled, even when a kept registry already has a catalog
            with environment(PROVISIONING_CATALOG="off"), http_counter() as counts:
                seconds, outcome = timed_resolve(ws, None)
        else:
            seconds, outcome = timed_resolve(ws, lambda s, c=counts: CountingStorage(s, c))
        if kind == "locked":
            assert outcome.reused_lock, "the second resolve should have reused the lock"
        runs.append(Run(label, kind, seconds, counts, len(outcome.lock.extensions), len(exts)))
    return runs


def report(runs: list[Run]) -> None:
    head = f"{'store':<18}{'run':<22}{'time':>9}{'catalog':>9}{'tag lists':>11}{'manifests':>11}{'configs':>9}"
    head += f"{'other':>7}{'requests':>10}{'minimum':>9}{'vs serial':>11}{'cpu/req':>9}{'registry':>10}"
    print(head)
    print("-" * len(head))
    serial: dict[tuple[str, str, int], Run] = {}
    rounds = max(r.round for r in runs) if runs else 1
    for r in runs:
        key = (r.store, r.kind.split(",")[0], r.round)
        if r.kind in ("tags, serial", "updates, serial"):
            serial[key] = r
        base = serial.get(key)
        ratio = f"{r.seconds / base.seconds * 100:>9.1f}%" if base and base is not r and base.seconds else ""
        minimum = r.minimum if not r.kind.startswith("updates") else r.names
        cpu = f"{r.cpu / r.requests * 1000:>7.2f}ms" if r.cpu and r.requests else ""
        reg = f"{r.registry_cpu / r.requests * 1000:>8.2f}ms" if r.registry_cpu is not None and r.requests else ""
        kind = r.kind + (f" #{r.round}" if rounds > 1 and r.kind.startswith("tags") else "")
        print(
            f"{r.store:<18}{kind:<22}{r.seconds:>8.3f}s{r.counts['catalog']:>9}{r.counts['tag lists']:>11}"
            f"{r.counts['manifests']:>11}{r.counts['blobs']:>9}{r.counts['other']:>7}{r.requests:>10}{minimum:>9}"
            f"{ratio:>11}{cpu:>9}{reg:>10}"
        )
    print(
        "\nminimum (tag-list path) = one tag list per name + one manifest and one config per version chosen;\n"
        "check-updates: one tag list per locked name. 'vs serial' = time as a share of the serial path's time\n"
        "in this run. warm runs read configs from the shared cache, locked runs read nothing; 'catalog, same'\n"
        "is another workspace on the same machine after the catalog was read once (one HEAD). cpu/req = the\n"
        "resolving process's CPU time (all threads) per request; registry = the registry process's CPU time\n"
        "per request in the same run (shown for this code's runs). On a machine of C cores shared by both,\n"
        "no pool can take less than (cpu/req + registry) x requests / C."
    )
    speedups(runs)


def speedups(runs: list[Run]) -> None:
    """The pool beside each serial run of the same workspace and round: this code's, and the baseline's;
    with several rounds, the median of the rounds' ratios too."""
    import statistics

    for store in dict.fromkeys(r.store for r in runs if r.kind == "tags, pool"):
        pools = {r.round: r for r in runs if r.store == store and r.kind == "tags, pool"}
        others = [r for r in runs if r.kind.startswith("tags, ") and r.kind != "tags, pool"]
        others = [r for r in others if r.store == store or r.store.startswith(store + "@")]
        if not others:
            continue
        print(f"\n{store}: the pool's speed-up (its time / requests, minimum {next(iter(pools.values())).minimum}):")
        for what in dict.fromkeys((r.store, r.kind) for r in others):
            pairs = [(r, pools[r.round]) for r in others if (r.store, r.kind) == what and r.round in pools]
            ratios = [r.seconds / p.seconds for r, p in pairs]
            name = (
                "this code's serial path"
                if what[0] == store
                else f"the code at {what[0][len(store) + 1 :]}, {what[1][6:]}"
            )
            each = ", ".join(
                f"{x:.2f}x ({r.seconds:.2f}s / {p.seconds:.2f}s)" for x, (r, p) in zip(ratios, pairs, strict=True)
            )
            median = f"; median {statistics.median(ratios):.2f}x" if len(ratios) > 1 else ""
            print(f"  against {name}: {each}{median}")
        cores = os.cpu_count() or 1
        bounds = [(p, (p.cpu + p.registry_cpu) / cores) for p in pools.values() if p.registry_cpu is not None]
        if bounds:
            shown = ", ".join(f"{b:.2f}s ({p.cpu:.2f}s + {p.registry_cpu:.2f}s)" for p, b in bounds)
            print(f"  the pool's floor on {cores} cores, (its CPU + the registry's) / {cores}: {shown}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--versions", type=int, default=4)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--registry", action="store_true", help="also run against a loopback docker-registry")
    ap.add_argument(
        "--roots",
        type=int,
        default=15,
        metavar="K",
        help="the registry comparison's workspace lists the first K clusters (15 of 1,000: a closure of 232)",
    )
    ap.add_argument("--keep", metavar="DIR", help="work in DIR and keep it (default: a temp folder, removed)")
    ap.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    ap.add_argument(
        "--baseline",
        metavar="REV",
        help="with --registry: also resolve the closure with the code of git revision REV (a temporary "
        "worktree), one request at a time and as that code shipped, beside this code's runs",
    )
    ap.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="N",
        help="with --registry: N rounds of the closure's serial / baseline / pool runs (each round's ratios, "
        "and their median)",
    )
    ap.add_argument(
        "--closure-only",
        action="store_true",
        help="with --registry: only the closure workspace's runs (no 1,000-extension workspace)",
    )
    args = ap.parse_args(argv)
    if (args.baseline or args.closure_only) and not args.registry:
        ap.error("--baseline and --closure-only compare registry runs: add --registry")

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="resolve-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    saved_home = os.environ.get("PROVISIONING_HOME")
    server = None
    scope = ExitStack()
    try:
        exts = generate(args.count, args.versions, args.seed)
        n_versions = sum(len(e.versions) for e in exts)
        edges = sum(len(next(iter(e.versions.values()))) for e in exts)
        print(f"catalogue: {len(exts)} extensions, {n_versions} versions, {edges} dependency edges")

        from provisioning.oci.layout import LayoutStorage

        store = work / "store"
        if not store.exists():
            t0 = time.perf_counter()
            publish(LayoutStorage(store), exts)
            print(f"embedded store: published {n_versions} artifacts in {time.perf_counter() - t0:.1f}s")
        runs = [] if args.closure_only else bench_store("layout", str(store), exts, work, http=False)

        if args.registry:
            from registry_server import RegistryServer

            from provisioning.oci.open import open_storage

            reuse = (work / "registry" / "data").is_dir()  # --keep: the registry's storage survives runs
            server = RegistryServer(work / "registry").start()
            if not reuse:
                t0 = time.perf_counter()
                publish(open_storage(server.host, tls_enabled=False), exts, workers=8)
                print(f"registry {server.host}: published {n_versions} artifacts in {time.perf_counter() - t0:.1f}s")
            if not args.closure_only:
                runs += bench_store("registry", server.host, exts, work, http=True)
            seconds, size = write_catalog_for(server.host)
            print(f"catalog: rebuilt from the registry and written in {seconds:.1f}s ({size // 1024} KiB)")
            baseline = scope.enter_context(Baseline.checked_out(args.baseline, work)) if args.baseline else None
            if baseline is not None:
                print(f"baseline: {args.baseline} is {baseline.commit}")
            roots = closure_roots(exts, args.roots)
            spent = partial(process_cpu, server.process.pid if server.process else 0)
            runs += bench_paths(server.host, exts, roots, work, "closure", baseline, max(1, args.repeat), spent)
            if not args.closure_only:
                runs += bench_paths(server.host, exts, exts, work, "all")
        print()
        report(runs)
        if args.json:
            Path(args.json).write_text(
                json.dumps(
                    [
                        {
                            "store": r.store,
                            "run": r.kind,
                            "seconds": round(r.seconds, 3),
                            "counts": dict(r.counts),
                            "requests": r.requests,
                            "minimum": r.minimum,
                            "cpu": round(r.cpu, 3),
                        }
                        for r in runs
                    ],
                    indent=2,
                )
            )
    finally:
        scope.close()
        if server is not None:
            server.stop()
        if saved_home is None:
            os.environ.pop("PROVISIONING_HOME", None)
        else:
            os.environ["PROVISIONING_HOME"] = saved_home
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
