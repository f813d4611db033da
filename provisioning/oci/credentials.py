"""Where registry credentials come from, in the order people expect.

For a host: explicit credentials; the file ``provisioning oci login`` writes
(``paths.auth_file()``); ``REGISTRY_AUTH_FILE`` or the containers ``auth.json`` (podman,
skopeo, buildah); docker's ``config.json`` (``auths``, ``credHelpers``, ``credsStore``);
then the workspace's ``auth_token_path`` file. Secrets never reach ``repr``, logs or
messages: only the username and where the credentials came from are ever shown.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import paths
from ..errors import AuthError, ProvisioningError
from .endpoint import strip_scheme

log = logging.getLogger(__name__)

HELPER_TIMEOUT = 30.0


@dataclass(frozen=True)
class Credentials:
    """One way to authenticate to one registry.

    ``username``/``password`` serve basic auth and the token service; ``identity_token`` is an
    OAuth2 refresh token (docker's ``identitytoken``) exchanged at the token service;
    ``registry_token`` is a bearer token sent to the registry as is. ``source`` says where they
    were found, so messages can tell the user which file to fix.
    """

    username: str = ""
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)
    registry_token: str = field(default="", repr=False)
    source: str = ""

    def __repr__(self) -> str:
        hidden = [n for n in ("password", "identity_token", "registry_token") if getattr(self, n)]
        secrets = ", ".join(f"{n}=<redacted>" for n in hidden)
        return f"Credentials(username={self.username!r}{', ' + secrets if secrets else ''}, source={self.source!r})"

    __str__ = __repr__

    @property
    def is_empty(self) -> bool:
        return not (self.username or self.password or self.identity_token or self.registry_token)

    def describe(self) -> str:
        """Who and from where, for messages (never the secret)."""
        who = f"user {self.username!r}" if self.username else "a token"
        return f"{who} from {self.source}" if self.source else who


def normalize_host(key: str) -> str:
    """``https://Host:5000/v1/`` -> ``host:5000``: how config files key a registry, made comparable."""
    return strip_scheme(key)[0].lower().split("/", 1)[0]


def _decode_entry(entry: dict[str, Any], source: str) -> Credentials | None:
    """One ``auths`` entry of docker/containers/our file (``auth`` is base64 ``user:password``)."""
    if not isinstance(entry, dict):
        return None
    username = str(entry.get("username") or "")
    password = str(entry.get("password") or "")
    if entry.get("auth"):
        try:
            decoded = base64.b64decode(str(entry["auth"]), validate=False).decode()
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise AuthError(f"the credentials for a registry in {source} are not valid base64 'user:password'") from exc
        username, sep, password = decoded.partition(":")
        if not sep:
            raise AuthError(f"the 'auth' value in {source} does not decode to 'user:password'")
    creds = Credentials(
        username=username,
        password=password,
        identity_token=str(entry.get("identitytoken") or ""),
        registry_token=str(entry.get("registrytoken") or ""),
        source=source,
    )
    return None if creds.is_empty else creds


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("cannot read credentials file %s: %s", path, exc.strerror)
        return None
    try:
        data = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        raise AuthError(f"{path} is not valid JSON (line {exc.lineno}): fix or remove the file") from exc
    if not isinstance(data, dict):
        raise AuthError(f"{path} must hold a JSON object")
    return data


def _find_entry(auths: Any, host: str) -> tuple[str, dict[str, Any]] | None:
    if not isinstance(auths, dict):
        return None
    want = normalize_host(host)
    for key, entry in auths.items():
        if normalize_host(key) == want:
            return key, entry
    return None


def _from_auths_file(path: Path, host: str) -> Credentials | None:
    data = _read_json(path)
    if not data:
        return None
    found = _find_entry(data.get("auths"), host)
    return _decode_entry(found[1], str(path)) if found else None


def _run_helper(helper: str, host: str, source: str) -> Credentials | None:
    """Ask ``docker-credential-<helper> get`` (host on stdin, JSON on stdout), as docker does."""
    program = f"docker-credential-{helper}"
    exe = shutil.which(program)
    if exe is None:
        log.warning("credential helper %s named in %s is not on PATH; skipping it", program, source)
        return None
    try:
        proc = subprocess.run(
            [exe, "get"], input=host, capture_output=True, text=True, timeout=HELPER_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise AuthError(
            f"credential helper {program} (from {source}) did not answer: {exc.__class__.__name__}"
        ) from exc
    if proc.returncode != 0:
        if "not found" in (proc.stdout + proc.stderr).lower():
            return None
        first_line = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[:1]
        raise AuthError(
            f"credential helper {program} (from {source}) failed for {host} with exit code {proc.returncode}"
            + (f": {first_line[0][:200]}" if first_line else "")
            + "; fix the helper or remove it from the docker config"
        )
    try:
        data = json.loads(proc.stdout)
        username, secret = str(data.get("Username") or ""), str(data.get("Secret") or "")
    except (json.JSONDecodeError, AttributeError) as exc:
        raise AuthError(f"credential helper {program} (from {source}) printed something that is not JSON") from exc
    where = f"{program} ({source})"
    if username == "<token>":  # docker's convention for an identity token
        return Credentials(identity_token=secret, source=where)
    creds = Credentials(username=username, password=secret, source=where)
    return None if creds.is_empty else creds


def _from_docker_config(path: Path, host: str) -> Credentials | None:
    data = _read_json(path)
    if not data:
        return None
    source = str(path)
    helpers = data.get("credHelpers") or {}
    found = _find_entry(helpers, host)
    if found:
        return _run_helper(str(found[1]), host, source)
    entry = _find_entry(data.get("auths"), host)
    if entry:
        creds = _decode_entry(entry[1], source)
        if creds:
            return creds
    if data.get("credsStore"):
        return _run_helper(str(data["credsStore"]), host, source)
    return None


def _from_token_file(path: Path) -> Credentials | None:
    """The workspace's ``auth_token_path``: ``user:password`` or a bearer token, one line."""
    try:
        text = path.expanduser().read_text(encoding="utf-8").strip()
    except FileNotFoundError as exc:
        raise AuthError(f"auth_token_path {path} does not exist: create it or remove the setting") from exc
    except OSError as exc:
        raise AuthError(f"cannot read auth_token_path {path}: {exc.strerror}") from exc
    if not text:
        return None
    if ":" in text and not any(c.isspace() for c in text):
        username, _, password = text.partition(":")
        return Credentials(username=username, password=password, source=f"auth_token_path {path}")
    return Credentials(registry_token=text, source=f"auth_token_path {path}")


def containers_auth_files(env: dict[str, str] | None = None) -> list[Path]:
    """``REGISTRY_AUTH_FILE``, else the containers ``auth.json`` locations podman reads."""
    env = os.environ if env is None else env
    if env.get("REGISTRY_AUTH_FILE"):
        return [Path(env["REGISTRY_AUTH_FILE"]).expanduser()]
    files = []
    if env.get("XDG_RUNTIME_DIR"):
        files.append(Path(env["XDG_RUNTIME_DIR"]) / "containers" / "auth.json")
    config_home = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else Path.home() / ".config"
    files.append(config_home / "containers" / "auth.json")
    return files


def docker_config_file(env: dict[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    base = Path(env["DOCKER_CONFIG"]).expanduser() if env.get("DOCKER_CONFIG") else Path.home() / ".docker"
    return base / "config.json"


def _sources(host: str, auth_token_path: str | os.PathLike[str] | None) -> Iterator[Credentials | None]:
    yield _from_auths_file(paths.auth_file(), host)
    for path in containers_auth_files():
        yield _from_auths_file(path, host)
    yield _from_docker_config(docker_config_file(), host)
    if auth_token_path:
        yield _from_token_file(Path(auth_token_path))


def lookup(
    host: str,
    *,
    explicit: Credentials | None = None,
    auth_token_path: str | os.PathLike[str] | None = None,
) -> Credentials | None:
    """The first credentials found for ``host``; None means anonymous."""
    if explicit is not None and not explicit.is_empty:
        return explicit
    for creds in _sources(host, auth_token_path):
        if creds is not None:
            log.debug("credentials for %s: %s", host, creds.describe())
            return creds
    log.debug("no credentials for %s: anonymous", host)
    return None


def _write_private_json(path: Path, data: dict[str, Any]) -> None:
    """Write atomically with mode 0600 from the start (never a moment world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _load_own_file() -> dict[str, Any]:
    data = _read_json(paths.auth_file()) or {}
    if not isinstance(data.get("auths"), dict):
        data["auths"] = {}
    return data


def store_login(host: str, username: str, password: str) -> Path:
    """Store credentials for ``host`` with mode 0600 (``remote.login`` checks them against the registry first)."""
    host = normalize_host(host)
    if not username or not password:
        raise AuthError(f"login to {host} needs a username and a password", host=host, kind="login_incomplete")
    data = _load_own_file()
    found = _find_entry(data["auths"], host)
    if found:
        del data["auths"][found[0]]
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    data["auths"][host] = {"auth": token}
    path = paths.auth_file()
    try:
        _write_private_json(path, data)
    except OSError as exc:
        raise ProvisioningError(f"cannot write {path}: {exc.strerror}; check PROVISIONING_HOME") from exc
    log.debug("stored credentials of user %r for %s in %s", username, host, path)
    return path


def logout(host: str) -> bool:
    """Remove stored credentials for ``host``; False when there were none."""
    path = paths.auth_file()
    if not path.exists():
        return False
    data = _load_own_file()
    found = _find_entry(data["auths"], host)
    if not found:
        return False
    del data["auths"][found[0]]
    _write_private_json(path, data)
    return True
