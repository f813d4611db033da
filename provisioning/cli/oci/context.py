"""From the registry flags to stores: the settings of one command, references, the manifest a reference names."""

from __future__ import annotations

import argparse
import json
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ...errors import NotFound, RegistryError
from ...oci.descriptor import Descriptor, InvalidContent, parse_manifest
from ...oci.reference import (
    InvalidReference,
    Reference,
    is_path_registry,
    layout_path,
    parse_reference,
    tag_for_version,
    validate_repository,
)
from ...settings import RegistrySettings, registry_settings


@dataclass
class Context:
    """Settings resolved once per command, and the stores it opened.

    The configured registry gets every setting (TLS, CA, token file); another registry named by a
    full reference gets only what the command line says, so a workspace's token never goes to it.
    """

    settings: RegistrySettings
    plain_http: bool | None = None
    ca_file: str | None = None
    insecure: bool = False
    _stores: dict[tuple[str, bool | None], Any] = field(default_factory=dict)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Context:
        ca_file = getattr(args, "ca_file", None)
        insecure = bool(getattr(args, "insecure", False))
        settings = registry_settings(
            registry=getattr(args, "registry", None),
            namespace=getattr(args, "namespace", None),
            workspace=getattr(args, "workspace", None),
            ca_file=ca_file,
            insecure=True if insecure else None,
        )
        plain_http = True if getattr(args, "plain_http", False) else None
        return cls(settings, plain_http, str(Path(ca_file).expanduser()) if ca_file else None, insecure)

    def ref(self, text: str) -> Reference:
        """A full or short reference; a path names a repository in the embedded store."""
        return parse_any(text, self.settings)

    def storage(self, registry: str, *, tls_enabled: bool | None = None) -> Any:
        """The store for ``registry`` (a host or an embedded-store path), opened once."""
        key = (registry, tls_enabled)
        if key not in self._stores:
            s = self.settings
            if registry.lower() != s.registry.lower():
                s = RegistrySettings(registry=registry, ca_file=self.ca_file, insecure=self.insecure)
            if tls_enabled is not None:
                s = replace(s, tls_enabled=tls_enabled)
            if self.plain_http:
                s = replace(s, tls_enabled=False)
            self._stores[key] = s.open()
        return self._stores[key]

    def target(self, ref: Reference) -> Any:
        return self.storage(ref.registry).repository(ref.repository)


def _split_path_ref(path: str) -> tuple[str, str | None, str | None]:
    """``/store/ns/name:1.0`` -> (``/store/ns/name``, ``1.0``, None); the tag sits in the last component."""
    digest = tag = None
    if "@" in path.rsplit("/", 1)[-1]:
        path, digest = path.rsplit("@", 1)
        if not re.match(r"^sha256:[a-f0-9]{64}$", digest):
            raise InvalidReference(f"invalid digest {digest!r}: expected sha256:<64 hex digits>")
    last = path.rsplit("/", 1)[-1]
    if ":" in last:
        path, tag = path.rsplit(":", 1)
        tag = tag_for_version(tag)
        if not re.match(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$", tag):
            raise InvalidReference(f"invalid tag {tag!r}")
    return path, tag, digest


def parse_any(text: str, settings: RegistrySettings) -> Reference:
    """Parse a reference; ``oci-layout:PATH[:TAG]`` (or a path) is one repository of the embedded store.

    As with skopeo's ``oci:PATH:TAG``, PATH is the repository's own layout folder
    (``<store>/<namespace>/<name>``); its parent is opened as the store.
    """
    if is_path_registry(text):
        path, tag, digest = _split_path_ref(layout_path(text))
        full = os.path.abspath(os.path.expanduser(path))
        parent, name = os.path.split(full)
        if not name:
            raise InvalidReference(f"{text!r} names no repository: use oci-layout:STORE/NAMESPACE/NAME[:TAG]")
        validate_repository(name, f" in {text!r}")
        return Reference(parent, name, tag, digest)
    return parse_reference(text, registry=settings.registry, namespace=settings.namespace)


def display_ref(ref: Reference, tag: str | None = None) -> str:
    base = f"{ref.registry}/{ref.repository}"
    if tag:
        return f"{base}:{tag}"
    return str(ref)


def fetch_json(target: Any, desc: Descriptor, limit: int = 4 << 20) -> dict[str, Any] | None:
    """A small JSON blob (manifest, config), or None when it is too large or not JSON."""
    from ...oci.store import fetch_bytes

    if desc.size > limit:
        return None
    try:
        doc = json.loads(fetch_bytes(target, desc))
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def resolve_manifest(ctx: Context, ref: Reference) -> tuple[Any, Descriptor, dict[str, Any]]:
    """(target, manifest descriptor, manifest document) for a reference, with a helpful NotFound."""
    from ...oci.store import fetch_manifest

    if not ref.tag and not ref.digest:
        raise InvalidReference(
            f"{ref} names no version: add one as {ref.name}:VERSION (`provisioning oci tags {ref.name}` lists them)"
        )
    target = ctx.target(ref)
    try:
        desc, raw = fetch_manifest(target, ref.reference)
    except NotFound as exc:
        what = f"digest {ref.digest}" if ref.digest else f"version {ref.tag}"
        raise NotFound(
            f"{ref} not found: {ref.registry} has no {what} of {ref.repository}. "
            f"`provisioning oci tags {ref.name}` lists the published versions"
        ) from exc
    try:
        doc = parse_manifest(raw)
    except InvalidContent as exc:
        raise RegistryError(f"{ref}: the registry returned a malformed manifest: {exc}") from None
    return target, desc, doc


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    g = common.add_argument_group("registry")
    g.add_argument(
        "--registry",
        metavar="HOST[:PORT]",
        help="registry host, or a path / oci-layout:PATH for the embedded store "
        "(default: $PROVISIONING_REGISTRY, the workspace config, localhost:5000)",
    )
    g.add_argument(
        "--namespace",
        metavar="NS",
        help="namespace of short names (default: $PROVISIONING_NAMESPACE, the workspace config, "
        "provisioning-extensions)",
    )
    g.add_argument("--workspace", metavar="PATH", help="workspace whose config/provisioning.yaml gives the defaults")
    g.add_argument("--plain-http", action="store_true", help="talk HTTP without TLS (loopback registries do already)")
    g.add_argument(
        "--insecure", action="store_true", help="use TLS but skip certificate verification (not the same as plain HTTP)"
    )
    g.add_argument("--ca-file", metavar="PEM", help="trust this CA certificate bundle for the registry")
    return common


def _with_output(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", "-o", choices=("table", "json"), default="table", help="table (default) or json")
