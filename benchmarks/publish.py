"""Publish benchmark: ``doit publish`` side by side with an oras-py pipeline, one loopback registry.

    python benchmarks/publish.py [--count 200] [--seed-sample 20] [--json OUT.json] [--keep]

One run generates N realistic extensions (benchmarks/generate.py) into a git repository, starts
one CNCF distribution registry (Debian's ``docker-registry``) on 127.0.0.1 with its access log
on, and measures, each phase in a fresh ``git clone`` (new mtimes, no doit database) unless
said otherwise:

1. first publish of all N: ``doit -n 2 publish`` vs the oras-py pipeline (tarfile + one
   ``OrasClient.push`` per extension, one process) and an idealised client (package on one
   core, then push with 8 threads); the preflight says when its validation and its tests ended,
   to tell them from packaging and pushing; plus ``doit -n 2 validate`` alone in a fresh clone;
2. no-change republish from a fresh clone;
3. no-change republish with the doit database warm (same clone as 2, run again): nothing runs,
   yet every extension is looked up at the destination (a deleted artifact would be republished);
4. republish after 5% of the extensions changed (patch version bumped in manifest.yaml and
   kcl.mod, a script edited, committed, fresh clone); oras-py re-packages and re-pushes all.

Plus the seed's way: one ``provisioning oci push PATH NAME VERSION`` process per extension over
a sample, extrapolated to N. HTTP requests are counted from the registry's access log (one
line per request), between the start and end of each measured command. Every tool gets its
own namespace, so nobody sees another's blobs. Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))

import generate  # noqa: E402

CONFIG_TYPE = "application/vnd.provisioning.extension.config.v1+json"
LAYER_TYPE = "application/vnd.provisioning.extension.content.v1.tar+gzip"
ARTIFACT_TYPE = "application/vnd.provisioning.extension.v1"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
GIT_DATE = "2026-01-15T12:00:00+00:00"
LOAD_WARNING = 1.5  # 1-minute load average above which other processes were competing
ACCESS_LINE = re.compile(r'^\S+ - \S+ \[[^\]]+\] "([A-Z]+) (\S+) HTTP/[\d.]+" (\d{3}) ')


# ------------------------------------------------------------------------------------------- registry


class Registry:
    """One loopback docker-registry with its access log on; counts requests between marks."""

    def __init__(self, root: Path) -> None:
        from tests.registry_server import RegistryServer

        self.server = RegistryServer(root, extra_config={"log": {"level": "error", "accesslog": {"disabled": False}}})
        self.log = root / "registry.log"

    def __enter__(self) -> Registry:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()

    @property
    def host(self) -> str:
        return self.server.host

    def mark(self) -> int:
        return self.log.stat().st_size

    def paths_since(self, mark: int) -> list[str]:
        """The paths requested since ``mark`` (to see which repositories a command touched)."""
        time.sleep(0.05)
        with open(self.log, "rb") as fh:
            fh.seek(mark)
            text = fh.read().decode(errors="replace")
        return [m.group(2).split("?", 1)[0] for m in map(ACCESS_LINE.match, text.splitlines()) if m]

    def requests_since(self, mark: int) -> Counter[str]:
        """Requests logged since ``mark``, by ``METHOD kind status`` (kind: manifests, blobs, uploads, …)."""
        time.sleep(0.05)  # the registry writes the log line after the response
        with open(self.log, "rb") as fh:
            fh.seek(mark)
            text = fh.read().decode(errors="replace")
        counts: Counter[str] = Counter()
        for line in text.splitlines():
            if m := ACCESS_LINE.match(line):
                method, path, status = m.groups()
                counts[f"{method} {_kind(path)} {status}"] += 1
        return counts


def _kind(path: str) -> str:
    path = path.split("?", 1)[0]
    for kind in ("/blobs/uploads/", "/manifests/", "/blobs/", "/tags/list", "/_catalog", "/referrers/"):
        if kind in path:
            return kind.strip("/")
    return "ping" if path.rstrip("/") == "/v2" else "other"


# ------------------------------------------------------------------------------------------- trees


def git(cwd: Path, *args: str) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@example.invalid",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@example.invalid",
        "GIT_AUTHOR_DATE": GIT_DATE,
        "GIT_COMMITTER_DATE": GIT_DATE,
    }
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


def make_source(path: Path, count: int, seed: int) -> list[generate.Spec]:
    """A git repository holding ``extensions/<type>s/<name>/`` (what CI clones)."""
    specs = generate.generate(path / "extensions", count, seed)
    git(path, "init", "--quiet", "--initial-branch=main")
    git(path, "add", "-A")
    git(path, "commit", "--quiet", "-m", "extensions")
    return specs


def fresh_clone(source: Path, dest: Path) -> Path:
    """A CI checkout: new files (new mtimes), no doit database, no build folder."""
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(source), str(dest)], check=True)
    return dest


# ------------------------------------------------------------------------------------------- runs


@dataclass
class Run:
    """One measured command: wall time, the registry requests it caused, and what it reported."""

    seconds: float
    requests: int
    by_kind: dict[str, int] = field(default_factory=dict)
    detail: dict[str, Any] = field(default_factory=dict)
    cpu: float = 0.0  # user + system seconds of the command and every process it waited for


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISIONING_")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.pop("SOURCE_DATE_EPOCH", None)
    return env


def measured(registry: Registry, label: str, func: Callable[[], dict[str, Any]]) -> Run:
    load = os.getloadavg()[0]
    mark = registry.mark()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    detail = func()
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    counts = registry.requests_since(mark)
    run = Run(seconds, sum(counts.values()), dict(sorted(counts.items())), {**detail, "load": load}, cpu)
    print(
        f"  {label:<46} {seconds:7.2f} s  {run.requests:5d} requests  (cpu {cpu:6.2f} s, load {load:.1f})", flush=True
    )
    if counts:
        print("      " + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])), flush=True)
    return run


def doit_command(
    workdir: Path, clone: Path, tasks: Sequence[str], variables: dict[str, str], jobs: int, keep_going: bool = False
) -> list[str]:
    """``python -m doit`` (what CI runs, minus any launcher shim) on the project's dodo.py."""
    return [
        sys.executable,
        "-m",
        "doit",
        "-f",
        str(REPO / "dodo.py"),
        "-d",
        str(workdir),
        "--db-file",
        str(workdir / ".doit.db"),
        *(["-n", str(jobs)] if jobs > 1 else []),
        *(["--continue"] if keep_going else []),
        *tasks,
        f"extensions={clone / 'extensions'}",
        f"build={workdir / 'build'}",
        *(f"{k}={v}" for k, v in variables.items()),
    ]


def run_doit(
    workdir: Path,
    clone: Path,
    tasks: Sequence[str],
    variables: dict[str, str],
    jobs: int,
    log: Path,
    allow_failure: bool = False,
    keep_going: bool = False,
    keep_report: bool = False,
) -> Callable[[], dict[str, Any]]:
    """Run doit in ``workdir``; return the publish report's counts (and fail loudly if doit failed)."""

    def go() -> dict[str, Any]:
        cmd = doit_command(workdir, clone, tasks, variables, jobs, keep_going)
        with open(log, "ab") as out:
            out.write(("\n$ " + " ".join(cmd) + "\n").encode())
            out.flush()
            started = time.time()
            proc = subprocess.run(cmd, cwd=workdir, env=clean_env(), stdout=out, stderr=subprocess.STDOUT)
        # The publish preflight (lookups, then batched validation and tests of what will publish)
        # writes when each stage ended: what follows the tests is packaging and pushing.
        marks = _read_json(workdir / "build" / "publish" / "progress.json")
        checked = marks.get("tested", 0) - started if marks.get("tested", 0) >= started else None
        validated = marks.get("validated", 0) - started if marks.get("validated", 0) >= started else None
        (workdir / "build" / "publish" / "progress.json").unlink(missing_ok=True)
        report = workdir / "build" / "publish" / "report.json"
        publishing = any(t.startswith("publish") for t in tasks)
        counts = json.loads(report.read_text())["counts"] if report.is_file() and publishing else {}
        if report.is_file() and not keep_report:
            report.unlink()  # the next run writes its own
        if proc.returncode != 0:
            if not allow_failure:
                raise SystemExit(f"doit {' '.join(tasks)} failed (exit {proc.returncode}); see {log}")
            print(f"  WARNING: doit {' '.join(tasks)} failed (exit {proc.returncode}); see {log}", flush=True)
        return {"counts": counts, "exit": proc.returncode, "preflight_done": checked, "validated": validated}

    return go


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def run_worker(mode: str, *args: str) -> Callable[[], dict[str, Any]]:
    """The oras-py and idealised pipelines run in their own process, as doit does."""

    def go() -> dict[str, Any]:
        proc = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), mode, *args],
            env=clean_env(),
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise SystemExit(f"{mode} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
        return json.loads(proc.stdout.strip().splitlines()[-1])

    return go


def seed_way(host: str, namespace: str, ext_dirs: list[Path], log: Path) -> Callable[[], dict[str, Any]]:
    """One ``provisioning oci push PATH NAME VERSION`` process per extension, as the seed's scripts do."""
    cli = shutil.which("provisioning")
    base = [cli] if cli else [sys.executable, "-c", "import sys; from provisioning.cli import main; sys.exit(main())"]

    def go() -> dict[str, Any]:
        statuses: Counter[str] = Counter()
        with open(log, "ab") as out:
            for d in ext_dirs:
                manifest = _manifest(d)
                cmd = [*base, "oci", "push", str(d), manifest["name"], manifest["version"]]
                cmd += ["--registry", host, "--namespace", namespace]
                proc = subprocess.run(cmd, env=clean_env(), stdout=out, stderr=subprocess.STDOUT, cwd=d.parent)
                statuses["ok" if proc.returncode == 0 else f"exit {proc.returncode}"] += 1
        if set(statuses) != {"ok"}:
            raise SystemExit(f"seed-way pushes failed: {dict(statuses)}; see {log}")
        return {"statuses": dict(statuses)}

    return go


def _manifest(ext_dir: Path) -> dict[str, Any]:
    import yaml

    return yaml.safe_load((ext_dir / "manifest.yaml").read_text(encoding="utf-8"))


# ------------------------------------------------------------------------------------------- oras-py side


def naive_package(ext_dir: Path, out_dir: Path) -> tuple[Path, Path, dict[str, Any]]:
    """What a pipeline around oras-py does: tar.gz the folder (tests/ left out), config from the manifest."""
    manifest = _manifest(ext_dir)
    name, version = manifest["name"], manifest["version"]
    out_dir.mkdir(parents=True, exist_ok=True)
    layer = out_dir / f"{name}-{version}.tar.gz"
    with tarfile.open(layer, "w:gz") as tar:
        for path in sorted(ext_dir.rglob("*")):
            rel = path.relative_to(ext_dir)
            if rel.parts[0] in ("tests", ".git") or path.is_dir():
                continue
            tar.add(path, arcname=str(rel), recursive=False)
    config = out_dir / f"{name}-{version}.config.json"
    config.write_text(json.dumps(manifest, sort_keys=True))
    return layer, config, manifest


def oras_worker(tree: str, host: str, namespace: str, out: str, only: str = "") -> dict[str, Any]:
    """Package each extension with tarfile and push it with ``OrasClient.push``, one after the other.

    ``only``: a file listing the extension folders to push (one shard's part), else the whole tree.
    """
    import logging

    import oras.client

    logging.getLogger("oras").setLevel(logging.WARNING)
    client = oras.client.OrasClient(hostname=host, insecure=True)
    pushed = 0
    dirs = [Path(p) for p in Path(only).read_text().split()] if only else generate.extension_dirs(Path(tree))
    for ext_dir in dirs:
        layer, config, manifest = naive_package(ext_dir, Path(out) / ext_dir.name)
        client.push(
            target=f"{host}/{namespace}/{manifest['name']}:{manifest['version']}",
            files=[f"{layer}:{LAYER_TYPE}"],
            manifest_config=f"{config}:{CONFIG_TYPE}",
            manifest_annotations={
                "org.opencontainers.image.title": manifest["name"],
                "org.opencontainers.image.version": manifest["version"],
                "org.opencontainers.image.description": manifest["description"],
            },
            disable_path_validation=True,
            quiet=True,
        )
        pushed += 1
    return {"pushed": pushed}


def ideal_worker(tree: str, host: str, namespace: str, out: str, threads: str = "8") -> dict[str, Any]:
    """The bar for packaging + pushing: package on one core, then push everything with 8 threads.

    Pushing is the minimum a client must send for a new artifact: POST + PUT per blob (config,
    layer) and one manifest PUT; no existence checks, no retries, one session per thread.
    """
    import hashlib

    import requests

    started = time.perf_counter()
    items = []
    for ext_dir in generate.extension_dirs(Path(tree)):
        layer, config, manifest = naive_package(ext_dir, Path(out) / ext_dir.name)
        items.append((manifest, layer.read_bytes(), config.read_bytes()))
    packaged = time.perf_counter() - started
    local = threading.local()
    base = f"http://{host}/v2"

    def session() -> requests.Session:
        if not hasattr(local, "s"):
            local.s = requests.Session()
        return local.s

    def upload(repo: str, data: bytes) -> dict[str, Any]:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        s = session()
        r = s.post(f"{base}/{repo}/blobs/uploads/")
        r.raise_for_status()
        location = r.headers["Location"]
        url = location if location.startswith("http") else f"http://{host}{location}"
        r = s.put(url, params={"digest": digest}, data=data, headers={"Content-Type": "application/octet-stream"})
        r.raise_for_status()
        return {"digest": digest, "size": len(data)}

    def push(item: tuple[dict[str, Any], bytes, bytes]) -> None:
        manifest, layer, config = item
        repo = f"{namespace}/{manifest['name']}"
        doc = {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "artifactType": ARTIFACT_TYPE,
            "config": {"mediaType": CONFIG_TYPE, **upload(repo, config)},
            "layers": [{"mediaType": LAYER_TYPE, **upload(repo, layer)}],
        }
        r = session().put(
            f"{base}/{repo}/manifests/{manifest['version']}",
            data=json.dumps(doc).encode(),
            headers={"Content-Type": MANIFEST_TYPE},
        )
        r.raise_for_status()

    with ThreadPoolExecutor(max_workers=int(threads)) as pool:
        list(pool.map(push, items))
    return {"pushed": len(items), "package_seconds": packaged, "push_seconds": time.perf_counter() - started - packaged}


# ------------------------------------------------------------------------------------------- the benchmark


@dataclass
class Phase:
    """One phase: every repetition of ours and of oras-py; figures are medians over repetitions."""

    name: str
    ours: list[Run] = field(default_factory=list)
    oras: list[Run] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def median(runs: list[Run]) -> Run:
        return sorted(runs, key=lambda r: r.seconds)[(len(runs) - 1) // 2]

    @property
    def ours_cpu(self) -> float:
        return self.median(self.ours).cpu

    @property
    def oras_cpu(self) -> float:
        return self.median(self.oras).cpu

    @property
    def ours_s(self) -> float:
        return self.median(self.ours).seconds

    @property
    def oras_s(self) -> float:
        return self.median(self.oras).seconds

    @property
    def ours_req(self) -> int:
        return max(r.requests for r in self.ours)

    @property
    def oras_req(self) -> int:
        return max(r.requests for r in self.oras)


class Bench:
    """The phases, in one run against one registry."""

    def __init__(self, args: argparse.Namespace, work: Path, reg: Registry) -> None:
        self.args, self.work, self.reg = args, work, reg
        self.source = work / "source"
        self.log = work / "commands.log"
        self.runs = 0
        self.ours_vars = {"registry": reg.host, "namespace": "bench-ours"}

    def clone(self) -> tuple[Path, Path]:
        """A fresh clone and an empty working folder (no doit database, no build folder)."""
        self.runs += 1
        clone = fresh_clone(self.source, self.work / f"clone-{self.runs}")
        workdir = self.work / f"run-{self.runs}"
        workdir.mkdir()
        return clone, workdir

    def ours(self, label: str, clone: Path, workdir: Path, tasks: Sequence[str] = ("publish",), **kw: Any) -> Run:
        variables = self.ours_vars if any(t.startswith("publish") for t in tasks) else {}
        cmd = run_doit(workdir, clone, tasks, variables, self.args.jobs, self.log, **kw)
        return measured(self.reg, label, cmd)

    def oras(self, clone: Path, dirs: list[Path] | None = None, namespace: str = "bench-oras") -> Run:
        """oras-py pushing the tree (or only ``dirs``, one shard's part)."""
        self.runs += 1
        out = self.work / f"oras-{self.runs}"
        only = ""
        if dirs is not None:
            out.mkdir()
            (out / "only.txt").write_text("\n".join(map(str, dirs)) + "\n")
            only = str(out / "only.txt")
        cmd = run_worker("_oras", str(clone / "extensions"), self.reg.host, namespace, str(out), only)
        return measured(self.reg, "oras-py: tarfile + OrasClient.push", cmd)

    def first_publish(self) -> Phase:
        print("1. first publish of all extensions", flush=True)
        clone, workdir = self.clone()
        phase = Phase("first publish")
        phase.ours.append(self.ours(f"ours: doit -n {self.args.jobs} publish", clone, workdir))
        phase.oras.append(self.oras(clone))
        out = str(self.work / "ideal")
        ideal = run_worker("_ideal", str(clone / "extensions"), self.reg.host, "bench-ideal", out)
        phase.extra["ideal"] = measured(self.reg, "ideal: package on 1 core, push with 8 threads", ideal)
        checked = phase.ours[0].detail.get("preflight_done")
        validated = phase.ours[0].detail.get("validated")
        phase.extra["validation"] = Run(checked or 0.0, 0, {}, {"how": "the publish preflight's end, same run"})
        phase.extra["validation_only"] = Run(validated or 0.0, 0, {}, {"how": "the preflight's validation, same run"})
        if checked is not None:
            print(f"  ours: validation done after {validated:.2f} s, tests after {checked:.2f} s", flush=True)
        clone, workdir = self.clone()
        phase.extra["doit_validate"] = self.ours(
            f"ours: doit -n {self.args.jobs} validate (no publish, fresh clone)",
            clone,
            workdir,
            ("validate",),
            allow_failure=True,
            keep_going=True,
        )
        return phase

    def no_change(self) -> tuple[Phase, Phase]:
        print("2./3. no-change republish: fresh clone (no doit database), then again with the database warm")
        fresh, warm = Phase("no change, fresh clone"), Phase("no change, doit db warm")
        for _ in range(self.args.repeat):
            clone, workdir = self.clone()
            fresh.ours.append(self.ours("ours (fresh clone)", clone, workdir))
            warm.ours.append(self.ours("ours (same clone, database warm)", clone, workdir))
            fresh.oras.append(self.oras(clone))
        warm.oras = fresh.oras  # oras-py has no database: the same work again
        return fresh, warm

    def changed(self) -> Phase:
        n_changed = max(1, round(self.args.count * self.args.changed))
        print(f"4. {n_changed} extensions changed (patch bumped in manifest.yaml and kcl.mod, a script edited)")
        phase = Phase(f"{self.args.changed:.0%} changed, fresh clone", extra={"changed": n_changed})
        for i in range(self.args.repeat):
            ext_dirs = generate.extension_dirs(self.source / "extensions")
            for d in generate.pick_changed(ext_dirs, self.args.changed, seed=11 + i):
                generate.change_extension(d)
            git(self.source, "commit", "--quiet", "-am", f"release {n_changed} extensions")
            clone, workdir = self.clone()
            run = self.ours("ours (fresh clone)", clone, workdir)
            published = run.detail.get("counts", {}).get("published")
            if published != n_changed:
                print(f"  WARNING: ours published {published}, expected {n_changed}", flush=True)
            phase.ours.append(run)
            phase.oras.append(self.oras(clone))
        return phase

    def seed_way(self) -> tuple[Run, Run, int]:
        sample = self.args.seed_sample
        print(f"5. the seed's way: one `provisioning oci push` process per extension, {sample} extensions")
        clone, _ = self.clone()
        dirs = generate.extension_dirs(clone / "extensions")[:sample]
        first = measured(self.reg, "seed way: first push", seed_way(self.reg.host, "bench-seed", dirs, self.log))
        again = measured(self.reg, "seed way: no-change push", seed_way(self.reg.host, "bench-seed", dirs, self.log))
        return first, again, len(dirs)

    def profile(self, out: Path) -> None:
        """pyinstrument text reports of ours, serial (``-n 1``: the profiler sees one process)."""
        out = out.resolve()
        out.mkdir(parents=True, exist_ok=True)
        print(f"profiles (serial, pyinstrument) -> {out}", flush=True)
        clone, workdir = self.clone()
        self._profiled(out / "no-change-fresh-clone.txt", clone, workdir, self.ours_vars)
        self._profiled(out / "no-change-warm-database.txt", clone, workdir, self.ours_vars)
        # a first publish of a smaller tree of its own (same generator, so its dependencies resolve)
        small = self.work / "source-profile"
        make_source(small, PROFILE_FIRST, self.args.seed)
        self.runs += 1
        clone = fresh_clone(small, self.work / f"clone-{self.runs}")
        workdir = self.work / f"run-{self.runs}"
        workdir.mkdir()
        first_vars = {**self.ours_vars, "namespace": "bench-profile"}
        self._profiled(out / f"first-publish-{PROFILE_FIRST}-extensions.txt", clone, workdir, first_vars)

    def _profiled(self, report: Path, clone: Path, workdir: Path, variables: dict[str, str]) -> None:
        cmd = doit_command(workdir, clone, ["publish"], variables, 1)
        cmd[1:3] = ["-m", "pyinstrument", "-r", "text", "-o", str(report), "-m", "doit"]
        started = time.perf_counter()
        with open(self.log, "ab") as log:
            proc = subprocess.run(cmd, cwd=workdir, env=clean_env(), stdout=log, stderr=subprocess.STDOUT)
        status = "ok" if proc.returncode == 0 else f"exit {proc.returncode}"
        print(f"  {report.name}: {time.perf_counter() - started:.2f} s under the profiler ({status})", flush=True)


PROFILE_FIRST = 20


def shard_benchmark(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """``doit publish shard=I/N`` in N fresh clones, then ``doit publish_catalog``, beside one unsharded run.

    Two rounds against one registry: the first publish, then nothing changed (new clones again, as
    CI runs them). Each shard is checked to send no request to another shard's repositories (every
    path the registry's access log recorded while it ran), and its part is pushed by oras-py too in
    the first round. In CI the shards run at the same time, so the sharded wall time is the slowest
    shard plus the merge; here they run one after another on one machine.
    """
    from provisioning.tasks.shards import in_shard

    n, shards = args.count, args.shards
    print(f"generating {n} extensions for {shards} shards ...", flush=True)
    make_source(work / "source", n, args.seed)
    rounds: dict[str, dict[str, Any]] = {}
    with Registry(work / "registry") as reg:
        bench = Bench(args, work, reg)
        for round_name in ("first publish", "no change"):
            print(f"{round_name}: {shards} shards, the merge, then one runner with all {n}", flush=True)
            bench.ours_vars = {"registry": reg.host, "namespace": "bench-shards"}
            merge_clone, merge_dir = bench.clone()
            rows: list[dict[str, Any]] = []
            for i in range(1, shards + 1):
                clone, workdir = bench.clone()
                mark = reg.mark()
                run = bench.ours(
                    f"ours: doit -n {args.jobs} publish shard={i}/{shards}",
                    clone,
                    workdir,
                    ("publish", f"shard={i}/{shards}"),
                    keep_report=True,
                )
                report_doc = json.loads((workdir / "build" / "publish" / "report.json").read_text())
                mine = {r["name"] for r in report_doc["extensions"]}
                part = in_shard(generate.extension_dirs(clone / "extensions"), (i, shards))
                if mine != {d.name for d in part}:
                    print(f"  WARNING: shard {i} reported {len(mine)} extensions, its part has {len(part)}")
                prefix = "/v2/bench-shards/"
                touched = {p[len(prefix) :].split("/")[0] for p in reg.paths_since(mark) if p.startswith(prefix)}
                dest = merge_dir / "build" / "publish" / "shards" / str(i)
                dest.mkdir(parents=True)
                shutil.copy(workdir / "build" / "publish" / "report.json", dest / "report.json")
                row: dict[str, Any] = {
                    "shard": f"{i}/{shards}",
                    "extensions": len(mine),
                    "ours": asdict(run),
                    "repositories_touched": len(touched),
                    "foreign_repositories": sorted(touched - mine),
                }
                if round_name == "first publish":  # oras-py pushing the same part (it has no "unchanged")
                    row["oras"] = asdict(bench.oras(clone, part, namespace="bench-oras-shards"))
                rows.append(row)
            merge_label = "ours: doit publish_catalog (the merge job)"
            merge = bench.ours(merge_label, merge_clone, merge_dir, ("publish_catalog",))
            bench.ours_vars = {"registry": reg.host, "namespace": "bench-unsharded"}
            clone, workdir = bench.clone()
            whole = bench.ours(f"ours: doit -n {args.jobs} publish (one runner, all {n})", clone, workdir)
            done: dict[str, Any] = {"shards": rows, "merge": asdict(merge), "unsharded": asdict(whole)}
            if round_name == "first publish":
                done["oras_unsharded"] = asdict(bench.oras(clone, namespace="bench-oras-whole"))
            rounds[round_name] = done
    print(f"\n{n} extensions in {shards} shards (load {os.getloadavg()[0]:.1f} at the end)")
    for round_name, done in rounds.items():
        _print_shard_round(round_name, done, n)
    published = sum(r["extensions"] for r in rounds["first publish"]["shards"])
    foreign = sum(len(r["foreign_repositories"]) for d in rounds.values() for r in d["shards"])
    print(
        f"\ntargets: every shard's requests only to its own repositories: {'met' if foreign == 0 else 'NOT met'} "
        f"({foreign} foreign); the shards together published {published} of {n} "
        f"({'exactly once' if published == n else 'NOT all'})"
    )
    return {"count": n, "shard_count": shards, "rounds": rounds}


def _print_shard_round(name: str, done: dict[str, Any], n: int) -> None:
    print(f"\n{name}:")
    print(
        f"{'':<10}{'extensions':>11}{'ours':>10}{'requests':>10}{'oras-py':>10}{'requests':>10}"
        "  repositories (other shards')"
    )
    for r in done["shards"]:
        oras = r.get("oras")
        o_s, o_r = (f"{oras['seconds']:.1f}s", str(oras["requests"])) if oras else ("", "")
        print(
            f"{'shard ' + r['shard']:<10}{r['extensions']:>11}{r['ours']['seconds']:>9.1f}s{r['ours']['requests']:>10}"
            f"{o_s:>10}{o_r:>10}  {r['repositories_touched']} ({len(r['foreign_repositories'])})"
        )
    m, w, wo = done["merge"], done["unsharded"], done.get("oras_unsharded")
    print(f"{'merge':<10}{'':>11}{m['seconds']:>9.1f}s{m['requests']:>10}  (one summary, one report, the catalog)")
    o_s, o_r = (f"{wo['seconds']:.1f}s", str(wo["requests"])) if wo else ("", "")
    print(f"{'one runner':<10}{n:>11}{w['seconds']:>9.1f}s{w['requests']:>10}{o_s:>10}{o_r:>10}")
    slowest = max(r["ours"]["seconds"] for r in done["shards"])
    print(
        f"sharded wall time (slowest shard + merge): {slowest + m['seconds']:.1f} s against {w['seconds']:.1f} s "
        f"on one runner ({w['seconds'] / (slowest + m['seconds']):.1f}x)"
    )


def benchmark(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    n = args.count
    print(f"generating {n} extensions ...", flush=True)
    specs = make_source(work / "source", n, args.seed)
    tree_files = [p for p in (work / "source" / "extensions").rglob("*") if p.is_file()]
    tree = {
        "extensions": n,
        "files": len(tree_files),
        "bytes": sum(p.stat().st_size for p in tree_files),
        "nu_scripts": sum(1 for p in tree_files if p.parent.name == "scripts" and p.suffix == ".nu"),
        "kcl_files": sum(1 for p in tree_files if p.parent.name == "kcl" and p.suffix == ".k"),
        "dependency_edges": sum(len(s.dependencies) for s in specs),
    }
    print("  " + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in tree.items()), flush=True)
    with Registry(work / "registry") as reg:
        bench = Bench(args, work, reg)
        first = bench.first_publish()
        fresh, warm = bench.no_change()
        delta = bench.changed()
        seed_first, seed_again, sample = bench.seed_way()
        if args.profile:
            bench.profile(args.profile)
    return report(args, [first, fresh, warm, delta], seed_first, seed_again, sample, tree)


def _has_test_task() -> bool:
    return (REPO / "provisioning" / "testing.py").is_file() or (REPO / "provisioning" / "testing").is_dir()


def report(
    args: argparse.Namespace, phases: list[Phase], seed_first: Run, seed_again: Run, sample: int, tree: dict[str, int]
) -> dict[str, Any]:
    n = args.count
    print()
    print(f"N = {n} extensions; times: medians of {args.repeat} runs (phase 1: one run); requests: the most in any run")
    header = (
        f"{'phase':<26} {'ours s':>7} {'oras-py s':>9} {'ratio':>6} "
        f"{'ours req':>8} {'per ext':>7} {'oras req':>8} {'per ext':>7}"
    )
    print(header)
    print("-" * len(header))
    rows = []
    for p in phases:
        ratio = p.oras_s / p.ours_s
        print(
            f"{p.name:<26} {p.ours_s:7.2f} {p.oras_s:9.2f} {ratio:5.1f}x "
            f"{p.ours_req:8d} {p.ours_req / n:7.2f} {p.oras_req:8d} {p.oras_req / n:7.2f}"
        )
        rows.append(
            {
                "phase": p.name,
                "ours_seconds": p.ours_s,
                "oras_seconds": p.oras_s,
                "ratio": ratio,
                "ours_cpu_seconds": p.ours_cpu,
                "oras_cpu_seconds": p.oras_cpu,
                "ours_requests": p.ours_req,
                "oras_requests": p.oras_req,
                "ours_runs": [asdict(r) for r in p.ours],
                "oras_runs": [asdict(r) for r in p.oras],
                "extra": {k: asdict(v) if isinstance(v, Run) else v for k, v in p.extra.items()},
            }
        )
    print()
    print("CPU seconds (user + system, the command and its child processes; less sensitive to a busy machine):")
    for p in phases:
        print(
            f"  {p.name:<26} ours {p.ours_cpu:7.2f}   oras-py {p.oras_cpu:7.2f}   ratio {p.oras_cpu / p.ours_cpu:5.1f}x"
        )
    first, fresh, warm, delta = phases
    ideal, validation = first.extra["ideal"], first.extra["validation"]
    validation_only, doit_validate = first.extra["validation_only"], first.extra["doit_validate"]
    scale = n / sample
    seed_first_n, seed_again_n = seed_first.seconds * scale, seed_again.seconds * scale
    after = first.ours_s - validation.seconds
    ip, ipush = ideal.detail.get("package_seconds", 0.0), ideal.detail.get("push_seconds", 0.0)
    print()
    print(
        f"ideal client, first publish: {ideal.seconds:.2f} s (package {ip:.2f} s on one core, push {ipush:.2f} s "
        f"with 8 threads), {ideal.requests} requests ({ideal.requests / n:.2f} per extension)"
    )
    print(
        f"ours, first publish: validation done after {validation_only.seconds:.2f} s, tests after "
        f"{validation.seconds:.2f} s (preflight); packaging and pushing took the remaining {after:.2f} s"
    )
    print(f"ours, doit validate alone (fresh clone, all {n}): {doit_validate.seconds:.2f} s")
    print(
        f"seed's way, {sample} extensions measured and EXTRAPOLATED to {n}: first push {seed_first_n:.1f} s, "
        f"no-change push {seed_again_n:.1f} s ({seed_again.requests / sample:.2f} requests per extension)"
    )
    targets = [
        ("no change, fresh clone: >= 4x faster than oras-py", fresh.oras_s / fresh.ours_s >= 4,
         f"{fresh.oras_s / fresh.ours_s:.1f}x"),
        ("no change, fresh clone: <= 1.0 requests per extension", fresh.ours_req / n <= 1.0,
         f"{fresh.ours_req / n:.3f} (one GET /v2/ per run on top of one manifest GET per extension)"),
        (f"{args.changed:.0%} changed: >= 2.5x faster than oras-py", delta.oras_s / delta.ours_s >= 2.5,
         f"{delta.oras_s / delta.ours_s:.1f}x"),
        ("no change, doit database warm (destination checked): < 0.6 s", warm.ours_s < 0.6,
         f"{warm.ours_s:.2f} s, {warm.ours_req / n:.2f} requests per extension"),
        ("no change, doit database warm: <= 1.0 requests per extension", warm.ours_req / n <= 1.0,
         f"{warm.ours_req / n:.3f} (one GET /v2/ per run on top of one manifest GET per extension)"),
        ("doit validate of all: no slower than the validation part of a first publish",
         doit_validate.seconds <= validation_only.seconds,
         f"{doit_validate.seconds:.2f} s vs {validation_only.seconds:.2f} s"),
        ("first publish, after validation: no slower than the ideal client", after <= ideal.seconds,
         f"{after:.2f} s vs {ideal.seconds:.2f} s"),
        ("no change: >= 10x faster than the seed's way (extrapolated)", seed_again_n / fresh.ours_s >= 10,
         f"{seed_again_n / fresh.ours_s:.1f}x"),
    ]  # fmt: skip
    print()
    for text, ok, value in targets:
        print(f"  [{'met' if ok else 'NOT met':>7}] {text}: {value}")
    loads = [r.detail.get("load", 0.0) for p in phases for r in p.ours + p.oras]
    if max(loads, default=0.0) > LOAD_WARNING:
        print(
            f"\nWARNING: the machine was busy (1-minute load average up to {max(loads):.1f} on "
            f"{os.cpu_count()} cores before some runs): other processes competed, figures are noisy"
        )
    return {
        "count": n,
        "repeat": args.repeat,
        "jobs": args.jobs,
        "tree": tree,
        "phases": rows,
        "seed_way": {
            "sample": sample,
            "first": asdict(seed_first),
            "no_change": asdict(seed_again),
            "extrapolated_first_seconds": seed_first_n,
            "extrapolated_no_change_seconds": seed_again_n,
        },
        "validation_seconds": validation.seconds,
        "validation_only_seconds": validation_only.seconds,
        "doit_validate_seconds": doit_validate.seconds,
        "ideal": asdict(ideal),
        "targets": [{"target": t, "met": ok, "value": v} for t, ok, v in targets],
    }


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in WORKERS:
        print(json.dumps(WORKERS[argv[0]](*argv[1:])))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200, help="extensions to generate (default 200)")
    parser.add_argument("--seed", type=int, default=7, help="generator seed")
    parser.add_argument("--jobs", type=int, default=2, help="doit -n (default 2, one per core)")
    parser.add_argument("--changed", type=float, default=0.05, help="fraction changed in phase 4 (default 0.05)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of phases 2-4 (median reported; default 3)")
    parser.add_argument("--seed-sample", type=int, default=20, help="extensions pushed the seed's way (default 20)")
    parser.add_argument("--workdir", type=Path, help="keep everything here (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--json", type=Path, help="write the figures as JSON here")
    parser.add_argument("--profile", type=Path, metavar="DIR", help="also write pyinstrument profiles of ours here")
    parser.add_argument(
        "--shards", type=int, default=0, help="instead: N shard runs of --count extensions and the merge (e.g. 4, 800)"
    )
    args = parser.parse_args(argv)
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=False)
        work = args.workdir.resolve()
    else:
        work = Path(tempfile.mkdtemp(prefix="publish-bench-"))
    try:
        result = shard_benchmark(args, work) if args.shards else benchmark(args, work)
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(result, indent=2) + "\n")
    finally:
        if args.keep or args.workdir:
            print(f"\nkept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


WORKERS: dict[str, Callable[..., dict[str, Any]]] = {"_oras": oras_worker, "_ideal": ideal_worker}

if __name__ == "__main__":
    sys.exit(main())
