"""``generate extension``: new extensions pass the real checks unchanged and look like the shipped ones."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from provisioning.checks import check_nu, check_templates, compile_kcl, nu_available
from provisioning.cli import main
from provisioning.errors import ValidationError
from provisioning.extension import kcl_mod_version, validate_extension
from provisioning.generate import generate_extension
from provisioning.testing import run_extension_tests

PROJECT = Path(__file__).resolve().parent.parent
SEED_FIELDS = [
    "name",
    "type",
    "version",
    "description",
    "author",
    "license",
    "homepage",
    "repository",
    "dependencies",
    "tags",
    "platforms",
    "min_provisioning_version",
]
SHIPPED = {"provider": "providers/aws", "taskserv": "taskservs/kubernetes", "cluster": "clusters/buildkit"}


@pytest.fixture(scope="session")
def nu() -> None:
    if not nu_available():
        pytest.fail("Nushell ('nu') is not on PATH; install it (npm install -g nushell)")


def shape(ext: Path) -> set[str]:
    """The extension's files with its own name taken out, so two extensions compare."""
    name = ext.name
    ident = name.replace("-", "_")
    out = set()
    for p in ext.rglob("*"):
        if p.is_file() and p.parent.name != "templates":
            out.add(p.relative_to(ext).as_posix().replace(name, "NAME").replace(ident, "NAME"))
    return out


@pytest.mark.parametrize("ext_type", ["provider", "taskserv", "cluster"])
def test_generated_extension_passes_every_check(tmp_path: Path, ext_type: str, nu: None) -> None:
    deps = {"kubernetes": ">=1.27.0", "nginx-ingress": "^1.9.0"} if ext_type != "provider" else {}
    ext = generate_extension(ext_type, "demo-app", tmp_path, description="A demo", dependencies=deps)
    assert ext == tmp_path / f"{ext_type}s" / "demo-app"
    assert compile_kcl(ext) == []
    assert check_nu(sorted(ext.rglob("*.nu"))) == {}
    assert check_templates(sorted(ext.rglob("*.j2"))) == {}
    report = run_extension_tests(ext)
    assert report.ok and len(report.passed) >= 3, [(c.name, c.output) for c in report.failed]
    assert {c.kind for c in report.cases} == {"kcl", "nu"}
    validate_extension(ext, known=["demo-app", *deps])  # the packager's structure rules


@pytest.mark.parametrize("ext_type", ["provider", "taskserv", "cluster"])
def test_same_structure_as_the_shipped_extensions(tmp_path: Path, ext_type: str) -> None:
    ext = generate_extension(ext_type, "sample", tmp_path)
    shipped = PROJECT / "extensions" / SHIPPED[ext_type]
    assert shape(ext) == shape(shipped)
    assert any((ext / "templates").glob("*.j2"))


def test_manifest_has_every_seed_field(tmp_path: Path) -> None:
    ext = generate_extension(
        "taskserv",
        "redis-exporter",
        tmp_path,
        version="1.55.0",
        description='Prometheus exporter for "Redis" metrics: ${not interpolated}',
        dependencies={"redis": ">=1.0.0", "prometheus": ">=2.40.0"},
        tags=["metrics", "redis"],
    )
    manifest = yaml.safe_load((ext / "manifest.yaml").read_text())
    assert list(manifest) == SEED_FIELDS
    assert manifest["version"] == "1.55.0"
    assert manifest["dependencies"] == {"redis": ">=1.0.0", "prometheus": ">=2.40.0"}
    assert manifest["platforms"] == ["linux/amd64", "linux/arm64"]
    assert manifest["min_provisioning_version"] == "3.0.0"
    mod = (ext / "kcl" / "kcl.mod").read_text()
    assert 'name = "redis-exporter"' in mod and "provisioning = " in mod
    assert kcl_mod_version(ext / "kcl" / "kcl.mod") == "1.55.0"
    assert compile_kcl(ext) == []


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    ext = generate_extension("taskserv", "redis", tmp_path)
    (ext / "kcl" / "redis.k").write_text("# edited by hand\n")
    with pytest.raises(ValidationError, match="already exists"):
        generate_extension("taskserv", "redis", tmp_path)
    assert (ext / "kcl" / "redis.k").read_text() == "# edited by hand\n"
    assert sorted(p.name for p in ext.parent.iterdir()) == ["redis"]  # no staging folder left behind


@pytest.mark.parametrize(
    "name", ["Redis", "redis_cache", "1redis", "-redis", "redis-", "re--dis", "re dis", "", "a" * 64, "schema", "regex"]
)
def test_refuses_bad_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValidationError, match="invalid extension name"):
        generate_extension("taskserv", name, tmp_path)
    assert not any(tmp_path.rglob("*.k"))


@pytest.mark.parametrize(
    ("ext_type", "fields", "match"),
    [
        ("service", {}, "invalid extension type"),
        ("taskservs", {}, "invalid extension type"),
        ("taskserv", {"version": "1.0"}, "invalid version"),
        ("taskserv", {"description": "two\nlines"}, "single line"),
        ("taskserv", {"dependencies": {"Bad_Name": "*"}}, "invalid dependency"),
    ],
)
def test_refuses_bad_fields(tmp_path: Path, ext_type: str, fields: dict, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        generate_extension(ext_type, "fine", tmp_path, **fields)


def test_cli_generate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["generate", "extension", "taskserv", "valkey", "--path", str(tmp_path), "--version", "8.0.1"]
    assert main([*argv, "-d", "redis=>=1.0.0", "--description", "Valkey key-value store"]) == 0
    out = capsys.readouterr().out
    assert "created taskserv valkey" in out and "scripts/install.nu" in out
    manifest = yaml.safe_load((tmp_path / "taskservs" / "valkey" / "manifest.yaml").read_text())
    assert manifest["dependencies"] == {"redis": ">=1.0.0"} and manifest["version"] == "8.0.1"

    assert main(argv) == 1
    assert "already exists" in capsys.readouterr().err
    assert main(["generate", "extension", "taskserv", "Valkey", "--path", str(tmp_path)]) == 1
    assert "invalid extension name" in capsys.readouterr().err
    assert main(["generate", "extension", "widget", "valkey2", "--path", str(tmp_path)]) == 1
    assert "invalid extension type" in capsys.readouterr().err


def test_cli_default_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PROVISIONING_EXTENSIONS", raising=False)
    assert main(["generate", "extension", "provider", "hetzner", "--output", "json"]) == 0
    assert (tmp_path / "extensions" / "providers" / "hetzner" / "kcl" / "hetzner.k").is_file()
    capsys.readouterr()
    monkeypatch.setenv("PROVISIONING_EXTENSIONS", str(tmp_path / "elsewhere"))
    assert main(["generate", "extension", "cluster", "mail"]) == 0
    assert (tmp_path / "elsewhere" / "clusters" / "mail" / "manifest.yaml").is_file()
