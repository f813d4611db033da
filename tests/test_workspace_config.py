"""Workspace config: the seed's whole schema, module forms, registry precedence, errors with file:line:path."""

# ruff: noqa: F811  (pytest fixtures imported from test_workspace_helpers)

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from test_workspace_helpers import home, make_workspace  # noqa: F401

from provisioning.cli import main
from provisioning.errors import ValidationError
from provisioning.workspace.config import load_config
from provisioning.workspace.config_edit import set_module_entry

# The seed's "Workspace Configuration", every section, pointed at loopback hosts.
SEED_YAML = """\
# Core system dependency
dependencies:
  core:
    source: "oci://127.0.0.1:5999/provisioning-core:v3.5.0"
    # Alternative: source: "gitea://provisioning-core"
  # Extensions repository configuration
  extensions:
    source_type: "oci" # oci, gitea, local
    # OCI registry configuration
    oci:
      registry: "localhost:5000"
      namespace: "provisioning-extensions"
      tls_enabled: false
      auth_token_path: "~/.provisioning/tokens/oci"
    # Loaded extension modules
    modules:
      providers:
        - "oci://localhost:5000/provisioning-extensions/aws:2.0.0"
        - "oci://localhost:5000/provisioning-extensions/upcloud:1.5.0"
      taskservs:
        - "oci://localhost:5000/provisioning-extensions/kubernetes:1.28.0"
        - "oci://localhost:5000/provisioning-extensions/containerd:1.7.0"
        - "oci://localhost:5000/provisioning-extensions/cilium:1.14.0"
      clusters:
        - "oci://localhost:5000/provisioning-extensions/buildkit:0.12.0"
# Platform services
platform:
  source_type: "oci"
  oci:
    registry: "127.0.0.1:5998"
    namespace: "provisioning-platform"
  images:
    orchestrator: "127.0.0.1:5998/provisioning-platform/orchestrator:v1.2.0"
    control_center: "127.0.0.1:5998/provisioning-platform/control-center:v1.2.0"
# OCI registry configuration
registry:
  type: "oci" # oci, gitea, http
  oci:
    endpoint: "localhost:5000"
    namespaces:
      extensions: "provisioning-extensions"
      kcl: "provisioning-kcl"
      platform: "provisioning-platform"
      test: "provisioning-test"
"""


@pytest.fixture
def ws(tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "ws"
    make_workspace(root, SEED_YAML)
    monkeypatch.chdir(root)
    return root


def write(root: Path, text: str) -> None:
    (root / "config" / "provisioning.yaml").write_text(text)


def error_of(root: Path) -> str:
    with pytest.raises(ValidationError) as info:
        load_config(root)
    return str(info.value)


def test_the_seed_example_loads_whole(ws: Path) -> None:
    cfg = load_config(ws)
    assert cfg.core_version == "3.5.0"
    assert cfg.registry.registry == "localhost:5000"
    assert cfg.registry.namespace == "provisioning-extensions"
    assert cfg.registry.tls_enabled is False
    assert cfg.registry.auth_token_path and cfg.registry.auth_token_path.endswith(".provisioning/tokens/oci")
    by_name = {m.name: m for m in cfg.modules}
    assert sorted(by_name) == ["aws", "buildkit", "cilium", "containerd", "kubernetes", "upcloud"]
    assert by_name["aws"].type == "provider" and by_name["buildkit"].type == "cluster"
    assert by_name["kubernetes"].tag == "1.28.0" and by_name["kubernetes"].requirement_text == "=1.28.0"
    assert by_name["kubernetes"].registry is None  # the same registry as the config's default
    assert cfg.platform_images["orchestrator"].endswith("orchestrator:v1.2.0")
    assert cfg.platform_registry and cfg.platform_registry.namespace == "provisioning-platform"
    assert cfg.lock_path == ws / "config" / "provisioning.lock"


def test_harbor_form_under_dependencies_and_https_endpoint(ws: Path) -> None:
    write(
        ws,
        """\
dependencies:
  registry:
    type: "oci"
    oci:
      endpoint: "https://127.0.0.1:5997"
      namespaces:
        extensions: "provisioning/extensions"
        platform: "provisioning/platform"
      tls_enabled: true
      auth_token_path: "~/.provisioning/tokens/harbor"
  extensions:
    modules:
      taskservs: [kubernetes]
""",
    )
    cfg = load_config(ws)
    assert (cfg.registry.registry, cfg.registry.namespace, cfg.registry.tls_enabled) == (
        "127.0.0.1:5997",
        "provisioning/extensions",
        True,
    )


def test_module_forms(ws: Path) -> None:
    write(
        ws,
        """\
dependencies:
  extensions:
    oci: {registry: "127.0.0.1:5996"}
    modules:
      providers:
        - aws                                   # newest compatible
        - "upcloud@^1.4"                        # a constraint
      taskservs:
        - {name: kubernetes, version: ">=1.27, <1.29"}   # Helm's comma form
        - "127.0.0.1:5995/other-ns/containerd:1.7.0"     # another registry
        - "etcd@sha256:"""
        + "a" * 64
        + """"
      clusters:
        - {name: buildkit, source: local, path: ../src/buildkit}
""",
    )
    cfg = load_config(ws)
    m = {x.name: x for x in cfg.modules}
    assert m["aws"].constraint is None and m["aws"].requirement_text == "*"
    assert m["upcloud"].constraint == "^1.4"
    assert m["kubernetes"].constraint == ">=1.27, <1.29"
    assert m["containerd"].registry and m["containerd"].registry.registry == "127.0.0.1:5995"
    assert m["containerd"].registry.namespace == "other-ns"
    assert m["etcd"].digest == "sha256:" + "a" * 64
    assert m["buildkit"].source == "local" and m["buildkit"].path == (ws.parent / "src" / "buildkit")


def test_schema_error_names_file_line_and_field(ws: Path) -> None:
    write(ws, SEED_YAML.replace("tls_enabled: false", 'tls_enabled: "yes"'))
    line = SEED_YAML.splitlines().index("      tls_enabled: false") + 1
    msg = error_of(ws)
    assert (
        msg == f"config/provisioning.yaml:{line}: dependencies.extensions.oci.tls_enabled: expected true or false, "
        "got a string 'yes'"
    )


def test_schema_errors_say_in_words_what_belongs_there(ws: Path) -> None:
    write(
        ws,
        "dependencies:\n  extensions:\n    modules:\n      taskservs: redis\n      clusters:\n"
        "        - 12\n        - {name: web, bogus: 1}\n",
    )
    msg = error_of(ws)
    assert "config/provisioning.yaml:4: dependencies.extensions.modules.taskservs: expected a list of references" in msg
    assert "got a string 'redis'" in msg and "not of type 'null'" not in msg
    assert "config/provisioning.yaml:6: dependencies.extensions.modules.clusters[0]: expected a reference" in msg
    assert "got a number 12" in msg
    assert "config/provisioning.yaml:7: dependencies.extensions.modules.clusters[1]: Additional properties" in msg


def test_unknown_key_and_bad_source_type(ws: Path) -> None:
    text = SEED_YAML.replace('source_type: "oci" # oci, gitea, local', 'source_type: "svn"').replace(
        '    namespace: "provisioning-platform"\n  images',
        '    namespace: "provisioning-platform"\n    colour: blue\n  images',
    )
    write(ws, text)
    msg = error_of(ws)
    assert "config/provisioning.yaml:8: dependencies.extensions.source_type: 'svn' is not one of" in msg
    assert "platform.oci: Additional properties are not allowed ('colour' was unexpected)" in msg


def test_malformed_yaml_gives_the_line(ws: Path) -> None:
    write(ws, "dependencies:\n  extensions:\n    modules:\n      taskservs: [kubernetes\n  core: {}\n")
    msg = error_of(ws)
    assert msg.startswith("config/provisioning.yaml:5: malformed YAML")


def test_config_naming_nothing(ws: Path) -> None:
    write(ws, "dependencies:\n  extensions:\n    source_type: oci\n    modules:\n      taskservs: []\n")
    assert "names no extensions" in error_of(ws)
    write(ws, "")
    assert "is empty" in error_of(ws)


def test_bad_module_entries(ws: Path) -> None:
    write(
        ws,
        "dependencies:\n  extensions:\n    modules:\n      taskservs:\n"
        "        - kubernetes\n        - 'etcd@>=banana'\n",
    )
    msg = error_of(ws)
    assert msg.startswith(
        "config/provisioning.yaml:6: dependencies.extensions.modules.taskservs[1]: invalid version constraint"
    )
    write(
        ws, "dependencies:\n  extensions:\n    modules:\n      taskservs: [kubernetes]\n      providers: [kubernetes]\n"
    )
    assert "kubernetes is already listed at config/provisioning.yaml:5; list each extension once" in error_of(ws)
    write(ws, "dependencies:\n  extensions:\n    modules:\n      taskservs: ['Kubernetes Engine']\n")
    assert "expected a full reference" in error_of(ws)
    write(ws, "dependencies:\n  core: {version: three}\n  extensions:\n    modules:\n      taskservs: [k]\n")
    assert "config/provisioning.yaml:2: dependencies.core.version: 'three' is not a semantic version" in error_of(ws)


def test_registry_precedence_flag_then_env_then_config_then_default(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bare = "dependencies:\n  extensions:\n    modules:\n      taskservs: [kubernetes]\n"
    write(ws, bare)
    cfg = load_config(ws)
    assert (cfg.registry.registry, cfg.registry.namespace) == ("localhost:5000", "provisioning-extensions")
    write(ws, bare + "    oci: {registry: ./store, namespace: mine}\n")
    cfg = load_config(ws)
    assert (cfg.registry.registry, cfg.registry.namespace) == (str(ws / "store"), "mine")
    assert cfg.registry.is_path  # a path names the embedded store, relative to the workspace
    monkeypatch.setenv("PROVISIONING_REGISTRY", "127.0.0.1:5994")
    monkeypatch.setenv("PROVISIONING_NAMESPACE", "team-ns")
    cfg = load_config(ws)  # the environment points a whole CI run at a mirror
    assert (cfg.registry.registry, cfg.registry.namespace) == ("127.0.0.1:5994", "team-ns")
    cfg = load_config(ws, registry="127.0.0.1:5993")
    assert cfg.registry.registry == "127.0.0.1:5993"


def test_inputs_hash_is_stable_and_portable(ws: Path, tmp_path: Path) -> None:
    bare = "dependencies:\n  extensions:\n    oci: {registry: ./store}\n    modules:\n      taskservs: [kubernetes]\n"
    write(ws, bare)
    other = make_workspace(tmp_path / "elsewhere" / "ws2", bare)
    assert load_config(ws).inputs_hash() == load_config(other).inputs_hash()
    write(ws, bare.replace("[kubernetes]", "[kubernetes@^1.28]"))
    assert load_config(ws).inputs_hash() != load_config(other).inputs_hash()


def test_editing_a_module_keeps_comments(ws: Path) -> None:
    file = ws / "config" / "provisioning.yaml"
    set_module_entry(file, "taskserv", "cilium", {"name": "cilium", "source": "local", "path": "../src/cilium"})
    set_module_entry(file, "taskserv", "redis", {"name": "redis", "source": "local", "path": "../src/redis"})
    text = file.read_text()
    assert "# Loaded extension modules" in text and "# oci, gitea, http" in text
    doc = yaml.safe_load(text)
    taskservs = doc["dependencies"]["extensions"]["modules"]["taskservs"]
    assert taskservs[2] == {"name": "cilium", "source": "local", "path": "../src/cilium"}
    assert taskservs[3] == {"name": "redis", "source": "local", "path": "../src/redis"}
    assert len(taskservs) == 4
    set_module_entry(file, "provider", "aws", "oci://localhost:5000/provisioning-extensions/aws:2.1.0")
    assert yaml.safe_load(file.read_text())["dependencies"]["extensions"]["modules"]["providers"][0].endswith(
        "aws:2.1.0"
    )


def test_cli_reports_config_errors_with_exit_1(ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(ws, SEED_YAML.replace("tls_enabled: false", 'tls_enabled: "yes"'))
    assert main(["dep", "validate"]) == 1
    err = capsys.readouterr().err
    assert "dependencies.extensions.oci.tls_enabled: expected true or false, got a string 'yes'" in err
    assert "Traceback" not in err


def test_no_workspace_here(tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["dep", "resolve"]) == 1
    assert "no workspace config at config/provisioning.yaml" in capsys.readouterr().err


def test_schema_files_are_valid_json_schemas() -> None:
    import jsonschema

    from provisioning.yamlfile import load_schema

    for name in ("workspace.schema.json", "manifest.schema.json"):
        schema = load_schema(name)
        jsonschema.validators.validator_for(schema).check_schema(schema)
