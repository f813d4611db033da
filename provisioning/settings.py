"""Which registry and namespace a command talks to, and how.

Resolution order, first answer wins: explicit values (command-line flags), the environment
(``PROVISIONING_REGISTRY``, ``PROVISIONING_NAMESPACE``), the workspace config
(``<workspace>/config/provisioning.yaml``), then the defaults ``localhost:5000`` /
``provisioning-extensions``. The workspace is ``--workspace`` or the current folder when it
has ``config/provisioning.yaml``. Only the few registry keys are read here; the full
workspace config has its own loader.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from . import paths
from .errors import ValidationError
from .oci.reference import DEFAULT_NAMESPACE, DEFAULT_REGISTRY, is_path_registry, layout_path

CONFIG_FILE = Path("config") / "provisioning.yaml"
DEFAULT_PLATFORM_NAMESPACE = "provisioning-platform"
ENV_REGISTRY = "PROVISIONING_REGISTRY"
ENV_NAMESPACE = "PROVISIONING_NAMESPACE"


@dataclass(frozen=True)
class RegistrySettings:
    """Where artifacts are published and fetched.

    ``registry`` is ``HOST[:PORT]`` or a filesystem path naming the embedded store;
    ``tls_enabled`` is None when nothing said (loopback registries then use plain HTTP);
    ``insecure`` skips TLS certificate verification (not the same as plain HTTP).
    """

    registry: str = DEFAULT_REGISTRY
    namespace: str = DEFAULT_NAMESPACE
    tls_enabled: bool | None = None
    ca_file: str | None = None
    insecure: bool = False
    auth_token_path: str | None = None
    cache_dir: Path = Path("~/.provisioning/oci-cache")
    platform_namespace: str = DEFAULT_PLATFORM_NAMESPACE
    workspace: Path | None = None


def find_workspace(workspace: str | os.PathLike[str] | None = None) -> Path | None:
    """``workspace`` when given (it must exist), else the current folder if it holds the config."""
    if workspace is not None:
        path = Path(workspace).expanduser()
        if not path.is_dir():
            raise ValidationError(f"workspace {str(path)!r} is not a folder: pass an existing --workspace PATH")
        return path
    cwd = Path.cwd()
    return cwd if (cwd / CONFIG_FILE).is_file() else None


def _load_config(workspace: Path) -> dict[str, Any]:
    path = workspace / CONFIG_FILE
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ValidationError(f"{path} is not valid YAML{where}: fix the file or pass --registry/--namespace") from exc
    except OSError as exc:
        raise ValidationError(f"cannot read {path}: {exc.strerror}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValidationError(f"{path} must hold a mapping at the top level, not {type(data).__name__}")
    return data


def _get(data: dict[str, Any], *keys: str) -> Any:
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


def _split_endpoint(endpoint: str) -> tuple[str, bool | None]:
    """``https://harbor.example/`` -> (``harbor.example``, True); a bare host keeps TLS undecided."""
    endpoint = endpoint.strip().rstrip("/")
    for scheme, tls in (("https://", True), ("http://", False)):
        if endpoint.startswith(scheme):
            return endpoint[len(scheme) :], tls
    if endpoint.startswith("oci://"):
        return endpoint[len("oci://") :], None
    return endpoint, None


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


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
    """Resolve the registry settings: explicit values, environment, workspace config, defaults."""
    ws = find_workspace(workspace)
    config = _load_config(ws) if ws else {}
    where = f"{ws / CONFIG_FILE}" if ws else ""
    ext = ("dependencies", "extensions", "oci")
    reg = ("dependencies", "registry", "oci")

    cfg_registry = _as_str(_get(config, *ext, "registry"), f"{where}: dependencies.extensions.oci.registry")
    cfg_endpoint = _as_str(_get(config, *reg, "endpoint"), f"{where}: dependencies.registry.oci.endpoint")
    cfg_tls = _first(
        _as_bool(_get(config, *ext, "tls_enabled"), f"{where}: dependencies.extensions.oci.tls_enabled"),
        _as_bool(_get(config, *reg, "tls_enabled"), f"{where}: dependencies.registry.oci.tls_enabled"),
    )
    config_registry, scheme_tls = None, None
    if cfg_registry or cfg_endpoint:
        config_registry, scheme_tls = _split_endpoint(cfg_registry or cfg_endpoint or "")
        if ws and is_path_registry(config_registry):  # a relative store path is relative to the workspace
            store = Path(layout_path(config_registry)).expanduser()
            config_registry = str(store if store.is_absolute() else ws / store)

    env_registry, env_tls = None, None
    if os.environ.get(ENV_REGISTRY, "").strip():
        env_registry, env_tls = _split_endpoint(os.environ[ENV_REGISTRY])
    explicit_tls = None
    if registry:
        registry, explicit_tls = _split_endpoint(registry)

    resolved_registry = registry or env_registry or config_registry or DEFAULT_REGISTRY
    if registry:
        tls = _first(tls_enabled, explicit_tls)
    elif env_registry:
        tls = _first(tls_enabled, env_tls)
    elif config_registry:
        tls = _first(tls_enabled, scheme_tls, cfg_tls)
    else:
        tls = tls_enabled

    resolved_namespace = (
        namespace
        or os.environ.get(ENV_NAMESPACE, "").strip()
        or _as_str(_get(config, *ext, "namespace"), f"{where}: dependencies.extensions.oci.namespace")
        or _as_str(_get(config, *reg, "namespaces", "extensions"), f"{where}: dependencies.registry.oci.namespaces")
        or DEFAULT_NAMESPACE
    ).strip("/")
    platform_ns = (
        _as_str(_get(config, *reg, "namespaces", "platform"), f"{where}: dependencies.registry.oci.namespaces")
        or _as_str(_get(config, "dependencies", "platform", "oci", "namespace"), f"{where}: platform namespace")
        or DEFAULT_PLATFORM_NAMESPACE
    )
    cfg_ca = _first(
        _as_str(_get(config, *ext, "ca_file"), f"{where}: dependencies.extensions.oci.ca_file"),
        _as_str(_get(config, *reg, "ca_file"), f"{where}: dependencies.registry.oci.ca_file"),
    )
    cfg_insecure = _first(
        _as_bool(_get(config, *ext, "insecure"), f"{where}: dependencies.extensions.oci.insecure"),
        _as_bool(_get(config, *reg, "insecure"), f"{where}: dependencies.registry.oci.insecure"),
    )
    cfg_token = _first(
        _as_str(_get(config, *ext, "auth_token_path"), f"{where}: dependencies.extensions.oci.auth_token_path"),
        _as_str(_get(config, *reg, "auth_token_path"), f"{where}: dependencies.registry.oci.auth_token_path"),
    )
    token_path = auth_token_path or cfg_token
    ca = ca_file or cfg_ca
    resolved_insecure = bool(insecure) if insecure is not None else bool(cfg_insecure)
    if tls is None and (ca or resolved_insecure):
        tls = True  # a CA file or skipping verification only make sense with TLS, loopback included
    return RegistrySettings(
        registry=resolved_registry,
        namespace=resolved_namespace,
        tls_enabled=tls,
        ca_file=str(Path(ca).expanduser()) if ca else None,
        insecure=resolved_insecure,
        auth_token_path=str(Path(token_path).expanduser()) if token_path else None,
        cache_dir=paths.cache_dir(),
        platform_namespace=platform_ns.strip("/"),
        workspace=ws,
    )
