"""Generate N realistic extensions for the publish benchmark.

    python benchmarks/generate.py OUT [--count 200] [--seed 7] [--check]

Each extension lives in ``OUT/<type>s/<name>/`` and has what a real one has: ``manifest.yaml``
(with semver-range dependencies on other generated extensions), ``kcl/kcl.mod`` and several
``.k`` files that compile against the core's base package ``provisioning`` (``schemas/kcl``),
four Nushell scripts (install, check, uninstall, configure) that pass ``nu``'s parser, jinja2
templates, ``docs/README.md`` and ``tests/`` (a Nushell test and a KCL test). Output is a pure
function of ``--count`` and ``--seed``.

The dependency graph is shaped like a real catalogue: a few base taskservs (container
runtimes, etcd, kubernetes, storage, observability) are depended on by many, most taskservs
have one to three dependencies, clusters pull in four to eight taskservs, providers stand
alone. ``--check`` validates every generated extension with the project's own validator
(KCL compiled, Nushell parsed) so a broken generator shows up at once.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Real names first (in dependency order: a name may only depend on names before it); more are
# derived from them (``postgres-operator``, ``redis-exporter``, …) until the count is reached.
PROVIDERS = [
    "aws", "upcloud", "local", "hetzner", "gcp", "azure", "digitalocean", "openstack", "proxmox", "vsphere",
    "linode", "vultr", "scaleway", "ovh", "equinix",
]  # fmt: skip
BASE_TASKSERVS = [
    "runc", "crun", "containerd", "crio", "podman", "etcd", "coredns", "kubernetes", "cilium", "calico",
    "flannel", "metallb", "ingress-nginx", "cert-manager", "external-dns", "longhorn", "rook-ceph", "minio",
    "prometheus", "grafana", "loki", "tempo", "node-exporter", "vault",
]  # fmt: skip
APP_TASKSERVS = [
    "postgres", "redis", "mysql", "mariadb", "mongodb", "kafka", "rabbitmq", "nats", "haproxy", "nginx",
    "traefik", "envoy", "istio", "linkerd", "jaeger", "consul", "nomad", "keycloak", "harbor", "gitea", "zot",
    "buildkit", "argocd", "flux", "tekton", "velero", "restic", "wireguard", "tailscale", "chrony", "kata",
    "gvisor", "opensearch", "elasticsearch", "fluent-bit", "vector", "otel-collector", "kube-state-metrics",
    "memcached", "cassandra", "clickhouse", "influxdb", "mosquitto", "openldap", "dex", "oauth2-proxy",
    "sonarqube", "jenkins", "woodpecker", "drone", "registry", "squid", "bind", "dnsmasq", "keepalived",
    "kube-vip", "openebs", "nfs-server", "samba", "seaweedfs", "garage", "spire", "falco", "trivy",
    "kyverno", "gatekeeper", "sealed-secrets", "external-secrets", "descheduler", "kured", "reloader",
]  # fmt: skip
DERIVED_SUFFIXES = ["operator", "exporter", "ha", "backup", "proxy", "agent", "gateway", "webhook"]
CLUSTERS = [
    "buildkit-farm", "web", "oci-reg", "git-forge", "k8s-ha", "observability", "data-lake", "ci-runners",
    "edge", "mesh", "identity", "messaging", "storage", "security", "dev-sandbox", "analytics", "cache",
    "backup-site", "ml-serving", "dns",
]  # fmt: skip
# The hubs: most taskservs need a runtime and kubernetes, and many want storage or metrics.
HUB_WEIGHTS = {"kubernetes": 30, "containerd": 18, "etcd": 6, "cert-manager": 8, "prometheus": 8, "longhorn": 5}
PLATFORMS = ["linux/amd64", "linux/arm64/v8", "linux/arm/v7"]  # real extensions list variants
LICENSES = ["Apache-2.0", "MIT", "BSD-3-Clause", "MPL-2.0"]
CORE_VERSION = "3.5.0"
AUTHORS = ["Platform Team", "SRE Team", "Infra Guild", "Storage Team", "Network Team", "Security Team"]


@dataclass
class Spec:
    """What one generated extension is: the manifest fields the files are written from."""

    name: str
    type: str
    version: str
    description: str
    dependencies: dict[str, str] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)
    packages: list[str] = field(default_factory=list)
    settings: dict[str, str | int | bool] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.type}s/{self.name}"

    @property
    def ident(self) -> str:
        """The KCL identifier (kpm's rule: dashes become underscores)."""
        return self.name.replace("-", "_")

    @property
    def schema(self) -> str:
        return "".join(part.capitalize() for part in re.split(r"[-_]", self.name))


# ------------------------------------------------------------------------------------------- planning


def _names(count: int) -> list[tuple[str, str]]:
    """(type, name) pairs, dependencies-first: providers, base taskservs, apps, derived, clusters."""
    n_providers = max(1, round(count * 0.05))
    n_clusters = max(1, round(count * 0.10))
    n_taskservs = max(1, count - n_providers - n_clusters)
    providers = [f"{p}{i // len(PROVIDERS) or ''}" for i, p in enumerate(PROVIDERS * (n_providers // 15 + 1))]
    taskservs = BASE_TASKSERVS + APP_TASKSERVS
    taskservs += [f"{a}-{s}" for s in DERIVED_SUFFIXES for a in APP_TASKSERVS + BASE_TASKSERVS]
    taskservs += [f"{t}-{i}" for i in range(2, n_taskservs // len(taskservs) + 2) for t in taskservs]
    clusters = [f"{c}{'' if i < len(CLUSTERS) else '-' + str(i // len(CLUSTERS) + 1)}" for i, c in enumerate(
        CLUSTERS * (n_clusters // len(CLUSTERS) + 1)
    )]  # fmt: skip
    return (
        [("provider", n) for n in providers[:n_providers]]
        + [("taskserv", n) for n in taskservs[:n_taskservs]]
        + [("cluster", n) for n in clusters[:n_clusters]]
    )


def _version(rng: random.Random) -> str:
    major = rng.choices([0, 1, 2, 3], weights=[2, 6, 3, 1])[0]
    return f"{major}.{rng.randint(0, 30)}.{rng.randint(0, 12)}"


def constraint_for(version: str, rng: random.Random) -> str:
    """A range the way authors write it, satisfied by ``version`` and by its patch bumps."""
    major, minor, _ = (int(x) for x in version.split("."))
    forms = [f"^{major}.{minor}.0", f"~{major}.{minor}.0", f">={major}.{minor}.0", f">={major}.{minor}, <{major + 1}.0"]
    if major > 0:
        forms.append(f"{major}.x")
    return rng.choice(forms)


def plan(count: int, seed: int = 7) -> list[Spec]:
    """The extensions to write: names, types, versions and a realistic dependency graph."""
    rng = random.Random(seed)
    specs: list[Spec] = []
    taskservs: list[Spec] = []
    for type_, name in _names(count):
        version = _version(rng)
        spec = Spec(
            name=name,
            type=type_,
            version=version,
            description=f"{name} {type_} for provisioning: install, configure, check and remove {name}",
            tags=sorted({type_, rng.choice(["infra", "platform", "data", "network", "security", "ops"])}),
            ports=sorted(rng.sample(range(1024, 32000), rng.randint(1, 4))),
            packages=sorted({name.split("-")[0], *rng.sample(["curl", "jq", "tar", "iptables", "socat", "conntrack",
                                                            "ca-certificates", "gnupg", "openssl"], 3)}),
            settings={
                f"{k}": v
                for k, v in rng.sample(
                    [("max_connections", rng.randint(50, 5000)), ("log_level", "info"), ("tls", True),
                     ("data_dir", f"/var/lib/{name}"), ("retention_days", rng.randint(1, 90)),
                     ("metrics", True), ("cache_size_mb", rng.choice([64, 128, 512])), ("bind", "0.0.0.0"),
                     ("cluster_domain", "cluster.local"), ("backup", False)],
                    rng.randint(4, 8),
                )
            },
        )  # fmt: skip
        if type_ == "taskserv" and taskservs:
            n_deps = rng.choices([0, 1, 2, 3, 4, 5], weights=[12, 30, 30, 16, 8, 4])[0]
            spec.dependencies = _pick_deps(taskservs, n_deps, rng)
        elif type_ == "cluster" and taskservs:
            spec.dependencies = _pick_deps(taskservs, rng.randint(4, 8), rng)
        if type_ == "taskserv":
            taskservs.append(spec)
        specs.append(spec)
    return specs


def _pick_deps(candidates: list[Spec], n: int, rng: random.Random) -> dict[str, str]:
    """Preferential attachment: hubs are picked often, everything else uniformly."""
    weights = [HUB_WEIGHTS.get(c.name, 1) for c in candidates]
    chosen: dict[str, Spec] = {}
    for _ in range(n * 4):
        if len(chosen) >= min(n, len(candidates)):
            break
        c = rng.choices(candidates, weights=weights)[0]
        chosen[c.name] = c
    return {name: constraint_for(c.version, rng) for name, c in sorted(chosen.items())}


# ------------------------------------------------------------------------------------------- writing


def _fill(template: str, values: dict[str, str]) -> str:
    """``@KEY@`` placeholders: braces and dollars are everywhere in Nushell, KCL and jinja2."""
    for key, value in values.items():
        template = template.replace(f"@{key}@", value)
    if leftover := re.search(r"@[A-Z_]+@", template):
        raise ValueError(f"unfilled placeholder {leftover.group(0)}")
    return template


def _yaml_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def manifest_yaml(spec: Spec) -> str:
    lines = [
        f"# {spec.name}: {spec.type} extension (generated for the publish benchmark)",
        f"name: {spec.name}",
        f"type: {spec.type}",
        f"version: {spec.version}",
        f"description: {_yaml_str(spec.description)}",
        f"author: {_yaml_str(AUTHORS[len(spec.name) % len(AUTHORS)])}",
        f"license: {LICENSES[len(spec.name) % len(LICENSES)]}",
        f"homepage: https://provisioning.example.org/extensions/{spec.name}",
        f"repository: https://git.example.org/provisioning-extensions/{spec.key}",
    ]
    if spec.dependencies:
        lines.append("dependencies:")
        lines += [f"  {name}: {_yaml_str(c)}" for name, c in spec.dependencies.items()]
    else:
        lines.append("dependencies: {}")
    lines.append("tags:")
    lines += [f"  - {t}" for t in spec.tags]
    lines.append("platforms:")
    lines += [f"  - {p}" for p in PLATFORMS]
    lines.append('min_provisioning_version: "3.0.0"')
    return "\n".join(lines) + "\n"


def kcl_mod(spec: Spec) -> str:
    """Like ``provisioning generate extension`` writes it; the checks hand over the base package themselves."""
    return (
        f'[package]\nname = "{spec.ident}"\nedition = "v0.11.2"\nversion = "{spec.version}"\n\n'
        "[dependencies]\n"
        "# The core's base schemas (a checkout of the extensions repository keeps the core beside it).\n"
        f'provisioning = {{ path = "../../../../schemas/kcl", version = "{CORE_VERSION}" }}\n'
    )


def _kcl_value(value: str | int | bool) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int):
        return str(value)
    return f'"{value}"'


def _kcl_type(value: str | int | bool) -> str:
    return "bool" if isinstance(value, bool) else "int" if isinstance(value, int) else "str"


def kcl_files(spec: Spec) -> dict[str, str]:
    """The extension's KCL package (``kcl/``) and its KCL test (``tests/``), by relative path."""
    fields = "\n".join(f"    {k}: {_kcl_type(v)} = {_kcl_value(v)}" for k, v in spec.settings.items())
    values = {
        "NAME": spec.name,
        "IDENT": spec.ident,
        "SCHEMA": spec.schema,
        "VERSION": spec.version,
        "FIELDS": fields,
        "PORTS": ", ".join(str(p) for p in spec.ports),
        "DEPS": ", ".join(f'"{d}"' for d in spec.dependencies),
    }
    deps_schema, deps_extra = {
        "taskserv": (
            "TaskservDependencies",
            "    health_check = provisioning.HealthCheck {\n"
            f'        command = "systemctl is-active {spec.name}"\n'
            "        interval = 30\n        timeout = 10\n    }\n    install_timeout = 600\n",
        ),
        "cluster": ("ClusterDependencies", "    min_nodes = 3\n"),
        "provider": ("Dependencies", ""),
    }[spec.type]
    files: dict[str, str] = {}
    if spec.type == "taskserv":
        files[f"kcl/{spec.name}.k"] = _fill(TASKSERV_K, values)
        files["kcl/version.k"] = _fill(VERSION_K, values)
    elif spec.type == "provider":
        files[f"kcl/{spec.name}.k"] = _fill(PROVIDER_K, values)
        files[f"kcl/defaults_{spec.ident}.k"] = _fill(PROVIDER_DEFAULTS_K, values)
        files[f"kcl/server_{spec.ident}.k"] = _fill(PROVIDER_SERVER_K, values)
    else:
        files[f"kcl/{spec.name}.k"] = _fill(CLUSTER_K, values)
    files["kcl/dependencies.k"] = _fill(
        DEPENDENCIES_K, {**values, "DEPS_SCHEMA": deps_schema, "DEPS_EXTRA": deps_extra}
    )
    files[f"tests/{spec.ident}_test.k"] = _fill(
        KCL_TEST_K, {**values, "TYPE_TESTS": _fill(KCL_TYPE_TESTS[spec.type], values)}
    )
    return files


def scripts(spec: Spec) -> dict[str, str]:
    settings = "\n".join(f"    {k}: {_nu_value(v)}" for k, v in spec.settings.items())
    values = {
        "NAME": spec.name,
        "TYPE": spec.type,
        "VERSION": spec.version,
        "PORTS": ", ".join(str(p) for p in spec.ports),
        "PACKAGES": ", ".join(f'"{p}"' for p in spec.packages),
        "SETTINGS": settings,
        "DEPS": ", ".join(f'"{d}"' for d in spec.dependencies),
    }
    return {f"{script}.nu": _fill(body, values) for script, body in NU_SCRIPTS.items()}


def _nu_value(value: str | int | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return f'"{value}"'


def templates(spec: Spec) -> dict[str, str]:
    values = {"NAME": spec.name, "VERSION": spec.version}
    return {
        f"{spec.name}.yaml.j2": _fill(CONFIG_J2, values),
        f"{spec.name}.service.j2": _fill(SERVICE_J2, values),
        "env.j2": _fill(ENV_J2, values),
    }


def readme(spec: Spec) -> str:
    deps = "\n".join(f"- `{n}` `{c}`" for n, c in spec.dependencies.items()) or "None."
    settings = "\n".join(f"| `{k}` | `{_nu_value(v)}` |" for k, v in spec.settings.items())
    ports = ", ".join(str(p) for p in spec.ports)
    return _fill(
        README_MD,
        {"NAME": spec.name, "TYPE": spec.type, "VERSION": spec.version, "DEPS": deps, "SETTINGS": settings,
         "PORTS": ports, "KEY": spec.key, "IDENT": spec.ident},
    )  # fmt: skip


def nu_test(spec: Spec) -> str:
    return _fill(NU_TEST, {"NAME": spec.name, "VERSION": spec.version, "PORTS": ", ".join(map(str, spec.ports))})


def write_extension(root: Path, spec: Spec) -> Path:
    ext = root / f"{spec.type}s" / spec.name
    files: dict[str, str] = {"manifest.yaml": manifest_yaml(spec), "kcl/kcl.mod": kcl_mod(spec)}
    files.update(kcl_files(spec))
    files.update({f"scripts/{n}": t for n, t in scripts(spec).items()})
    files.update({f"templates/{n}": t for n, t in templates(spec).items()})
    files["docs/README.md"] = readme(spec)
    files[f"tests/test_{spec.ident}.nu"] = nu_test(spec)
    for rel, text in files.items():
        path = ext / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return ext


def generate(root: Path, count: int = 200, seed: int = 7) -> list[Spec]:
    """Write ``count`` extensions under ``root`` and return their specs."""
    specs = plan(count, seed)
    for spec in specs:
        write_extension(Path(root), spec)
    return specs


# ------------------------------------------------------------------------------------------- changing


def bump_patch(version: str) -> str:
    major, minor, patch = version.split(".")
    return f"{major}.{minor}.{int(patch) + 1}"


def change_extension(ext_dir: Path, note: str = "changed") -> str:
    """A release: patch version bumped in manifest.yaml and kcl.mod, and a script edited. Returns the version."""
    manifest = ext_dir / "manifest.yaml"
    text = manifest.read_text(encoding="utf-8")
    old = re.search(r"^version: (\S+)$", text, re.M)
    if old is None:
        raise ValueError(f"{manifest}: no version line")
    new = bump_patch(old.group(1))
    manifest.write_text(text.replace(old.group(0), f"version: {new}", 1), encoding="utf-8")
    mod = ext_dir / "kcl" / "kcl.mod"
    mod.write_text(mod.read_text(encoding="utf-8").replace(f'version = "{old.group(1)}"', f'version = "{new}"', 1))
    install = ext_dir / "scripts" / "install.nu"
    install.write_text(install.read_text(encoding="utf-8") + f"\n# {note}: release {new}\n", encoding="utf-8")
    return new


def pick_changed(ext_dirs: list[Path], fraction: float, seed: int = 11) -> list[Path]:
    """A stable sample of the tree (at least one extension)."""
    n = max(1, round(len(ext_dirs) * fraction))
    return sorted(random.Random(seed).sample(sorted(ext_dirs), n))


def extension_dirs(root: Path) -> list[Path]:
    return sorted(p.parent for p in Path(root).glob("*s/*/manifest.yaml"))


# ------------------------------------------------------------------------------------------- checking


def check(root: Path, ext_dirs: Iterable[Path] | None = None) -> list[str]:
    """Validate with the project's own validator (schema, structure, KCL, Nushell, templates)."""
    sys.path.insert(0, str(ROOT))
    from provisioning.checks import check_templates
    from provisioning.errors import ProvisioningError
    from provisioning.extension import validate_extension

    dirs = list(ext_dirs) if ext_dirs is not None else extension_dirs(root)
    known = [d.name for d in dirs]
    problems: list[str] = []
    for d in dirs:
        try:
            validate_extension(d, known=known, check_scripts=False)
        except ProvisioningError as exc:
            problems.append(str(exc))
    problems += list(check_templates(sorted(root.glob("*s/*/templates/*.j2"))).values())
    from provisioning.checks import check_nu

    problems += list(check_nu(sorted(root.glob("*s/*/scripts/*.nu")) + sorted(root.glob("*s/*/tests/*.nu"))).values())
    return problems


def run_tests(root: Path) -> list[str]:
    """Each extension's own tests, run by the project's test runner (``provisioning test extension``)."""
    sys.path.insert(0, str(ROOT))
    from provisioning.testing import run_extension_tests

    failures = []
    for d in extension_dirs(root):
        report = run_extension_tests(d)
        if not report.ok or not report.cases:
            failures.append(f"{d}: tests failed: {[(c.name, c.output) for c in report.failed] or 'no tests'}")
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder to write <type>s/<name>/ into")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--check", action="store_true", help="validate everything with the project's validator")
    parser.add_argument("--test", action="store_true", help="run every extension's own tests (KCL and nu; slow)")
    args = parser.parse_args(argv)
    specs = generate(args.out, args.count, args.seed)
    deps = sum(len(s.dependencies) for s in specs)
    kinds = {t: sum(1 for s in specs if s.type == t) for t in ("provider", "taskserv", "cluster")}
    print(f"wrote {len(specs)} extensions to {args.out} ({kinds}, {deps} dependency edges)")
    if args.check or args.test:
        problems = (check(args.out) if args.check else []) + (run_tests(args.out) if args.test else [])
        for p in problems:
            print(p, file=sys.stderr)
        print(f"check: {len(problems)} problem(s)")
        return 1 if problems else 0
    return 0


# ------------------------------------------------------------------------------------------- file bodies

TASKSERV_K = '''# @NAME@ taskserv: settings of one installation.
import provisioning

schema @SCHEMA@(provisioning.TaskServ):
    """Settings of @NAME@ on a server."""
    name: str = "@NAME@"
    version: str = "@VERSION@"
    ports: [int] = [@PORTS@]
    config_dir: str = "/etc/@NAME@"
    run_user: str = "@IDENT@"
    log_level: "debug" | "info" | "warn" | "error" = "info"
    extra_args: [str] = []
@FIELDS@
    resources: @SCHEMA@Resources = @SCHEMA@Resources {}
    storage?: provisioning.StorageVol

    check:
        len(ports) > 0, "@NAME@ listens on at least one port"
        all p in ports {
            0 < p < 65536
        }, "@NAME@: every port must be a TCP port"
        isunique(ports), "@NAME@: a port is listed twice"
        config_dir.startswith("/"), "config_dir must be an absolute path"

schema @SCHEMA@Resources:
    """Requests and limits, Kubernetes-style quantities."""
    cpu: str = "500m"
    memory: str = "512Mi"
    memory_limit: str = "1Gi"

    check:
        provisioning.is_size(memory), "memory '${memory}' is not a size like 512Mi"
        provisioning.is_size(memory_limit), "memory_limit '${memory_limit}' is not a size like 1Gi"

@IDENT@_defaults: @SCHEMA@ = @SCHEMA@ {
    install_mode = "server"
}
'''

VERSION_K = """# The @NAME@ release this extension installs, and where newer ones are announced.
import provisioning

@IDENT@_version = provisioning.TaskservVersion {
    name = "@NAME@"
    version = provisioning.Version {
        current = "@VERSION@"
        source = "https://releases.example.org/@NAME@"
        tags = "https://releases.example.org/@NAME@/tags"
        site = "https://@NAME@.example.org"
        check_latest = False
        grace_period = 86400
    }
    dependencies = [@DEPS@]
}
"""

DEPENDENCIES_K = """# What @NAME@ needs from the host and from other extensions (see manifest.yaml).
import provisioning

@IDENT@_dependencies = provisioning.@DEPS_SCHEMA@ {
    name = "@NAME@"
    requires = [@DEPS@]
    provides = ["@NAME@"]
    resources = provisioning.ResourceRequirement {
        cpu = "250m"
        memory = "256Mi"
        disk = "2Gi"
    }
@DEPS_EXTRA@}
"""

PROVIDER_K = '''# @NAME@ provider: API endpoint, credentials and limits.
import provisioning

schema Provider_@IDENT@(provisioning.ProviderConfig):
    """Main settings of the @NAME@ provider."""
    name: str = "@NAME@"
    zone?: str = "@IDENT@-zone-1"
    api_url?: str = "https://api.@NAME@.example.org/v1"
    credentials_path?: str = "~/.config/@NAME@/credentials"
    timeout: int = 60
    ports: [int] = [@PORTS@]
@FIELDS@

    check:
        len(ports) > 0, "@NAME@: at least one port"

provider_@IDENT@: Provider_@IDENT@ = Provider_@IDENT@ {}
'''

PROVIDER_DEFAULTS_K = '''# Defaults every @NAME@ server starts from.
import provisioning

schema ServerDefaults_@IDENT@(provisioning.ServerDefaults):
    """@NAME@ server defaults."""
    plan: str = "standard-2"
    zone: str = "@IDENT@-zone-1"
    storage_os_find: str = "name: debian-12 | arch: x86_64"

defaults_@IDENT@: ServerDefaults_@IDENT@ = ServerDefaults_@IDENT@ {
    running_wait = 10
    running_timeout = 300
    storages = [
        provisioning.Storage {name = "root", size = 40, total = 40, type = "ext4", mount_path = "/"}
    ]
}
'''

PROVIDER_SERVER_K = '''# A server created by the @NAME@ provider.
import provisioning

schema Server_@IDENT@(provisioning.Server):
    """One @NAME@ server."""
    provider: str = "@NAME@"
    backups: bool = False

    check:
        hostname != "", "@NAME@ server: hostname must be set"

example_server_@IDENT@: Server_@IDENT@ = Server_@IDENT@ {
    hostname = "@NAME@-node-0"
    plan = "standard-2"
    taskservs = [provisioning.TaskServDef {name = "containerd"}]
}
'''

CLUSTER_K = '''# @NAME@ cluster: the taskservs deployed together and the nodes they run on.
import provisioning

schema @SCHEMA@(provisioning.Cluster):
    """The @NAME@ cluster."""
    name: str = "@NAME@"
    version: str = "@VERSION@"
    ports: [int] = [@PORTS@]
    taskservs: [provisioning.TaskServDef] = [provisioning.TaskServDef {name = n} for n in [@DEPS@]]
@FIELDS@

    check:
        len(nodes) >= 1, "cluster ${name} needs at least one node"

@IDENT@_defaults: @SCHEMA@ = @SCHEMA@ {
    nodes = [
        provisioning.ClusterNode {hostname = "@NAME@-cp-0", role = "controlplane"}
        provisioning.ClusterNode {hostname = "@NAME@-worker-0"}
        provisioning.ClusterNode {hostname = "@NAME@-worker-1"}
    ]
}
'''

KCL_TEST_K = """# KCL tests of the @NAME@ schemas (run by `provisioning test extension @NAME@`).
import @IDENT@

test_dependencies = lambda {
    d = @IDENT@.@IDENT@_dependencies
    assert d.requires == [@DEPS@]
    assert "@NAME@" in d.provides
}
@TYPE_TESTS@"""

KCL_TYPE_TESTS = {
    "taskserv": """
test_defaults = lambda {
    t = @IDENT@.@SCHEMA@ {}
    assert t.name == "@NAME@"
    assert t.version == "@VERSION@"
    assert t.work_path == "/tmp/provisioning/@NAME@"
    assert t.ports == [@PORTS@]
}

test_version_matches_manifest = lambda {
    assert @IDENT@.@IDENT@_version.version.current == "@VERSION@"
}
""",
    "provider": """
test_defaults = lambda {
    p = @IDENT@.Provider_@IDENT@ {}
    assert p.name == "@NAME@"
    assert p.timeout == 60
}
""",
    "cluster": """
test_defaults = lambda {
    c = @IDENT@.@IDENT@_defaults
    assert c.name == "@NAME@"
    assert c.version == "@VERSION@"
    assert len(c.nodes) == 3
}
""",
}

NU_COMMON = """const NAME = "@NAME@"
const VERSION = "@VERSION@"
const KIND = "@TYPE@"
const PORTS = [@PORTS@]
const PACKAGES = [@PACKAGES@]
const DEPENDENCIES = [@DEPS@]

def log-step [step: string, message: string] {
    print $"[($NAME)] ($step): ($message)"
}

# The settings @NAME@ runs with when nothing overrides them.
export def default-settings []: nothing -> record {
    {
@SETTINGS@
    }
}

# Where an installation under PREFIX keeps its files.
export def target-paths [prefix: string]: nothing -> record {
    {
        bin: ($prefix | path join "usr" "local" "bin")
        etc: ($prefix | path join "etc" $NAME)
        data: ($prefix | path join "var" "lib" $NAME)
        log: ($prefix | path join "var" "log" $NAME)
    }
}

def run-or-show [dry_run: bool, description: string, action: closure] {
    if $dry_run {
        log-step "dry-run" $description
    } else {
        do $action
    }
}
"""

NU_SCRIPTS = {
    "install": "#!/usr/bin/env nu\n# Install @NAME@ @VERSION@ (@TYPE@) on the target server.\n\n"
    + NU_COMMON
    + """
# Map `uname -m` output to the architecture names release archives use.
export def normalize-arch [machine: string]: nothing -> string {
    match $machine {
        "x86_64" | "amd64" => "amd64"
        "aarch64" | "arm64" => "arm64"
        _ => { error make {msg: $"unsupported architecture: ($machine)"} }
    }
}

# Where the release archive for a version and architecture is downloaded from.
export def download-url [version: string, arch: string]: nothing -> string {
    $"https://releases.example.org/($NAME)/v($version)/($NAME)-($version)-linux-($arch).tar.gz"
}

def install-packages [dry_run: bool] {
    let missing = ($PACKAGES | where {|p| (which $p | is-empty) })
    if ($missing | is-empty) {
        log-step "packages" "all present"
        return
    }
    run-or-show $dry_run $"apt-get install ($missing | str join ' ')" {||
        ^apt-get install -y --no-install-recommends ...$missing
    }
}

# The dependencies not yet installed according to the state folder.
export def missing-dependencies [state_dir: string]: nothing -> list<string> {
    $DEPENDENCIES | where {|d| not ($state_dir | path join $"($d).installed" | path exists) }
}

def main [
    --prefix: string = "/"      # install root (a chroot or image build folder)
    --mode: string = "server"   # library, server or library-server
    --skip-deps                 # do not check that dependencies are installed
    --dry-run                   # show what would be done
] {
    let arch = (normalize-arch (^uname -m | str trim))
    if not $skip_deps {
        let missing = (missing-dependencies ($env.PROVISIONING_STATE_DIR? | default "/var/lib/provisioning/state"))
        if not ($missing | is-empty) {
            error make {msg: $"($NAME) needs ($missing | str join ', ') installed first"}
        }
    }
    let paths = (target-paths $prefix)
    log-step "plan" $"installing ($NAME) ($VERSION) in ($mode) mode under ($prefix)"
    install-packages $dry_run
    for dir in ($paths | values) {
        run-or-show $dry_run $"mkdir ($dir)" {|| mkdir $dir }
    }
    let url = (download-url $VERSION $arch)
    let archive = ($nu.temp-path | path join $"($NAME)-($VERSION).tar.gz")
    run-or-show $dry_run $"download ($url)" {|| http get --raw $url | save --force $archive }
    run-or-show $dry_run $"unpack into ($paths.bin)" {|| ^tar -xzf $archive -C $paths.bin }
    let config = (default-settings | merge {ports: $PORTS, version: $VERSION})
    run-or-show $dry_run $"write ($paths.etc)/config.yaml" {||
        $config | to yaml | save --force ($paths.etc | path join "config.yaml")
    }
    match $mode {
        "library" => { log-step "mode" "library only: no service" }
        "server" | "library-server" => {
            run-or-show $dry_run $"enable ($NAME).service" {|| ^systemctl enable --now $"($NAME).service" }
        }
        _ => { error make {msg: $"unknown install mode ($mode)"} }
    }
    log-step "done" $"($NAME) ($VERSION) installed"
}
""",
    "check": "#!/usr/bin/env nu\n# Health check of @NAME@: service, ports and version.\n\n"
    + NU_COMMON
    + """
# The first MAJOR.MINOR.PATCH in a `--version` output.
export def parse-version [text: string]: nothing -> string {
    $text | parse --regex '(?<v>\\d+\\.\\d+\\.\\d+)' | get v | first
}

# Whether version A is at least version B.
export def version-at-least [a: string, b: string]: nothing -> bool {
    let x = ($a | split row "." | each {|p| $p | into int })
    let y = ($b | split row "." | each {|p| $p | into int })
    if $x.0 != $y.0 { return ($x.0 > $y.0) }
    if $x.1 != $y.1 { return ($x.1 > $y.1) }
    $x.2 >= $y.2
}

def port-open [port: int] {
    let result = (do { ^bash -c $"exec 3<>/dev/tcp/127.0.0.1/($port)" } | complete)
    $result.exit_code == 0
}

def service-state [] {
    let result = (do { ^systemctl is-active $"($NAME).service" } | complete)
    $result.stdout | str trim
}

def main [
    --timeout: int = 30         # seconds to wait for the service
    --json                      # machine-readable output
] {
    let started = (date now)
    mut checks = []
    let state = (service-state)
    $checks = ($checks | append {check: "service", ok: ($state == "active"), detail: $state})
    for port in $PORTS {
        let open = (port-open $port)
        let detail = (if $open { "open" } else { "closed" })
        $checks = ($checks | append {check: $"port ($port)", ok: $open, detail: $detail})
    }
    let elapsed = ((date now) - $started)
    let failed = ($checks | where ok == false)
    if $json {
        {name: $NAME, version: $VERSION, checks: $checks, elapsed: ($elapsed | into string)} | to json | print
    } else {
        $checks | table | print
    }
    if not ($failed | is-empty) {
        error make {msg: $"($NAME): ($failed | length) failed check\\(s\\) within ($timeout)s"}
    }
}
""",
    "uninstall": "#!/usr/bin/env nu\n# Remove @NAME@ from the target server.\n\n"
    + NU_COMMON
    + """
# The folders an uninstall removes (the data folder only with --purge).
export def paths-to-remove [prefix: string, --purge]: nothing -> list<string> {
    let paths = (target-paths $prefix)
    if $purge {
        [$paths.etc, $paths.log, $paths.data]
    } else {
        [$paths.etc, $paths.log]
    }
}

def main [
    --prefix: string = "/"      # install root
    --purge                     # remove the data folder too
    --dry-run                   # show what would be done
] {
    run-or-show $dry_run $"stop ($NAME).service" {||
        do { ^systemctl disable --now $"($NAME).service" } | complete | ignore
    }
    let folders = if $purge { paths-to-remove $prefix --purge } else { paths-to-remove $prefix }
    for dir in $folders {
        if ($dir | path exists) {
            run-or-show $dry_run $"remove ($dir)" {|| rm --recursive --force $dir }
        }
    }
    let binary = ((target-paths $prefix).bin | path join $NAME)
    run-or-show $dry_run $"remove ($binary)" {|| rm --force $binary }
    log-step "done" $"($NAME) removed (if $purge { 'with its data' } else { 'data kept' })"
}
""",
    "configure": "#!/usr/bin/env nu\n# Render @NAME@'s configuration from settings and templates.\n\n"
    + NU_COMMON
    + """
# Overrides on top of the defaults; unknown keys are refused.
export def merge-settings [base: record, overrides: record]: nothing -> record {
    let known = ($base | columns | append [ports, version])
    let unknown = ($overrides | columns | where {|c| $c not-in $known })
    if not ($unknown | is-empty) {
        error make {msg: $"($NAME): unknown settings ($unknown | str join ', ')"}
    }
    $base | merge $overrides
}

# The configuration file as @NAME@ reads it.
export def render-config [settings: record, --format: string = "yaml"]: nothing -> string {
    match $format {
        "yaml" => { $settings | to yaml }
        "json" => { $settings | to json --indent 2 }
        _ => { error make {msg: $"unknown format ($format)"} }
    }
}

def load-overrides [file: string] {
    if ($file | is-empty) or not ($file | path exists) {
        return {}
    }
    match ($file | path parse | get extension) {
        "yaml" | "yml" | "json" | "toml" => { open $file }
        _ => { error make {msg: $"($file): settings must be yaml, json or toml"} }
    }
}

def main [
    --settings: string = ""     # yaml/json/toml file with overrides
    --output: string = ""       # where to write the rendered config (default: stdout)
    --format: string = "yaml"   # yaml or json
] {
    let base = (default-settings | merge {ports: $PORTS, version: $VERSION})
    let rendered = (render-config (merge-settings $base (load-overrides $settings)) --format $format)
    if ($output | is-empty) {
        print $rendered
    } else {
        $rendered | save --force $output
        log-step "configure" $"wrote ($output)"
    }
}
""",
}

NU_TEST = """# Tests of the @NAME@ scripts' pure helpers: `nu tests/test_@NAME@.nu`
use std/assert
use ../scripts/install.nu [normalize-arch download-url]
use ../scripts/configure.nu [default-settings merge-settings render-config]
use ../scripts/check.nu [parse-version version-at-least]
use ../scripts/uninstall.nu [paths-to-remove]

def "test normalize-arch" [] {
    assert equal (normalize-arch "x86_64") "amd64"
    assert equal (normalize-arch "aarch64") "arm64"
    assert error { normalize-arch "mips" }
}

def "test download-url" [] {
    let url = (download-url "@VERSION@" "arm64")
    assert str contains $url "v@VERSION@"
    assert ($url | str ends-with "linux-arm64.tar.gz")
}

def "test settings" [] {
    let merged = (merge-settings (default-settings) {ports: [@PORTS@]})
    assert equal $merged.ports [@PORTS@]
    assert str contains (render-config $merged) "ports:"
    assert error { merge-settings (default-settings) {no_such_setting: 1} }
}

def "test versions" [] {
    assert equal (parse-version "@NAME@ version v1.2.3, build abc") "1.2.3"
    assert (version-at-least "1.10.0" "1.9.9")
    assert not (version-at-least "1.2.3" "1.3.0")
}

def "test uninstall paths" [] {
    assert equal (paths-to-remove "/" | length) 2
    assert ("/var/lib/@NAME@" in (paths-to-remove "/" --purge))
}

def main [] {
    test normalize-arch
    test download-url
    test settings
    test versions
    test uninstall paths
    print "@NAME@: 5 tests passed"
}
"""

CONFIG_J2 = """# @NAME@ @VERSION@ configuration, rendered by provisioning
name: {{ name | default("@NAME@") }}
version: "{{ version | default("@VERSION@") }}"
listen:
{% for port in ports | default([]) %}
  - address: {{ bind | default("0.0.0.0") }}
    port: {{ port }}
{% endfor %}
data_dir: {{ data_dir | default("/var/lib/@NAME@") }}
log_level: {{ log_level | default("info") }}
{% if tls | default(false) %}
tls:
  cert: /etc/@NAME@/tls/tls.crt
  key: /etc/@NAME@/tls/tls.key
{% endif %}
{% if peers %}
peers:
{% for peer in peers %}
  - {{ peer.hostname }}:{{ peer.port | default(ports[0]) }}
{% endfor %}
{% endif %}
"""

SERVICE_J2 = """[Unit]
Description=@NAME@ {{ version | default("@VERSION@") }}
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
User={{ run_user | default("root") }}
ExecStart=/usr/local/bin/@NAME@ --config /etc/@NAME@/config.yaml
Restart=on-failure
RestartSec=5
LimitNOFILE={{ nofile | default(65536) }}
{% for key, value in (environment | default({})).items() %}
Environment={{ key }}={{ value }}
{% endfor %}

[Install]
WantedBy=multi-user.target
"""

ENV_J2 = """# Environment of @NAME@ (sourced by its service)
@NAME@_VERSION={{ version | default("@VERSION@") }}
{% for key, value in (settings | default({})).items() %}
{{ key | upper }}={{ value }}
{% endfor %}
"""

README_MD = """# @NAME@

The `@NAME@` @TYPE@ for provisioning, version @VERSION@.

## Install

```
provisioning module load @TYPE@ my-workspace @NAME@
provisioning @TYPE@ create @NAME@ --infra my-infra --check
```

The scripts under `scripts/` do the work on the target server: `install.nu`, `check.nu`,
`configure.nu` and `uninstall.nu`. Each takes `--dry-run` (except `check.nu`) and prints what
it would do.

## Dependencies

@DEPS@

## Settings

Declared in `kcl/@NAME@.k` (schema checks run when the extension is validated).

| setting | default |
| --- | --- |
@SETTINGS@

Ports: @PORTS@.

## Publishing

Published as `provisioning-extensions/@NAME@:@VERSION@`; release tag `@KEY@/v@VERSION@`.
"""


if __name__ == "__main__":
    sys.exit(main())
