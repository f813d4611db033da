"""The real checks: KCL compiled in-process against the base schemas, Nushell parsed by nu."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from provisioning.checks import (
    NU_SPLIT_THRESHOLD,
    base_kcl_dir,
    check_nu,
    check_templates,
    clear_kcl_cache,
    compile_kcl,
    compile_kcl_many,
    format_kcl_diagnostics,
    kcl_validate,
    nu_available,
    parse_kcl_diagnostics,
)
from provisioning.extension import discover

PROJECT = Path(__file__).resolve().parent.parent
EXTENSIONS = sorted(discover(PROJECT / "extensions"))


@pytest.fixture(scope="session")
def nu() -> None:
    """CI installs Nushell: its absence is a failure, never a skip."""
    if not nu_available():
        pytest.fail("Nushell ('nu') is not on PATH; install it (npm install -g nushell)")


def copy_extension(tmp_path: Path, key: str) -> Path:
    """A private copy of a shipped extension, in the same layout (tmp/<type>s/<name>)."""
    dest = tmp_path / key
    shutil.copytree(PROJECT / "extensions" / key, dest)
    return dest


def line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


# --------------------------------------------------------------------------- shipped extensions


def test_the_tree_has_the_seed_extensions() -> None:
    names = {p.name for p in EXTENSIONS}
    assert {"aws", "upcloud", "local"} <= names
    assert {"kubernetes", "containerd", "etcd", "cilium", "postgres", "redis"} <= names
    assert {"buildkit", "web"} <= names


def test_base_package_is_provisioning() -> None:
    mod = (base_kcl_dir() / "kcl.mod").read_text()
    assert 'name = "provisioning"' in mod
    for f in ("main.k", "lib.k", "settings.k", "dependencies.k", "server.k", "cluster.k", "workflows.k"):
        assert (base_kcl_dir() / f).is_file(), f


@pytest.mark.parametrize("ext", EXTENSIONS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_extension_compiles(ext: Path) -> None:
    assert compile_kcl(ext) == []


def test_compile_many_agrees_on_the_tree() -> None:
    assert compile_kcl_many(EXTENSIONS) == {e: [] for e in EXTENSIONS}


def test_every_script_and_test_passes_nu(nu: None) -> None:
    scripts = [s for e in EXTENSIONS for s in sorted(e.rglob("*.nu"))]
    assert len(scripts) >= 4 * len(EXTENSIONS) - 10
    assert check_nu(scripts) == {}


def test_every_template_parses() -> None:
    templates = [t for e in EXTENSIONS for t in sorted(e.rglob("*.j2"))]
    assert templates
    assert check_templates(templates) == {}


# --------------------------------------------------------------------------- KCL errors


def test_kcl_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    ext = copy_extension(tmp_path, "taskservs/kubernetes")
    main = ext / "kcl" / "kubernetes.k"
    main.write_text(main.read_text().replace("schema ControlPlane:", "schema ControlPlane"))
    line = line_of(main, "schema ControlPlane")
    messages = compile_kcl(ext)
    assert messages, "a syntax error must be reported"
    assert any(f"kubernetes.k:{line}:" in m and "InvalidSyntax" in m for m in messages), messages


def test_kcl_type_error_names_file_and_line(tmp_path: Path) -> None:
    ext = copy_extension(tmp_path, "taskservs/kubernetes")
    version = ext / "kcl" / "version.k"
    version.write_text(version.read_text() + '\nsupported_minor: int = "twenty-eight"\n')
    line = line_of(version, "supported_minor")
    messages = compile_kcl(ext)
    assert len(messages) == 1, messages
    assert f"version.k:{line}:" in messages[0]
    assert "TypeError" in messages[0] and "expected int" in messages[0]


def test_kcl_failed_check_names_the_rule(tmp_path: Path) -> None:
    ext = copy_extension(tmp_path, "taskservs/etcd")
    version = ext / "kcl" / "version.k"
    version.write_text(version.read_text().replace('current = "3.5.9"', 'current = "3.5"'))
    messages = compile_kcl(ext)
    assert len(messages) == 1, messages
    assert f"version.k:{line_of(version, 'provisioning.Version {')}:" in messages[0]
    assert "not semver" in messages[0] and "lib.k:" in messages[0]


def test_kcl_unknown_base_schema(tmp_path: Path) -> None:
    ext = copy_extension(tmp_path, "providers/aws")
    (ext / "kcl" / "extra.k").write_text("import provisioning\n\nx = provisioning.NoSuchSchema {}\n")
    messages = compile_kcl(ext)
    assert any("extra.k:3:" in m and "NoSuchSchema" in m for m in messages), messages


def test_kcl_without_sources(tmp_path: Path) -> None:
    (tmp_path / "kcl").mkdir()
    assert "no .k files" in compile_kcl(tmp_path)[0]


def test_compile_many_gives_compile_kcls_answers(tmp_path: Path) -> None:
    keys = ["taskservs/kubernetes", "taskservs/etcd", "taskservs/redis", "providers/aws", "clusters/web"]
    exts = [copy_extension(tmp_path, k) for k in keys]
    k8s, etcd, redis, aws, _web = exts
    (k8s / "kcl" / "kubernetes.k").write_text("schema Broken\n")  # syntax
    v = etcd / "kcl" / "version.k"
    v.write_text(v.read_text().replace('current = "3.5.9"', 'current = "x"'))  # failed check
    (redis / "kcl" / "private.k").write_text("_hidden = 1\nassert _hidden == 1\n")  # compiled alone
    many = compile_kcl_many(exts)
    clear_kcl_cache()
    assert many == {e: compile_kcl(e) for e in exts}
    assert many[k8s] and many[etcd] and not many[redis] and not many[aws]


def test_results_follow_the_content(tmp_path: Path) -> None:
    ext = copy_extension(tmp_path, "taskservs/helm")
    assert compile_kcl_many([ext]) == {ext: []}
    assert compile_kcl(ext) == []
    main = ext / "kcl" / "helm.k"
    good = main.read_text()
    main.write_text(good.replace('version: str = "3.13.0"', 'version: str = "2.17.0"'))
    assert compile_kcl(ext) == []  # a schema default is only checked when instantiated
    (ext / "kcl" / "default.k").write_text("default_helm = Helm {}\n")
    [message] = compile_kcl(ext)
    assert "Helm 3" in message
    main.write_text(good)
    assert compile_kcl(ext) == []


def test_workspace_dependencies_check_against_the_base_schemas(tmp_path: Path) -> None:
    """The seed's workspace `dependencies:` section, written as KCL, passes; a bad OCI source does not."""
    (tmp_path / "kcl").mkdir()
    good = tmp_path / "kcl" / "workspace.k"
    good.write_text(
        """import provisioning

deps = provisioning.WorkspaceDependencies {
    core = provisioning.CoreDependency {source = "oci://harbor.company.com/provisioning-core:v3.5.0"}
    extensions = provisioning.ExtensionsDependency {
        source_type = "oci"
        oci = provisioning.OCISource {registry = "localhost:5000", auth_token_path = "~/.provisioning/tokens/oci"}
        modules = provisioning.ExtensionModules {
            providers = ["oci://localhost:5000/provisioning-extensions/aws:2.0.0"]
            taskservs = ["oci://localhost:5000/provisioning-extensions/kubernetes:1.28.0"]
            clusters = ["oci://localhost:5000/provisioning-extensions/buildkit:0.12.0"]
        }
    }
    registry = provisioning.RegistryConfig {oci = provisioning.RegistryEndpoint {endpoint = "localhost:5000"}}
}
"""
    )
    assert compile_kcl(tmp_path) == []
    good.write_text(
        "import provisioning\n\n"
        'x = provisioning.OCISource {registry = "localhost:5000", insecure = True}\n'
        'y = provisioning.ExtensionModules {taskservs = ["kubernetes"]}\n'
    )
    messages = compile_kcl(tmp_path)
    assert len(messages) == 1 and "workspace.k:3:" in messages[0] and "insecure" in messages[0], messages


SEED_DEPENDENCIES = {
    "core": {"source": "oci://harbor.company.com/provisioning-core:v3.5.0"},
    "extensions": {
        "source_type": "oci",
        "oci": {"registry": "localhost:5000", "namespace": "provisioning-extensions", "tls_enabled": False},
        "modules": {
            "providers": ["oci://localhost:5000/provisioning-extensions/aws:2.0.0"],
            "taskservs": ["oci://localhost:5000/provisioning-extensions/kubernetes:1.28.0"],
        },
    },
    "registry": {
        "type": "oci",
        "oci": {
            "endpoint": "https://harbor.company.com",
            "namespaces": {"extensions": "provisioning/extensions", "platform": "provisioning/platform"},
            "tls_enabled": True,
        },
    },
}


def test_kcl_validate_plain_data() -> None:
    assert kcl_validate(SEED_DEPENDENCIES) == []
    bad_endpoint = {**SEED_DEPENDENCIES, "registry": {"type": "oci", "oci": {"endpoint": "local host"}}}
    [message] = kcl_validate(bad_endpoint)
    assert "endpoint 'local host' must be" in message
    [message] = kcl_validate({**SEED_DEPENDENCIES, "extra": 1})
    assert "Cannot add member 'extra' to schema 'WorkspaceDependencies'" in message
    assert "needs an oci section" in kcl_validate({"extensions": {"source_type": "oci"}})[0]
    assert "not a valid DNS name" in kcl_validate({"hostname": "Web_01"}, "Server")[0]


def test_parse_kcl_diagnostics_plain_text() -> None:
    text = (
        "error[E2G22]: TypeError\n"
        " --> /x/kcl/a.k:3:9\n"
        "  |\n"
        '3 | port: int = "80"\n'
        "  |         ^ expected int, got str(80)\n"
        "  |\n"
        "\nwarning[W1]: UnusedImport\n --> /x/kcl/a.k:1:1\n  |\n1 | import regex\n  | ^ unused\n"
    )
    [diag] = parse_kcl_diagnostics(text)
    assert diag.kind == "TypeError"
    assert (diag.places[0].line, diag.places[0].col) == (3, 9)
    assert format_kcl_diagnostics([diag]) == ["/x/kcl/a.k:3:9: TypeError: expected int, got str(80)"]
    assert format_kcl_diagnostics(parse_kcl_diagnostics("Cannot find the kcl file")) == [
        "Error: Cannot find the kcl file"
    ]


# --------------------------------------------------------------------------- Nushell errors


BROKEN_NU = """#!/usr/bin/env nu
# a script with an unclosed block
def main [--dry-run] {
    let x = (1 +
    print $x
}
"""


def test_broken_nu_script_is_reported_with_its_file(tmp_path: Path, nu: None) -> None:
    ext = copy_extension(tmp_path, "taskservs/redis")
    broken = ext / "scripts" / "install.nu"
    broken.write_text(BROKEN_NU)
    scripts = sorted(ext.rglob("*.nu"))
    failures = check_nu(scripts)
    assert broken in failures, failures
    assert failures[broken].startswith("line "), failures[broken]
    assert "delimiter" in failures[broken]
    # the test file imports the broken script, so it fails too; the others pass
    assert set(failures) == {broken, ext / "tests" / "test_redis.nu"}


def test_nu_type_mismatch_and_unknown_flag(tmp_path: Path, nu: None) -> None:
    mismatch = tmp_path / "mismatch.nu"
    mismatch.write_text('def main [] {\n    let n: int = "three"\n    print $n\n}\n')
    flag = tmp_path / "flag.nu"
    flag.write_text("def step [cmd: string] { print $cmd }\n\ndef main [] {\n    step --now x\n}\n")
    ok = tmp_path / "ok.nu"
    ok.write_text("def main [] { ^definitely-not-installed --version }\n")  # externals are not checked
    failures = check_nu([mismatch, flag, ok])
    assert set(failures) == {mismatch, flag}
    assert failures[mismatch].startswith("line 2, column 18: Type mismatch")
    assert failures[flag].startswith("line 4,") and "flag" in failures[flag]


def test_missing_script(tmp_path: Path, nu: None) -> None:
    missing = tmp_path / "nope.nu"
    assert missing in check_nu([missing])


def test_many_scripts_use_two_processes_and_find_each_failure(tmp_path: Path, nu: None) -> None:
    source = (PROJECT / "extensions" / "taskservs" / "etcd" / "scripts" / "install.nu").read_text()
    scripts = []
    for i in range(NU_SPLIT_THRESHOLD + 20):
        p = tmp_path / f"s{i:03}.nu"
        p.write_text(BROKEN_NU if i in (7, NU_SPLIT_THRESHOLD + 3) else source)
        scripts.append(p)
    failures = check_nu(scripts)
    assert set(failures) == {scripts[7], scripts[NU_SPLIT_THRESHOLD + 3]}


def test_no_scripts_needs_no_nu() -> None:
    assert check_nu([]) == {}
