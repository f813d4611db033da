"""The command line as the seed and the README use it: flags anywhere, plain help, the walkthrough's commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from provisioning.cli import _leaf_parsers, build_parser, main

PROJECT = Path(__file__).resolve().parent.parent
REDIS = PROJECT / "extensions" / "taskservs" / "redis"


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PROVISIONING_HOME", str(tmp_path / "home"))
    for var in ("PROVISIONING_REGISTRY", "PROVISIONING_NAMESPACE", "PROVISIONING_WORKSPACE"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def test_global_flags_work_before_and_after_the_command() -> None:
    parser = build_parser()
    after = parser.parse_args(["dep", "resolve", "-v", "--debug"])
    assert after.verbose is True and after.debug is True
    before = parser.parse_args(["-v", "dep", "resolve"])
    assert before.verbose is True and before.debug is False  # not reset by the command's copy
    plain = parser.parse_args(["dep", "resolve"])
    assert plain.verbose is False and plain.debug is False


def test_output_before_the_command_reaches_it(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--output", "json", "oci", "config"]) == 0
    assert json.loads(capsys.readouterr().out)["registry"] == "localhost:5000"
    assert main(["-o", "table", "oci", "config"]) == 0
    assert "│ registry " in capsys.readouterr().out


def test_every_help_reads_as_plain_text() -> None:
    parser = build_parser()
    for sub in [parser, *_leaf_parsers(parser)]:
        text = sub.format_help()
        assert "``" not in text and ":class:" not in text, sub.prog
    dep = next(p for p in _leaf_parsers(parser) if p.prog == "provisioning dep")
    assert "config/provisioning.yaml" in dep.format_help()


def test_generate_defaults_to_the_version_the_seed_publishes(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", "extension", "taskserv", "redis"]) == 0
    assert "created taskserv redis" in capsys.readouterr().out
    manifest = yaml.safe_load((here / "extensions" / "taskservs" / "redis" / "manifest.yaml").read_text())
    assert manifest["version"] == "1.0.0"


def test_oci_publish_takes_name_and_version_from_the_manifest(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = here / "store"
    assert main(["oci", "publish", str(REDIS), "--registry", str(store)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"published {store}/provisioning-extensions/redis:1.0.0 (sha256:")
    assert main(["oci", "publish", str(REDIS), "--registry", str(store)]) == 0
    assert capsys.readouterr().out.startswith("unchanged:")
    assert main(["oci", "tags", "redis", "--registry", str(store), "-o", "json"]) == 0
    assert [r["version"] for r in json.loads(capsys.readouterr().out)] == ["1.0.0"]


def test_login_where_there_is_nothing_to_log_in_to(
    here: Path, fresh_registry, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["oci", "login", "./store"]) == 0
    assert "embedded store on disk: no login needed" in capsys.readouterr().out
    assert main(["oci", "login", fresh_registry.host]) == 0
    assert "asks for no credentials: no login needed (nothing stored)" in capsys.readouterr().out
    assert not (here / "home" / "auth.json").exists()


def test_login_to_a_registry_that_wants_credentials_still_needs_them(
    here: Path, token_registry, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["oci", "login", token_registry.host]) == 2
    assert "login needs --username USER" in capsys.readouterr().err


def test_module_load_from_oci_adds_the_reference_and_resolves(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = here / "store"
    assert main(["oci", "publish", str(REDIS), "--registry", str(store)]) == 0
    assert main(["workspace", "init", "ws", "--registry", str(store)]) == 0
    capsys.readouterr()
    assert main(["module", "load", "taskserv", "ws", "redis", "--source", "oci", "--version", "1.0.0"]) == 0
    out = capsys.readouterr().out
    assert "redis: now loaded from" in out and "(source oci)" in out and "installed" in out
    config = yaml.safe_load((here / "ws" / "config" / "provisioning.yaml").read_text())
    assert config["dependencies"]["extensions"]["modules"]["taskservs"] == ["redis@=1.0.0"]
    lock = json.loads((here / "ws" / "config" / "provisioning.lock").read_text())
    assert lock["extensions"]["redis"]["source"] == "oci" and lock["extensions"]["redis"]["version"] == "1.0.0"
    assert (here / "ws" / "extensions" / "taskservs" / "redis" / "manifest.yaml").is_file()

    text = (here / "ws" / "config" / "provisioning.yaml").read_text()
    assert main(["module", "load", "taskserv", "ws", "valkey", "--source", "oci"]) == 1
    assert "valkey" in capsys.readouterr().err
    assert (here / "ws" / "config" / "provisioning.yaml").read_text() == text  # left as it was


def test_module_load_oci_writes_the_seeds_full_reference_for_a_registry(
    here: Path, fresh_registry, capsys: pytest.CaptureFixture[str]
) -> None:
    host = fresh_registry.host
    assert main(["oci", "publish", str(REDIS), "--registry", host]) == 0
    assert main(["workspace", "init", "ws", "--registry", host]) == 0
    assert main(["module", "load", "taskserv", "ws", "redis", "--source", "oci", "--version", "1.0.0"]) == 0
    capsys.readouterr()
    config = yaml.safe_load((here / "ws" / "config" / "provisioning.yaml").read_text())
    assert config["dependencies"]["extensions"]["modules"]["taskservs"] == [
        f"oci://{host}/provisioning-extensions/redis:1.0.0"
    ]


def test_migrate_to_oci_accepts_workspace_as_a_flag(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["workspace", "init", "ws", "--registry", "./store"]) == 0
    capsys.readouterr()
    assert main(["workspace", "migrate-to-oci", "--workspace", "ws", "--dry-run"]) == 1
    assert "error: ws/config/provisioning.yaml" in capsys.readouterr().err  # the workspace the flag named
    assert main(["workspace", "migrate-to-oci", "ws", "--workspace", "other"]) == 2
