"""``generate extension``: a new extension folder from templates, ready to validate and test.

The templates live in ``provisioning/templates/extension/`` (``common/`` plus one folder
per type). Files ending in ``.jinja`` are rendered and lose that suffix; ``__name__`` and
``__ident__`` in paths become the extension's name and its KCL identifier. The folder is
written next to its destination and renamed into place, so a failure never leaves half an
extension behind, and an existing folder is never overwritten.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jinja2
import yaml

from . import __version__
from .checks import kcl_identifier
from .errors import ValidationError
from .extension import TYPES
from .resources import resource

EXTENSION_TYPES = TYPES
TEMPLATES = resource("templates", "extension")

NAME_RE = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
SEMVER_RE = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$"
)
MAX_NAME = 63
# An extension's KCL package is imported by name, so it cannot shadow a KCL keyword or a
# system module (its tests could not import it).
KCL_RESERVED = frozenset(
    "all and any as assert check elif else filter final for if import in is lambda map mixin not or "
    "protocol rule schema type base64 collection crypto datetime file json manifests math net regex "
    "runtime template units uuid yaml provisioning".split()
)

DEFAULTS: dict[str, Any] = {
    "version": "1.0.0",
    "author": "Provisioning Team",
    "license": "MIT",
    "min_provisioning_version": "3.0.0",
    "platforms": ["linux/amd64", "linux/arm64"],
}


def default_extensions_dir() -> Path:
    """Where extensions live: ``$PROVISIONING_EXTENSIONS``, else ``./extensions``."""
    return Path(os.environ.get("PROVISIONING_EXTENSIONS") or "extensions")


def validate_name(name: str) -> None:
    """Names become folder, repository and KCL package names: lowercase, digits, dashes."""
    if not NAME_RE.match(name) or len(name) > MAX_NAME:
        raise ValidationError(
            f"invalid extension name {name!r}: use lowercase letters, digits and single dashes, starting "
            f"with a letter, at most {MAX_NAME} characters (for example 'nginx-ingress')"
        )
    if kcl_identifier(name) in KCL_RESERVED:
        raise ValidationError(
            f"invalid extension name {name!r}: it is a KCL keyword or module name, so its schemas could not "
            "be imported; choose another name"
        )


def validate_type(ext_type: str) -> None:
    if ext_type not in EXTENSION_TYPES:
        raise ValidationError(f"invalid extension type {ext_type!r}: use one of {', '.join(EXTENSION_TYPES)}")


def camel_case(name: str) -> str:
    """Schema name for an extension: ``nginx-ingress`` -> ``NginxIngress``."""
    return "".join(part.capitalize() for part in name.split("-"))


def build_manifest(ext_type: str, name: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest.yaml content, every field of the seed's manifest in its order."""
    values = {**DEFAULTS, **{k: v for k, v in fields.items() if v is not None}}
    version = str(values["version"])
    if not SEMVER_RE.match(version):
        raise ValidationError(f"invalid version {version!r}: use semver MAJOR.MINOR.PATCH, for example 1.0.0")
    min_core = str(values["min_provisioning_version"])
    if not SEMVER_RE.match(min_core):
        raise ValidationError(f"invalid min_provisioning_version {min_core!r}: use semver, for example 3.0.0")
    description = str(values.get("description") or f"The {name} {ext_type}")
    if "\n" in description or "\r" in description:
        raise ValidationError("the description must be a single line")
    dependencies = {str(k): str(v) for k, v in dict(values.get("dependencies") or {}).items()}
    for dep in dependencies:
        if not NAME_RE.match(dep):
            raise ValidationError(f"invalid dependency name {dep!r}: use an extension name like 'containerd'")
    if name in dependencies:
        raise ValidationError(f"{name} cannot depend on itself")
    repository = str(values.get("repository") or f"https://gitea.example.com/provisioning-extensions/{name}")
    return {
        "name": name,
        "type": ext_type,
        "version": version,
        "description": description,
        "author": str(values["author"]),
        "license": str(values["license"]),
        "homepage": str(values.get("homepage") or repository),
        "repository": repository,
        "dependencies": dependencies,
        "tags": [str(t) for t in (values.get("tags") or [ext_type, name])],
        "platforms": [str(p) for p in values["platforms"]],
        "min_provisioning_version": min_core,
    }


def generate_extension(ext_type: str, name: str, dest_root: Path, **fields: Any) -> Path:
    """Create ``dest_root/<type>s/<name>/`` from the templates and return its path.

    ``fields`` are manifest fields (version, description, author, license, homepage,
    repository, dependencies, tags, platforms, min_provisioning_version).
    """
    validate_type(ext_type)
    validate_name(name)
    manifest = build_manifest(ext_type, name, fields)
    target = Path(dest_root) / f"{ext_type}s" / name
    if target.exists():
        raise ValidationError(f"{target} already exists; refusing to overwrite it (remove it or choose another name)")
    target.parent.mkdir(parents=True, exist_ok=True)
    context = {
        **manifest,
        "ident": kcl_identifier(name),
        "camel": camel_case(name),
        "core_version": __version__,
    }
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; the extension is not
    try:
        render_tree(ext_type, staging, context)
        (staging / "manifest.yaml").write_text(dump_manifest(manifest), encoding="utf-8")
        try:
            staging.rename(target)  # atomic; fails if a concurrent run created the folder meanwhile
        except OSError as exc:
            raise ValidationError(f"{target} already exists; refusing to overwrite it") from exc
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return target


def render_tree(ext_type: str, dest: Path, context: Mapping[str, Any]) -> list[Path]:
    """Render ``common/`` and ``<type>/`` templates into ``dest``; return the files written."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    written: list[Path] = []
    for layer in ("common", ext_type):
        root = TEMPLATES / layer
        for src in sorted(p for p in root.rglob("*") if p.is_file()):
            rel = src.relative_to(root).as_posix()
            out_rel = rel.replace("__name__", context["name"]).replace("__ident__", context["ident"])
            if out_rel.endswith(".jinja"):
                text = env.get_template(f"{layer}/{rel}").render(**context)
                out_rel = out_rel.removesuffix(".jinja")
                out = dest / out_rel
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(text, encoding="utf-8")
            else:
                out = dest / out_rel
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, out)
            if out.suffix == ".nu":
                out.chmod(0o755)
            written.append(out)
    return written


def dump_manifest(manifest: Mapping[str, Any]) -> str:
    """YAML in the seed's layout: fields in order, block lists, constraints quoted."""
    return yaml.safe_dump(dict(manifest), sort_keys=False, default_flow_style=False, allow_unicode=True)


def parse_dependencies(items: Sequence[str]) -> dict[str, str]:
    """``NAME=CONSTRAINT`` or ``NAME`` (any version) from the command line."""
    deps: dict[str, str] = {}
    for item in items:
        name, sep, constraint = item.partition("=")
        name = name.strip()
        if not name:
            raise ValidationError(f"invalid dependency {item!r}: use NAME=CONSTRAINT, for example containerd='>=1.7.0'")
        deps[name] = constraint.strip() if sep and constraint.strip() else "*"
    return deps
