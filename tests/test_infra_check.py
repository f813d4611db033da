"""``taskserv|cluster|provider create NAME --infra ENV --check``: values against the extension's KCL schema,
templates rendered strictly, the real ``nu`` running ``install.nu --dry-run``, nothing written on bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from provisioning.checks import nu_available
from provisioning.cli import main
from provisioning.extension import discover
from provisioning.generate import generate_extension

PROJECT = Path(__file__).resolve().parent.parent
EXTENSIONS = sorted(discover(PROJECT / "extensions"))


@pytest.fixture(scope="module", autouse=True)
def nu() -> None:
    if not nu_available():
        pytest.fail("Nushell ('nu') is not on PATH; install it (npm install -g nushell)")


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The repository's example workspace (config and infra) copied, so checks render outside the checkout."""
    root = tmp_path / "ws"
    shutil.copytree(PROJECT / "workspace" / "config", root / "config")
    shutil.copytree(PROJECT / "workspace" / "infra", root / "infra", ignore=shutil.ignore_patterns(".check"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PROVISIONING_WORKSPACE", raising=False)
    return root


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    assert main([*argv, "--output", "json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("ext", EXTENSIONS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_shipped_extension_passes_check_with_the_example_infra(
    ws: Path, ext: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    type_ = ext.parent.name[:-1]
    plan = run_json(
        capsys, type_, "create", ext.name, "--infra", "test-env", "--check", "--workspace", str(ws), "--path", str(ext)
    )
    assert plan["check"] is True and plan["changed_host"] is False and plan["steps"], plan
    check_dir = ws / "infra" / "test-env" / ".check" / ext.name
    templates = sorted(p.name.removesuffix(".j2") for p in (ext / "templates").iterdir())
    assert sorted(p.name for p in check_dir.iterdir()) == templates
    for rendered in check_dir.iterdir():
        text = rendered.read_text()
        assert "{{ " not in text and "{% " not in text and "None" not in text, f"{rendered}:\n{text}"


def test_redis_plan_uses_the_infra_values(ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ext = PROJECT / "extensions" / "taskservs" / "redis"
    before = snapshot(ext)
    plan = run_json(
        capsys, "taskserv", "create", "redis", "--infra", "test-env", "--check", "-w", str(ws), "--path", str(ext)
    )
    assert plan["values"]["port"] == 6380 and plan["values"]["databases"] == 16  # infra value and schema default
    assert plan["schema"] == "Redis" and plan["provider"] == "local"
    assert "apt-get install -y redis-server" in plan["steps"]
    assert plan["rendered"] == ["infra/test-env/.check/redis/redis.conf"]
    conf = (ws / "infra" / "test-env" / ".check" / "redis" / "redis.conf").read_text()
    assert "port 6380\n" in conf and "maxmemory 512mb\n" in conf and "requirepass" not in conf
    assert snapshot(ext) == before
    # the table form says what it is and what it did not do
    assert (
        main(["taskserv", "create", "redis", "--infra", "test-env", "--check", "-w", str(ws), "--path", str(ext)]) == 0
    )
    out = capsys.readouterr().out
    assert "taskserv redis 1.0.0 on infra test-env (provider local)" in out
    assert "sysctl -w vm.overcommit_memory=1" in out and "check only: nothing was changed on this host" in out


def create(ws: Path, name: str, ext: Path, infra: str = "test-env", *, check: bool = True) -> int:
    """``taskserv create NAME --infra INFRA [--check]`` for the extension folder ``ext``."""
    argv = ["taskserv", "create", name, "--infra", infra, "-w", str(ws), "--path", str(ext)]
    return main([*argv, "--check"] if check else argv)


def write_infra(ws: Path, text: str) -> Path:
    path = ws / "infra" / "bad" / "settings.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ('    port: "abc"\n', ["infra/bad/settings.yaml:4: taskservs.redis.port: expected int, got str"]),
        (
            "    colour: blue\n",
            ["settings.yaml:4: taskservs.redis.colour: Cannot add member 'colour' to schema 'Redis'"],
        ),
        ("    port: 70000\n", ["settings.yaml:3: taskservs.redis: port must be a TCP port (redis/kcl/redis.k:"]),
        ("    bind: [0.0.0.0]\n", ["listening beyond localhost needs password_path"]),
    ],
    ids=["wrong-type", "unknown-key", "check-rule", "cross-field-rule"],
)
def test_bad_values_name_file_line_and_field_and_write_nothing(
    ws: Path, values: str, expected: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    write_infra(ws, "provider: local\ntaskservs:\n  redis:\n" + values)
    before = snapshot(ws)
    ext = PROJECT / "extensions" / "taskservs" / "redis"
    assert create(ws, "redis", ext, "bad") == 1
    err = capsys.readouterr().err
    for part in expected:
        assert part in err, err
    assert "Traceback" not in err and "nothing was written" in err
    assert snapshot(ws) == before and not (ws / "infra" / "bad" / ".check").exists()


def test_a_nested_value_of_the_wrong_type_is_named_to_its_field(ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_infra(
        ws,
        "provider: local\ntaskservs:\n  etcd:\n    member_name: a\n    members:\n"
        '      - {name: a, ip: "10.0.0.1"}\n      - name: b\n        ip: 5\n',
    )
    assert create(ws, "etcd", PROJECT / "extensions" / "taskservs" / "etcd", "bad") == 1
    err = capsys.readouterr().err
    assert "infra/bad/settings.yaml:8: taskservs.etcd.members[1].ip: expected str, got int(5) (etcd/kcl/etcd.k:" in err


def test_infra_shape_errors_say_what_belongs_there(ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_infra(ws, "provider: local\nservers: dev-01\ntaskservs:\n  redis: 6380\n")
    ext = PROJECT / "extensions" / "taskservs" / "redis"
    assert create(ws, "redis", ext, "bad") == 1
    err = capsys.readouterr().err
    assert "infra/bad/settings.yaml:2: servers: expected a list of servers" in err and "got a string 'dev-01'" in err
    assert "infra/bad/settings.yaml:4: taskservs.redis: expected a mapping of values" in err


def test_missing_template_variable_is_an_error_and_writes_nothing(
    ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ext = generate_extension("taskserv", "demo", tmp_path / "src")
    (ext / "templates" / "extra.conf.j2").write_text("port {{ taskserv.port }}\nkey {{ api_key }}\n")
    before = snapshot(ws)
    assert (
        main(["taskserv", "create", "demo", "--infra", "test-env", "--check", "-w", str(ws), "--path", str(ext)]) == 1
    )
    err = capsys.readouterr().err
    assert "templates/extra.conf.j2:2: 'api_key' is undefined" in err and "vars:" in err
    assert snapshot(ws) == before


def test_unknown_taskserv_and_unknown_infra(ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(PROJECT / "extensions" / "taskservs" / "redis", tmp_path / "extensions" / "taskservs" / "redis")
    assert main(["taskserv", "create", "rediss", "--infra", "test-env", "--check", "-w", str(ws)]) == 1
    err = capsys.readouterr().err
    assert "unknown taskserv rediss" in err and "did you mean redis" in err
    assert main(["taskserv", "create", "../../escape", "--infra", "test-env", "--check", "-w", str(ws)]) == 1
    assert "'../../escape' is not an extension name" in capsys.readouterr().err
    assert main(["taskserv", "create", "redis", "--infra", "prod", "--check", "-w", str(ws)]) == 1
    err = capsys.readouterr().err
    assert "no infra prod" in err and "infra/prod/settings.yaml does not exist" in err and "test-env" in err
    assert not (ws / "infra" / "test-env" / ".check").exists()


def test_without_check_only_a_local_provider_installs(ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_infra(ws, "provider: aws\nservers:\n  - {hostname: web-01}\n")
    before = snapshot(ws)
    ext = PROJECT / "extensions" / "taskservs" / "redis"
    assert create(ws, "redis", ext, "bad", check=False) == 1
    err = capsys.readouterr().err
    assert "infra bad uses provider aws" in err and "only a `local` provider installs here" in err
    assert "--check" in err and snapshot(ws) == before


def test_workspace_found_below_the_current_folder(ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The seed runs `taskserv create` beside the workspace `module load` named; the one with that infra is used."""
    shutil.copytree(PROJECT / "extensions" / "taskservs" / "redis", ws.parent / "extensions" / "taskservs" / "redis")
    plan = run_json(capsys, "taskserv", "create", "redis", "--infra", "test-env", "--check", "--source", "local")
    assert plan["workspace"] == str(ws) and plan["name"] == "redis"


def test_without_check_a_local_provider_runs_the_install(
    ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A harmless install.nu (it writes into its work dir) shows the real run: rendered files, then the script."""
    ext = generate_extension("taskserv", "demo", tmp_path / "src")
    (ext / "scripts" / "install.nu").write_text(
        "def main [--port: int = 0, --work-dir: path = '.', --dry-run] {\n"
        "    if $dry_run { print $'would run: touch ($work_dir)/installed' } else {\n"
        "        $'port ($port)' | save ($work_dir | path join installed); print 'demo installed'\n"
        "    }\n}\n"
    )
    plan = run_json(capsys, "taskserv", "create", "demo", "--infra", "test-env", "-w", str(ws), "--path", str(ext))
    assert plan["check"] is False and plan["installed"] is True and plan["notes"] == ["demo installed"]
    work = ws / "infra" / "test-env" / ".work" / "demo"
    assert (work / "installed").read_text() == "port 8080" and (work / "config.yaml").is_file()
    assert not (ws / "infra" / "test-env" / ".check").exists()


def test_a_failing_dry_run_leaves_nothing_behind(ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ext = generate_extension("taskserv", "demo", tmp_path / "src")
    (ext / "scripts" / "install.nu").write_text("def main [--dry-run] { error make {msg: 'no package manager'} }\n")
    before = snapshot(ws)
    assert create(ws, "demo", ext) == 1
    err = capsys.readouterr().err
    assert "scripts/install.nu --dry-run failed (exit 1)" in err and "no package manager" in err
    assert snapshot(ws) == before and not (ws / "infra" / "test-env" / ".check").exists()


def test_a_broken_extension_is_blamed(ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ext = generate_extension("taskserv", "demo", tmp_path / "src")
    kcl = ext / "kcl" / "demo.k"
    kcl.write_text(kcl.read_text().replace("port: int = 8080", 'port: int = "eighty"'))
    assert create(ws, "demo", ext) == 1
    err = capsys.readouterr().err
    assert "the extension's KCL does not evaluate" in err and "demo/kcl/demo.k:" in err
    assert "provisioning test extension" in err and "settings.yaml" not in err
