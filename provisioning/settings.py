"""Which registry and namespace a command talks to, and how: the one settings model.

``oci`` commands, ``dep`` commands and doit tasks all build a ``RegistrySettings`` with
``from_document`` (the workspace config already parsed) or ``registry_settings`` (which finds
and reads the config first). Resolution order, first answer wins: explicit values (flags, doit
variables), the environment (``PROVISIONING_REGISTRY``, ``PROVISIONING_NAMESPACE``), the
workspace config (``<workspace>/config/provisioning.yaml``), then the defaults
``localhost:5000`` / ``provisioning-extensions``. How to reach the registry (scheme, loopback,
CA file, insecure) is decided once, by ``oci.endpoint.parse_endpoint``, from what these say.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from .errors import ValidationError
from .oci.endpoint import Endpoint, parse_endpoint, strip_scheme
from .oci.reference import DEFAULT_NAMESPACE, DEFAULT_REGISTRY, is_path_registry, layout_path
from .yamlfile import safe_load

if TYPE_CHECKING:
    from .oci.store import Storage

CONFIG_FILE = Path("config") / "provisioning.yaml"
DEFAULT_PLATFORM_NAMESPACE = "provisioning-platform"
ENV_REGISTRY = "PROVISIONING_REGISTRY"
ENV_NAMESPACE = "PROVISIONING_NAMESPACE"


@dataclass(frozen=True)
class RegistrySettings:
    """Where artifacts are published and fetched, and how to talk to it.

    ``registry`` is ``HOST[:PORT]`` or an absolute filesystem path naming the embedded store;
    ``tls_enabled`` is None when nothing said (``parse_endpoint`` then decides); ``insecure``
    skips TLS certificate verification (not the same as plain HTTP); ``written`` keeps an
    embedded-store path as the config wrote it, so a lock records it the same on every machine.
    """

    registry: str = DEFAULT_REGISTRY
    namespace: str = DEFAULT_NAMESPACE
    tls_enabled: bool | None = None
    ca_file: str | None = None
    insecure: bool = False
    auth_token_path: str | None = None
    written: str | None = field(default=None, compare=False)

    @property
    def is_path(self) -> bool:
        return is_path_registry(self.registry)

    def endpoint(self) -> Endpoint:
        """How to reach the registry (not for an embedded store)."""
        return parse_endpoint(self.registry, tls=self.tls_enabled, ca_file=self.ca_file, insecure=self.insecure)

    def open(self) -> Storage:
        """The store these settings name: the embedded layout for a path, else the registry client."""
        from .oci.open import open_storage

        if self.is_path:
            return open_storage(self.registry)
        return open_storage(self.endpoint(), auth_token_path=self.auth_token_path)

    def portable(self, root: Path) -> str:
        """The registry as a lock or hash should record it: the same on every machine for the same config."""
        if not self.is_path:
            return self.registry
        return self.written or portable_registry(self.registry, root)

    def with_registry(self, registry: str | None, namespace: str | None) -> RegistrySettings:
        """Same transport settings for another namespace; another registry gets none of them."""
        if not registry and not namespace:
            return self
        if not registry or registry == self.registry:
            return replace(self, namespace=namespace or self.namespace)
        return RegistrySettings(registry=registry, namespace=namespace or self.namespace)

    def key(self, root: Path | None = None) -> dict[str, str]:
        """Registry and namespace, portable (see ``portable``) when ``root`` is given."""
        reg = self.portable(root) if root is not None else self.registry
        return {"registry": reg, "namespace": self.namespace}

    def reference(self, name: str, tag: str | None = None, digest: str | None = None) -> str:
        """How a lock or message names one artifact of this registry."""
        ref = f"{self.registry}/{self.namespace}/{name}"
        if not self.is_path:
            ref = "oci://" + ref
        if tag:
            ref += f":{tag}"
        if digest:
            ref += f"@{digest}"
        return ref


def portable_registry(registry: str, root: Path) -> str:
    """An embedded store inside the workspace is recorded relative to it (so it travels), others as is."""
    if not is_path_registry(registry):
        return registry
    p = Path(layout_path(registry))
    try:
        return "./" + p.relative_to(root).as_posix()
    except ValueError:
        return registry


def registry_path(value: str, base: Path | None = None) -> str:
    """A registry as written: a store path becomes absolute (relative to ``base``), a host loses its scheme."""
    if not is_path_registry(value):
        return strip_scheme(value)[0]
    p = Path(layout_path(value)).expanduser()
    if not p.is_absolute():
        p = (base or Path.cwd()) / p
    return str(p.resolve())


# --------------------------------------------------------------------------- reading the config


def find_workspace(workspace: str | os.PathLike[str] | None = None) -> Path | None:
    """``workspace`` when given (it must exist), else the current folder if it holds the config."""
    if workspace is not None:
        path = Path(workspace).expanduser()
        if not path.is_dir():
            raise ValidationError(f"workspace {str(path)!r} is not a folder: pass an existing --workspace PATH")
        return path
    cwd = Path.cwd()
    return cwd if (cwd / CONFIG_FILE).is_file() else None


def load_document(workspace: Path) -> dict[str, Any]:
    """The workspace config as a mapping (empty when there is none); only syntax is checked here."""
    path = workspace / CONFIG_FILE
    if not path.is_file():
        return {}
    try:
        data = safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else f" ({exc})"
        raise ValidationError(f"{path} is not valid YAML{where}: fix the file or pass --registry/--namespace") from None
    except OSError as exc:
        raise ValidationError(f"cannot read {path}: {exc.strerror}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValidationError(f"{path} must hold a mapping at the top level, not {type(data).__name__}")
    return data


def _get(data: Any, *keys: str) -> Any:
    node: Any = data
    for key in keys:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def _as_bool(value: Any, where: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "yes", "on", "1", "false", "no", "off", "0"):
        return value.strip().lower() in ("true", "yes", "on", "1")
    raise ValidationError(f"{where} must be true or false, not {value!r}")


def _as_str(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise ValidationError(f"{where} must be a string, not {type(value).__name__}")
    return str(value).strip() or None


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


class _Sections:
    """The two places a config names its registry: ``dependencies.extensions.oci`` and ``dependencies.registry.oci``."""

    def __init__(self, doc: Mapping[str, Any], where: str) -> None:
        self.doc, self.where = doc, where
        self.extensions = _get(doc, "dependencies", "extensions", "oci")
        self.registry = _get(_get(doc, "dependencies", "registry") or _get(doc, "registry"), "oci")

    def value(self, key: str, *, registry_key: str | None = None, kind: str = "str") -> Any:
        convert = _as_bool if kind == "bool" else _as_str
        first = convert(_get(self.extensions, key), self._at("extensions", key))
        second_key = registry_key or key
        return _first(first, convert(_get(self.registry, second_key), self._at("registry", second_key)))

    def _at(self, section: str, key: str) -> str:
        at = f"dependencies.{section}.oci.{key}"
        return f"{self.where}: {at}" if self.where else at


def from_document(
    doc: Mapping[str, Any],
    root: Path | None,
    *,
    registry: str | None = None,
    namespace: str | None = None,
    tls_enabled: bool | None = None,
    ca_file: str | None = None,
    insecure: bool | None = None,
    auth_token_path: str | None = None,
    env: Mapping[str, str] | None = None,
    where: str = "",
) -> RegistrySettings:
    """The settings from explicit values, the environment, a parsed workspace config, then defaults.

    A relative embedded-store path in the config is relative to the workspace ``root``; one given
    on the command line or in the environment is relative to the current folder.
    """
    env = os.environ if env is None else env
    cfg = _Sections(doc, where)
    written = None
    env_registry = (env.get(ENV_REGISTRY) or "").strip() or None
    config_registry = cfg.value("registry", registry_key="endpoint")
    if registry:
        chosen = registry
    elif env_registry:
        chosen = env_registry
    elif config_registry:
        chosen = config_registry
        if is_path_registry(config_registry):
            written = config_registry
    else:
        chosen = DEFAULT_REGISTRY
    base = root if (chosen == config_registry and not registry and not env_registry) else None
    scheme_tls = None if is_path_registry(chosen) else strip_scheme(chosen)[1]
    tls = _first(tls_enabled, scheme_tls, cfg.value("tls_enabled", kind="bool"))

    resolved_namespace = (
        namespace
        or (env.get(ENV_NAMESPACE) or "").strip()
        or cfg.value("namespace")
        or _as_str(_get(cfg.registry, "namespaces", "extensions"), f"{where}: namespaces.extensions")
        or DEFAULT_NAMESPACE
    )
    ca = ca_file or cfg.value("ca_file")
    token = auth_token_path or cfg.value("auth_token_path")
    resolved_insecure = bool(insecure) if insecure is not None else bool(cfg.value("insecure", kind="bool"))
    return RegistrySettings(
        registry=registry_path(chosen, base),
        namespace=resolved_namespace.strip("/"),
        tls_enabled=tls,
        ca_file=str(Path(ca).expanduser()) if ca else None,
        insecure=resolved_insecure,
        auth_token_path=str(Path(token).expanduser()) if token else None,
        written=written,
    )


def platform_namespace(doc: Mapping[str, Any]) -> str:
    """Where the platform's service images live (``dependencies.registry.oci.namespaces.platform``)."""
    value = _get(doc, "dependencies", "registry", "oci", "namespaces", "platform") or _get(
        doc, "dependencies", "platform", "oci", "namespace"
    )
    return (str(value) if value else DEFAULT_PLATFORM_NAMESPACE).strip("/")


def registry_settings(
    *,
    registry: str | None = None,
    namespace: str | None = None,
    workspace: str | os.PathLike[str] | None = None,
    tls_enabled: bool | None = None,
    ca_file: str | None = None,
    insecure: bool | None = None,
    auth_token_path: str | None = None,
) -> RegistrySettings:
    """Find the workspace (``workspace`` or the current folder), read its config, resolve the settings."""
    ws = find_workspace(workspace)
    doc = load_document(ws) if ws else {}
    return from_document(
        doc,
        ws.resolve() if ws else None,
        registry=registry,
        namespace=namespace,
        tls_enabled=tls_enabled,
        ca_file=ca_file,
        insecure=insecure,
        auth_token_path=auth_token_path,
        where=str(ws / CONFIG_FILE) if ws else "",
    )
