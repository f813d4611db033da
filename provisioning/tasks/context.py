"""What every pipeline task needs to know: where the extensions are, where outputs go, where to publish.

Settings come, first answer wins, from doit variables (``doit publish registry=… namespace=…``),
the environment (``PROVISIONING_REGISTRY``, ``PROVISIONING_NAMESPACE``, ``PROVISIONING_EXTENSIONS``)
and the project's ``config/provisioning.yaml``. With no registry named anywhere, publishing goes
to the embedded store under the build folder, so a fresh clone needs no server.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import doit.doit_cmd
from doit import get_var

from ..extension import Extension, discover, load_extension
from ..settings import CONFIG_FILE, RegistrySettings, registry_settings

TRUE = ("1", "true", "yes", "on")

# The doit variables the pipeline reads (``doit publish registry=…``); anything else is a typo and stops
# the run with exit 2. A task module that reads a new variable adds it here.
VARIABLES = {
    "registry": "where to publish: HOST[:PORT] or a folder (embedded store)",
    "namespace": "the repository namespace (default provisioning-extensions)",
    "extensions": "the extensions tree (default ./extensions)",
    "build": "the build folder (default ./build)",
    "force": "true: re-publish versions whose content changed, and check every extension again",
    "tag": "a release tag: TYPE/NAME/vVERSION (one extension) or vVERSION (the core)",
    "catalog": "false: leave the namespace's catalog alone (default: refresh it once at the end of the run)",
    "shard": "I/N: publish only part I of N (the CI matrix); `doit publish_catalog` merges the parts",
    "reports": "publish_catalog: the shards' report.json files, a glob (default build/publish/shards/*/report.json)",
    "sign": "a cosign private key (PREFIX.key): sign what is published (also `signing: {key: …}` in the config)",
}


def usage_exit(message: str) -> None:
    """Bad usage of a doit run: say what and how to fix, exit 2 (doit itself would call it an error)."""
    print(f"doit: {message}", file=sys.stderr)
    raise SystemExit(2)


def check_variables() -> None:
    given = getattr(doit.doit_cmd, "_CMDLINE_VARS", None) or {}
    unknown = sorted(set(given) - set(VARIABLES))
    if unknown:
        known = "\n".join(f"  {name}=…  {what}" for name, what in VARIABLES.items())
        usage_exit(f"unknown variable {', '.join(repr(u) for u in unknown)}; the pipeline reads:\n{known}")


@cache
def run_id() -> str:
    """This doit invocation's id: answers written by one run (the preflight) are never read by another."""
    return f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class PipelineContext:
    root: Path
    extensions_dir: Path
    build_dir: Path
    settings: RegistrySettings
    force: bool
    release_tag: str | None
    run: str = field(default_factory=run_id)
    signing_key: Path | None = None  # sign every published artifact with this cosign key
    shard: tuple[int, int] | None = None  # (I, N): this run publishes part I of N
    catalog: bool = True  # refresh the namespace's catalog at the end of the run

    @property
    def packages_dir(self) -> Path:
        return self.build_dir / "packages"

    @property
    def results_dir(self) -> Path:
        return self.build_dir / "publish"

    @property
    def embedded_store(self) -> Path:
        return self.build_dir / "store"


def _setting(var: str, env: str | None = None) -> str | None:
    value = get_var(var, None)
    if value in (None, "") and env:
        value = os.environ.get(env)
    return value or None


def pipeline_context(root: Path | None = None) -> PipelineContext:
    check_variables()
    root = Path(root or os.getcwd())
    extensions = Path(_setting("extensions", "PROVISIONING_EXTENSIONS") or root / "extensions")
    build = Path(_setting("build", "PROVISIONING_BUILD") or root / "build")
    registry = _setting("registry", "PROVISIONING_REGISTRY")
    workspace = root if (root / CONFIG_FILE).is_file() else None
    if registry is None and workspace is None:
        registry = str(build / "store")
    settings = registry_settings(registry=registry, namespace=_setting("namespace"), workspace=workspace)
    force = (_setting("force", "PROVISIONING_FORCE") or "").lower() in TRUE
    tag = _setting("tag", "PROVISIONING_RELEASE_TAG")
    shard = None
    if text := _setting("shard", "PROVISIONING_SHARD"):
        from ..errors import UsageError
        from .shards import parse_shard

        try:
            shard = parse_shard(text)
        except UsageError as exc:
            usage_exit(str(exc))
    return PipelineContext(
        root,
        extensions,
        build,
        settings,
        force,
        tag,
        signing_key=_signing_key(root, workspace),
        shard=shard,
        catalog=(_setting("catalog", "PROVISIONING_PUBLISH_CATALOG") or "true").lower() in TRUE,
    )


def _signing_key(root: Path, workspace: Path | None) -> Path | None:
    """``sign=KEY``, ``PROVISIONING_SIGNING_KEY``, or ``signing.key`` of the config (relative to the project)."""
    text = _setting("sign", "PROVISIONING_SIGNING_KEY")
    if text is None and workspace is not None:
        from ..settings import load_document

        signing = load_document(workspace).get("signing")
        text = signing.get("key") if isinstance(signing, dict) else None
    if not text:
        return None
    path = Path(str(text)).expanduser()
    return path if path.is_absolute() else root / path


@cache
def extension_dirs(extensions_dir: Path) -> list[Path]:
    return discover(extensions_dir)


@cache
def extension_files(ext_dir: Path) -> list[str]:
    """Every file of the extension (tests included): the doit ``file_dep`` of its tasks."""
    found = []
    for folder, dirs, files in os.walk(ext_dir):  # os.walk: several times faster than Path.rglob
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        found += [os.path.join(folder, f) for f in files if os.path.isfile(os.path.join(folder, f))]
    return sorted(found)


def task_key(ext_dir: Path) -> str:
    """``taskservs/kubernetes``, from the folder (works even when the manifest is broken)."""
    return f"{ext_dir.parent.name}/{ext_dir.name}"


@cache
def identity(ext_dir: Path) -> tuple[str, str] | None:
    """(name, version) from manifest.yaml, without validating it: enough to name a task's targets."""
    import yaml

    try:
        doc = yaml.load((ext_dir / "manifest.yaml").read_bytes(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (OSError, yaml.YAMLError, ValueError):
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("name"), str) or doc.get("version") is None:
        return None
    return doc["name"], str(doc["version"])


@cache
def try_load(ext_dir: Path) -> Extension | None:
    from ..errors import ProvisioningError

    try:
        return load_extension(ext_dir)
    except ProvisioningError:
        return None
