"""Every ``provisioning oci`` command end to end, through ``main([...])``, against a real registry.

The session's ``registry`` fixture is plain-HTTP docker-registry on 127.0.0.1; each test works
in its own namespace so tests do not see each other's artifacts.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import stat
import sys
import tarfile
import uuid
from pathlib import Path

import pytest
from registry_server import free_port

from provisioning.cli import main
from provisioning.settings import registry_settings

needs_remote = pytest.mark.skipif(
    importlib.util.find_spec("provisioning.oci.open") is None, reason="provisioning.oci.open is not built yet"
)


def make_extension(root: Path, name: str = "redis", version: str = "1.0.0", note: str = "") -> Path:
    """A small valid taskserv extension under ``root/taskservs/<name>``."""
    ext = root / "taskservs" / name
    for sub in ("kcl", "scripts", "templates", "docs", "tests"):
        (ext / sub).mkdir(parents=True, exist_ok=True)
    (ext / "manifest.yaml").write_text(
        f"name: {name}\ntype: taskserv\nversion: {version}\ndescription: {name} in-memory data store\n"
        "license: MIT\nauthor: Platform Team\n"
    )
    (ext / "kcl" / "kcl.mod").write_text(f'[package]\nname = "{name}"\nedition = "v0.11.0"\nversion = "{version}"\n')
    (ext / "kcl" / f"{name}.k").write_text(
        f'schema Settings:\n    version: str = "{version}"\n    port: int = 6379\n\nsettings = Settings {{}}\n'
    )
    for script in ("install", "check", "uninstall"):
        (ext / "scripts" / f"{script}.nu").write_text(f'def main [] {{\n    print "{script} {name}"\n}}\n')
    (ext / "docs" / "README.md").write_text(f"# {name}\n{note}\n")
    (ext / "templates" / f"{name}.conf.j2").write_text("port {{ port }}\n")
    (ext / "tests" / "test.nu").write_text("print ok\n")
    return ext


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated home and working folder: no stored credentials, no ambient registry settings."""
    monkeypatch.setenv("PROVISIONING_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    # (not REGISTRY_AUTH_FILE: docker-registry reads REGISTRY_* variables as its own config)
    monkeypatch.delenv("REGISTRY_AUTH_FILE", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "xdg-run"))
    monkeypatch.delenv("PROVISIONING_REGISTRY", raising=False)
    monkeypatch.delenv("PROVISIONING_NAMESPACE", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # not a terminal
    return tmp_path


@pytest.fixture
def ns() -> str:
    return f"t{uuid.uuid4().hex[:10]}/extensions"


class Cli:
    """Runs ``provisioning oci …`` with --registry/--namespace and captures the output."""

    def __init__(self, capsys: pytest.CaptureFixture[str], registry: str, namespace: str) -> None:
        self.capsys, self.registry, self.namespace = capsys, registry, namespace

    def __call__(self, *argv: str, stdin: str | None = None, raw: bool = False) -> tuple[int, str, str]:
        if stdin is not None:
            sys.stdin = io.StringIO(stdin)
        extra = []
        if not raw:
            extra += [] if "--registry" in argv else ["--registry", self.registry]
            extra += [] if "--namespace" in argv else ["--namespace", self.namespace]
        self.capsys.readouterr()
        code = main(["oci", *argv, *extra])
        out, err = self.capsys.readouterr()
        assert "Traceback" not in err
        return code, out, err

    def json(self, *argv: str) -> object:
        code, out, err = self(*argv, "--output", "json")
        assert code == 0, err
        return json.loads(out)


@pytest.fixture
def cli(env: Path, registry, ns: str, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(capsys, registry.host, ns)


@pytest.fixture
def published(cli: Cli, env: Path) -> Cli:
    """redis 1.0.0 and 1.1.0 and etcd 3.5.0 pushed with ``oci push``."""
    for name, version in (("redis", "1.0.0"), ("redis", "1.1.0"), ("etcd", "3.5.0")):
        code, out, err = cli("push", str(make_extension(env / f"src-{version}", name, version)), name, version)
        assert code == 0, err
        assert "published" in out
    return cli


@needs_remote
def test_push_then_tags_table_and_json(published: Cli) -> None:
    cli = published
    code, out, _ = cli("tags", "redis")
    assert code == 0
    lines = [line for line in out.splitlines() if "│" in line]
    assert [c.strip() for c in lines[0].strip("│").split("│")] == ["artifact", "version", "reference"]
    ref = f"{cli.registry}/{cli.namespace}/redis"
    assert [c.strip() for c in lines[1].strip("│").split("│")] == ["redis", "1.0.0", f"{ref}:1.0.0"]
    assert [c.strip() for c in lines[2].strip("│").split("│")] == ["redis", "1.1.0", f"{ref}:1.1.0"]
    assert out.lstrip().startswith("┌")

    rows = cli.json("tags", "redis")
    assert rows == [
        {"artifact": "redis", "version": "1.0.0", "tag": "1.0.0", "reference": f"{ref}:1.0.0"},
        {"artifact": "redis", "version": "1.1.0", "tag": "1.1.0", "reference": f"{ref}:1.1.0"},
    ]
    # a full reference works wherever a name does, with or without oci://
    assert cli.json("tags", f"oci://{ref}") == rows


@needs_remote
def test_push_is_idempotent_and_versions_are_immutable(cli: Cli, env: Path) -> None:
    ext = make_extension(env / "a", "redis", "2.0.0")
    assert cli("push", str(ext), "redis", "2.0.0")[0] == 0
    code, out, _ = cli("push", str(ext), "redis", "2.0.0")
    assert code == 0 and "unchanged" in out

    changed = make_extension(env / "b", "redis", "2.0.0", note="changed docs")
    code, _, err = cli("push", str(changed), "redis", "2.0.0")
    assert code == 1
    assert "already published with different content" in err and "--force" in err
    data = cli.json("push", str(changed), "redis", "2.0.0", "--force")
    assert data["status"] == "published"
    assert cli.json("inspect", "redis:2.0.0")["digest"] == data["digest"]


@needs_remote
def test_push_checks_name_and_version_against_the_manifest(cli: Cli, env: Path) -> None:
    ext = make_extension(env, "redis", "1.0.0")
    code, _, err = cli("push", str(ext), "valkey", "1.0.0")
    assert code == 1 and "'redis'" in err and "'valkey'" in err
    code, _, err = cli("push", str(ext), "redis", "1.0.1")
    assert code == 1 and "version 1.0.0" in err
    # NAME and VERSION default to the manifest's; a full reference names the registry
    data = cli.json("push", str(ext), f"{cli.registry}/{cli.namespace}/redis")
    assert data["reference"] == f"{cli.registry}/{cli.namespace}/redis:1.0.0"


@needs_remote
def test_push_of_an_invalid_extension_fails_with_the_problems(cli: Cli, env: Path) -> None:
    ext = make_extension(env, "redis", "1.0.0")
    (ext / "manifest.yaml").write_text("name: redis\ntype: taskserv\nversion: one\ndescription: x\n")
    code, _, err = cli("push", str(ext), "redis", "1.0.0")
    assert code == 1 and "version" in err


@needs_remote
def test_list_and_search(published: Cli) -> None:
    cli = published
    code, out, _ = cli("list")
    assert code == 0
    assert "artifact" in out and "latest" in out
    assert f"{cli.registry}/{cli.namespace}/redis:1.1.0" in out
    assert f"{cli.registry}/{cli.namespace}/etcd:3.5.0" in out
    rows = cli.json("list")
    assert [(r["artifact"], r["versions"], r["latest"]) for r in rows] == [
        ("etcd", ["3.5.0"], "3.5.0"),
        ("redis", ["1.0.0", "1.1.0"], "1.1.0"),
    ]

    code, out, _ = cli("search", "red")
    assert code == 0
    assert "redis in-memory data store" in out and "taskserv" in out and "etcd" not in out
    found = cli.json("search", "RED")
    assert [(f["artifact"], f["version"], f["type"], f["description"]) for f in found] == [
        ("redis", "1.1.0", "taskserv", "redis in-memory data store")
    ]
    assert cli.json("search", "nothing-like-this") == []

    # another namespace sees nothing
    assert cli.json("list", "--namespace", "t-empty/extensions") == []


@needs_remote
def test_inspect_shows_manifest_config_annotations_size_and_digest(published: Cli) -> None:
    cli = published
    info = cli.json("inspect", "redis:1.1.0")
    assert info["digest"].startswith("sha256:")
    assert info["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert info["artifactType"] == "application/vnd.provisioning.extension.v1"
    assert info["config"]["name"] == "redis" and info["config"]["version"] == "1.1.0"
    assert info["annotations"]["org.opencontainers.image.version"] == "1.1.0"
    assert info["annotations"]["org.opencontainers.image.description"] == "redis in-memory data store"
    layer = info["layers"][0]
    assert layer["mediaType"] == "application/vnd.provisioning.extension.content.v1.tar+gzip"
    assert info["size"] == info["manifestSize"] + layer["size"] + info["manifest"]["config"]["size"]

    code, out, _ = cli("inspect", "redis:1.1.0")
    assert code == 0
    assert info["digest"] in out and "config.version" in out and "org.opencontainers.image.version" in out
    # by digest too
    assert cli.json("inspect", f"redis@{info['digest']}")["digest"] == info["digest"]


@needs_remote
def test_pull_extracts_into_name_folder(published: Cli, env: Path) -> None:
    cli = published
    code, out, _ = cli("pull", "redis:1.1.0")
    assert code == 0 and "pulled" in out
    dest = env / "redis"
    assert "version: 1.1.0" in (dest / "manifest.yaml").read_text()
    assert (dest / "kcl" / "redis.k").is_file() and (dest / "scripts" / "install.nu").is_file()
    assert (dest / "oci-manifest.json").is_file()
    assert not (dest / "tests").exists()  # tests are not packaged
    assert not [p for p in env.iterdir() if p.name.startswith(".redis.pull-")]  # no leftovers

    code, _, err = cli("pull", "redis:1.1.0")
    assert code == 1 and "already exists" in err
    data = cli.json("pull", "redis:1.0.0", "--force")
    assert data["dest"] == str(dest) and data["files"] >= 6
    assert "version: 1.0.0" in (dest / "manifest.yaml").read_text()

    data = cli.json("pull", f"{cli.registry}/{cli.namespace}/etcd:3.5.0", "--dest", str(env / "deps" / "etcd"))
    assert (env / "deps" / "etcd" / "manifest.yaml").is_file()


@needs_remote
def test_unknown_tag_name_and_invalid_reference_exit_1(published: Cli) -> None:
    cli = published
    code, _, err = cli("pull", "redis:9.9.9")
    assert code == 1 and "not found" in err and "oci tags redis" in err
    code, _, err = cli("inspect", "redis:9.9.9")
    assert code == 1 and "9.9.9" in err
    code, _, err = cli("tags", "nosuchthing")
    assert code == 1 and "no versions of nosuchthing" in err
    code, _, err = cli("inspect", "Redis:1.0.0")
    assert code == 1 and "lowercase" in err
    code, _, err = cli("pull", "redis:bad tag")
    assert code == 1 and "invalid tag" in err
    code, _, err = cli("pull", "redis@sha256:1234")
    assert code == 1 and "digest" in err
    code, _, err = cli("inspect", "redis")
    assert code == 1 and "names no version" in err


@needs_remote
def test_unreachable_registry_is_a_clear_error(cli: Cli) -> None:
    code, _, err = cli("tags", "redis", "--registry", f"127.0.0.1:{free_port()}", raw=True)
    assert code == 1
    assert err.startswith("error:") and "127.0.0.1" in err


@needs_remote
def test_delete_asks_and_refuses_without_yes_when_not_a_terminal(published: Cli) -> None:
    cli = published
    code, _, err = cli("delete", "redis:1.0.0")
    assert code == 1
    assert "not a terminal" in err and "--yes" in err
    assert [r["version"] for r in cli.json("tags", "redis")] == ["1.0.0", "1.1.0"]

    code, out, _ = cli("delete", "redis:1.0.0", "--yes")
    assert code == 0 and "deleted" in out
    assert [r["version"] for r in cli.json("tags", "redis")] == ["1.1.0"]
    code, _, err = cli("delete", "redis:1.0.0", "--yes")
    assert code == 1 and "not found" in err


@needs_remote
def test_delete_on_a_terminal_asks(published: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    cli = published

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdin", Tty("n\n"))
    code, out, _ = cli("delete", "etcd:3.5.0")
    assert code == 1 and "not deleted" in out
    monkeypatch.setattr(sys, "stdin", Tty("y\n"))
    code, out, _ = cli("delete", "etcd:3.5.0")
    assert code == 0 and "deleted" in out


@needs_remote
def test_copy_registry_to_layout_to_registry(published: Cli, env: Path, fresh_registry) -> None:
    cli = published
    src = f"{cli.registry}/{cli.namespace}/redis:1.1.0"
    digest = cli.json("inspect", src)["digest"]

    store = env / "store"
    data = cli.json("copy", src, f"oci-layout:{store}")
    assert data["digest"] == digest and data["copied"] == 3
    layout = store / cli.namespace / "redis"
    assert (layout / "oci-layout").is_file() and (layout / "index.json").is_file()
    assert cli.json("inspect", f"oci-layout:{layout}:1.1.0")["digest"] == digest
    # copying again moves nothing
    code, out, _ = cli("copy", src, f"oci-layout:{store}")
    assert code == 0 and "up to date" in out

    # layout -> another registry (bare host keeps repository and tag)
    other = fresh_registry.host
    code, out, _ = cli("copy", f"oci-layout:{layout}:1.1.0", other)
    assert code == 0 and "copied" in out
    assert cli.json("inspect", f"{other}/{cli.namespace}/redis:1.1.0")["digest"] == digest

    # registry -> registry under a new name and tag, and the same registry (blob mount)
    dst = f"{other}/mirror/redis:stable"
    assert cli.json("copy", src, dst)["digest"] == digest
    assert cli.json("inspect", dst)["digest"] == digest
    data = cli.json("copy", src, f"{cli.registry}/mirror-{cli.namespace}/redis")
    assert data["destination"].endswith("/redis:1.1.0")
    assert cli.json("tags", f"{cli.registry}/mirror-{cli.namespace}/redis")[0]["version"] == "1.1.0"

    # what came back through the layout pulls and extracts
    assert cli("pull", dst, "--dest", str(env / "back"))[0] == 0
    assert "version: 1.1.0" in (env / "back" / "manifest.yaml").read_text()


@needs_remote
def test_embedded_store_as_registry(cli: Cli, env: Path) -> None:
    store = env / "embedded"
    ext = make_extension(env / "src", "redis", "1.0.0")
    code, out, err = cli("push", str(ext), "redis", "1.0.0", "--registry", f"oci-layout:{store}", raw=True)
    assert code == 0, err
    assert (store / "provisioning-extensions" / "redis" / "index.json").is_file()
    code, out, _ = cli("tags", "redis", "--registry", str(store), raw=True)
    assert code == 0 and f"{store}/provisioning-extensions/redis:1.0.0" in out


@needs_remote
def test_login_logout_never_print_the_password(cli: Cli, env: Path) -> None:
    secret = "s3cret-Passw0rd"
    code, out, err = cli("login", cli.registry, "--username", "ci-bot", "--password-stdin", stdin=secret + "\n")
    assert code == 0, err
    assert "Login succeeded" in out and secret not in out + err
    auth = env / "home" / "auth.json"
    assert stat.S_IMODE(auth.stat().st_mode) == 0o600
    assert secret not in auth.read_text()  # base64 in the file, as docker does

    code, out, err = cli("login", cli.registry, "--username", "ci-bot", "--password", secret)
    assert code == 0 and "WARNING" in err and "--password-stdin" in err and secret not in out + err

    code, _, err = cli("login", cli.registry, "--username", "ci-bot")
    assert code == 2 and "--password-stdin" in err

    code, out, _ = cli("logout", cli.registry)
    assert code == 0 and "Removed" in out
    assert "ci-bot" not in auth.read_text()
    code, out, _ = cli("logout", cli.registry)
    assert code == 0 and "not logged in" in out


def test_config_prints_the_seed_shape(cli: Cli, env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = cli("config", raw=True)
    data = json.loads(out)
    assert data["registry"] == "localhost:5000" and data["tls_enabled"] is False
    assert data["namespace"] == {"extensions": "provisioning-extensions", "platform": "provisioning-platform"}
    assert data["cache_dir"] == str(env / "home" / "oci-cache")
    assert data["tool"] == "provisioning"

    (env / "config").mkdir()
    (env / "config" / "provisioning.yaml").write_text(
        "dependencies:\n"
        "  registry:\n"
        "    type: oci\n"
        "    oci:\n"
        "      endpoint: https://harbor.example.test\n"
        "      namespaces: {extensions: provisioning/extensions, platform: provisioning/platform}\n"
    )
    data = json.loads(cli("config", raw=True)[1])
    assert data["registry"] == "harbor.example.test" and data["tls_enabled"] is True
    assert data["namespace"] == {"extensions": "provisioning/extensions", "platform": "provisioning/platform"}
    assert data["workspace"] == str(env)

    monkeypatch.setenv("PROVISIONING_REGISTRY", "registry.example.test:5443")
    assert json.loads(cli("config", raw=True)[1])["registry"] == "registry.example.test:5443"
    data = json.loads(cli("config", "--registry", "localhost:5001", "--namespace", "mine", raw=True)[1])
    assert data["registry"] == "localhost:5001" and data["namespace"]["extensions"] == "mine"


def test_settings_resolution_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROVISIONING_REGISTRY", raising=False)
    monkeypatch.delenv("PROVISIONING_NAMESPACE", raising=False)
    monkeypatch.chdir(tmp_path)
    assert registry_settings().registry == "localhost:5000"
    ws = tmp_path / "ws"
    (ws / "config").mkdir(parents=True)
    (ws / "config" / "provisioning.yaml").write_text(
        "dependencies:\n"
        "  extensions:\n"
        "    oci: {registry: 'localhost:5000', namespace: team-ext, tls_enabled: false,\n"
        "          auth_token_path: '~/.provisioning/tokens/oci'}\n"
        "  registry:\n"
        "    oci: {endpoint: 'https://harbor.example.test', namespaces: {extensions: other}}\n"
    )
    s = registry_settings(workspace=ws)
    assert (s.registry, s.namespace, s.tls_enabled) == ("localhost:5000", "team-ext", False)
    assert s.auth_token_path == str(Path("~/.provisioning/tokens/oci").expanduser())
    monkeypatch.setenv("PROVISIONING_NAMESPACE", "from-env")
    assert registry_settings(workspace=ws).namespace == "from-env"
    assert registry_settings(workspace=ws, namespace="flag").namespace == "flag"
    (ws / "config" / "provisioning.yaml").write_text("dependencies: [unclosed\n")
    code = main(["oci", "config", "--workspace", str(ws)])
    assert code == 1


def test_package_and_package_validate(cli: Cli, env: Path) -> None:
    ext = make_extension(env / "src", "redis", "1.0.0")
    code, out, err = cli("package", "validate", str(ext), raw=True)
    assert code == 0, err
    assert "valid" in out and "redis" in out
    assert cli.json("package", "validate", str(ext))["version"] == "1.0.0"

    code, out, err = cli("package", str(ext), "--output", str(env / "dist"), raw=True)
    assert code == 0, err
    tarball = env / "dist" / "redis-1.0.0.tar.gz"
    assert tarball.is_file() and "redis-1.0.0.tar.gz" in out
    with tarfile.open(tarball) as tar:
        names = tar.getnames()
    assert "manifest.yaml" in names and "oci-manifest.json" in names and not any(n.startswith("tests") for n in names)

    (ext / "docs" / "README.md").unlink()
    code, _, err = cli("package", "validate", str(ext), raw=True)
    assert code == 1 and "README.md" in err


def test_pull_refuses_unsafe_archives(tmp_path: Path) -> None:
    from provisioning.archive import safe_extract as extract
    from provisioning.errors import UnsafeArchive

    def archive(build) -> Path:
        path = tmp_path / f"{uuid.uuid4().hex}.tar.gz"
        with tarfile.open(path, "w:gz") as tar:
            build(tar)
        return path

    def add(tar: tarfile.TarFile, name: str, data: bytes = b"x", kind: bytes = tarfile.REGTYPE) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.type = (len(data), kind) if kind == tarfile.REGTYPE else (0, kind)
        if kind == tarfile.SYMTYPE:
            info.linkname = "/etc/passwd"
        tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)

    for bad in ("../evil", "/abs/evil", "a/../../evil"):
        with pytest.raises(UnsafeArchive, match="absolute path|climbs out"):
            extract(archive(lambda t, b=bad: add(t, b)), tmp_path / uuid.uuid4().hex, what="layer")
    with pytest.raises(UnsafeArchive, match="symlink .* is absolute"):
        extract(archive(lambda t: add(t, "link", kind=tarfile.SYMTYPE)), tmp_path / uuid.uuid4().hex, what="layer")
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(b"not a tarball")
    with pytest.raises(UnsafeArchive, match="not a readable"):
        extract(broken, tmp_path / "out", what="layer")
    good = archive(lambda t: (add(t, "scripts/install.nu", b"print 1"), add(t, "manifest.yaml", b"name: x")))
    assert extract(good, tmp_path / "good", what="layer") == 2
    assert os.access(tmp_path / "good" / "scripts" / "install.nu", os.R_OK)


def test_usage_errors_exit_2(env: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["oci", "tags"])
    assert exc.value.code == 2
    assert main(["oci"]) == 2


# ---------------------------------------------------------------------------------------------- auth modes


@needs_remote
def test_tls_registry_with_basic_auth(env: Path, tls_registry, certificates, capsys) -> None:
    from conftest import BASIC_USERS

    host, ca = tls_registry.host, str(certificates.ca_cert)
    cli = Cli(capsys, host, f"t{uuid.uuid4().hex[:8]}/extensions")
    password = BASIC_USERS["alice"]

    # the CA is needed; the message says which flag fixes what
    code, _, err = cli("login", host, "--username", "alice", "--password-stdin", stdin=password)
    assert code == 1 and "HTTPS" in err and password not in err  # loopback: plain HTTP unless told
    code, _, err = cli("login", f"https://{host}", "-u", "alice", "--password-stdin", stdin=password)
    assert code == 1 and "--ca-file" in err and password not in err
    code, _, err = cli("login", host, "--username", "alice", "--password-stdin", "--ca-file", ca, stdin="wrong")
    assert code == 1 and "alice" in err and "wrong" not in err
    code, out, err = cli("login", host, "--username", "alice", "--password-stdin", "--ca-file", ca, stdin=password)
    assert code == 0, err
    assert password not in out + err

    ext = make_extension(env / "src", "redis", "1.0.0")
    code, out, err = cli("push", str(ext), "redis", "1.0.0", "--ca-file", ca)
    assert code == 0, err
    assert cli.json("tags", "redis", "--ca-file", ca)[0]["version"] == "1.0.0"
    assert cli.json("tags", "redis", "--insecure")[0]["version"] == "1.0.0"  # TLS without verification
    code, _, err = cli("pull", "redis:1.0.0", "--ca-file", ca, "--dest", str(env / "pulled"))
    assert code == 0, err
    assert (env / "pulled" / "manifest.yaml").is_file()
    code, _, err = cli("tags", "redis", "--plain-http", "--ca-file", ca)
    assert code == 1 and "Traceback" not in err
    assert cli("delete", "redis:1.0.0", "--yes", "--ca-file", ca)[0] == 0

    assert cli("logout", host)[0] == 0
    code, _, err = cli("tags", "redis", "--ca-file", ca)
    assert code == 1 and ("login" in err or "credentials" in err) and password not in err


@needs_remote
def test_token_registry_login_push_pull_and_permissions(env: Path, token_registry, tokens, capsys) -> None:
    from conftest import TOKEN_USERS

    host = token_registry.host
    cli = Cli(capsys, host, f"t{uuid.uuid4().hex[:8]}/extensions")
    code, _, err = cli("tags", "redis")
    assert code == 1 and "Traceback" not in err  # anonymous: not allowed

    code, out, err = cli("login", host, "-u", "alice", "--password-stdin", stdin=TOKEN_USERS["alice"])
    assert code == 0, err
    ext = make_extension(env / "src", "redis", "1.0.0")
    assert cli("push", str(ext), "redis", "1.0.0")[0] == 0
    assert cli.json("tags", "redis")[0]["reference"] == f"{host}/{cli.namespace}/redis:1.0.0"
    assert cli.json("inspect", "redis:1.0.0")["config"]["name"] == "redis"
    assert cli("pull", "redis:1.0.0", "--dest", str(env / "pulled"))[0] == 0

    # a read-only user can pull but not push or delete
    code, _, err = cli("login", host, "-u", "reader", "--password-stdin", stdin=TOKEN_USERS["reader"])
    assert code == 0, err
    assert cli.json("tags", "redis")[0]["version"] == "1.0.0"
    code, _, err = cli("push", str(make_extension(env / "v2", "redis", "1.0.1")), "redis", "1.0.1")
    assert code == 1 and "Traceback" not in err
    code, _, err = cli("delete", "redis:1.0.0", "--yes")
    assert code == 1

    all_output = capsys.readouterr()
    for secret in list(TOKEN_USERS.values()) + tokens.tokens:
        assert secret not in all_output.out + all_output.err


@needs_remote
def test_list_where_the_catalog_is_forbidden_says_so(env: Path, token_registry, tokens, capsys) -> None:
    from conftest import TOKEN_USERS

    cli = Cli(capsys, token_registry.host, "public")
    password = TOKEN_USERS["stranger"]
    code, _, err = cli("login", token_registry.host, "-u", "stranger", "--password-stdin", stdin=password)
    assert code == 0, err
    for command in (("list",), ("search", "hello")):
        code, out, err = cli(*command)
        assert code == 1
        assert "does not allow listing its repositories" in err and "oci tags NAME" in err
        assert TOKEN_USERS["stranger"] not in out + err


@needs_remote
def test_interop_skopeo_reads_our_copy_and_we_pull_what_oras_pushed(published: Cli, env: Path) -> None:
    import shutil
    import subprocess

    import oras.client

    from provisioning.oci.descriptor import LAYER_TYPE

    cli = published
    # our embedded store is an OCI image layout skopeo reads
    if shutil.which("skopeo"):
        assert cli("copy", "redis:1.1.0", f"oci-layout:{env / 'store'}")[0] == 0
        layout = env / "store" / cli.namespace / "redis"
        proc = subprocess.run(
            ["skopeo", "inspect", "--raw", f"oci:{layout}:1.1.0"], capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["artifactType"] == "application/vnd.provisioning.extension.v1"

    # oras-py pushes a tarball with our layer media type: `oci pull` extracts it, `oci inspect` reads it
    tarball = env / "hello.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        data = b"name: hello\n"
        info = tarfile.TarInfo("manifest.yaml")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    client = oras.client.OrasClient(hostname=cli.registry, insecure=True)
    client.push(
        target=f"{cli.registry}/{cli.namespace}/hello:0.1.0",
        files=[f"{tarball}:{LAYER_TYPE}"],
        disable_path_validation=True,
        quiet=True,
    )
    assert cli.json("inspect", "hello:0.1.0")["layers"][0]["mediaType"] == LAYER_TYPE
    code, _, err = cli("pull", "hello:0.1.0", "--dest", str(env / "hello"))
    assert code == 0, err
    assert (env / "hello" / "manifest.yaml").read_text() == "name: hello\n"

    # a plain file artifact is not an extension: said plainly
    (env / "notes.txt").write_text("hi\n")
    client.push(
        target=f"{cli.registry}/{cli.namespace}/notes:1.0.0",
        files=[f"{env / 'notes.txt'}:text/plain"],
        disable_path_validation=True,
        quiet=True,
    )
    code, _, err = cli("pull", "notes:1.0.0")
    assert code == 1 and "not an extension artifact" in err and "text/plain" in err


@needs_remote
def test_pull_of_corrupt_content_leaves_nothing_behind(env: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    import provisioning.cli.oci.transfer as oci_cli

    store = env / "embedded"
    cli = Cli(capsys, str(store), "provisioning-extensions")
    assert cli("push", str(make_extension(env / "src", "redis", "1.0.0")))[0] == 0
    info = cli.json("inspect", "redis:1.0.0")
    layer = store / "provisioning-extensions" / "redis" / "blobs" / "sha256" / info["layers"][0]["digest"][7:]

    monkeypatch.setattr(oci_cli, "_MEMORY_LIMIT", 0)  # the large-layer path: spooled to a temp file
    assert cli("pull", "redis:1.0.0", "--dest", str(env / "ok"))[0] == 0
    assert (env / "ok" / "manifest.yaml").is_file()

    layer.chmod(0o644)
    layer.write_bytes(layer.read_bytes()[:-10] + b"0123456789")
    for limit in (0, 16 << 20):
        monkeypatch.setattr(oci_cli, "_MEMORY_LIMIT", limit)
        code, _, err = cli("pull", "redis:1.0.0", "--dest", str(env / "bad"))
        assert code == 1 and "does not match" in err
        assert not (env / "bad").exists()
        assert not [p for p in env.iterdir() if p.name.startswith(".bad.")]
    # a failed pull over an existing folder keeps the old content
    code, _, _ = cli("pull", "redis:1.0.0", "--dest", str(env / "ok"), "--force")
    assert code == 1 and (env / "ok" / "manifest.yaml").is_file()
