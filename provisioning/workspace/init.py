"""``provisioning workspace init PATH``: a new workspace that ``dep resolve`` accepts as it is.

The config has every section of the seed's layout (core, extension sources, modules, platform
services, registry), the examples commented out, so an operator edits instead of looking up
key names. Next to it: ``infra/ENV/settings.yaml`` (one example infra) and ``extensions/``
(where ``dep resolve`` installs). The tree is written in a temporary sibling folder and renamed
into place (inside an existing empty folder: moved up from a staging folder), so a failure leaves
nothing behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from .. import __version__
from ..errors import ValidationError
from ..oci.reference import DEFAULT_NAMESPACE, DEFAULT_REGISTRY, is_path_registry, layout_path
from .config import CONFIG_RELPATH, display_path, load_config

DEFAULT_INFRA = "test-env"

CONFIG_TEMPLATE = """\
# Workspace configuration, written by `provisioning workspace init`.
# `provisioning dep resolve` reads it, writes config/provisioning.lock (every extension pinned by
# digest) and installs into extensions/. Every section of the layout is here; uncomment what you need.
dependencies:
  # Core system dependency: its version decides which extensions fit (their min_provisioning_version).
  core:
    version: "{core_version}"
    # source: "oci://harbor.company.com/provisioning-core:v{core_version}"
    # Alternative: source: "gitea://provisioning-core"

  # Extensions repository configuration
  extensions:
    source_type: "oci"                   # oci, gitea, git, local
    # OCI registry configuration
    oci:
      registry: "{registry}"{registry_note}
      namespace: "{namespace}"
      tls_enabled: {tls_enabled}
      # auth_token_path: "~/.provisioning/tokens/oci"
      # ca_file: "~/.provisioning/ca.pem"
    # local:                             # source_type local: folders TYPEs/NAME under path
    #   path: "../extensions"
    # gitea:                             # source_type gitea: one repository with every extension
    #   url: "https://gitea.company.com"
    #   organization: "provisioning"

    # Loaded extension modules: full references, names (newest compatible) or name@constraint
    modules:
      providers:
        # - "oci://localhost:5000/provisioning-extensions/aws:2.0.0"
        # - "upcloud@^1.5.0"
      taskservs:
        # - "oci://localhost:5000/provisioning-extensions/kubernetes:1.28.0"
        # - "containerd@>=1.7.0"
      clusters:
        # - "oci://localhost:5000/provisioning-extensions/buildkit:0.12.0"

  # Platform services: images pinned by digest in the lock when the registry is reachable
  # platform:
  #   source_type: "oci"
  #   oci:
  #     registry: "harbor.company.com"
  #     namespace: "provisioning-platform"
  #   images:
  #     orchestrator: "harbor.company.com/provisioning-platform/orchestrator:v1.2.0"
  #     control_center: "harbor.company.com/provisioning-platform/control-center:v1.2.0"

  # OCI registry configuration, as Harbor users write it (extensions.oci above takes precedence)
  # registry:
  #   type: "oci"                        # oci, gitea, http
  #   oci:
  #     endpoint: "https://harbor.company.com"
  #     namespaces:
  #       extensions: "provisioning-extensions"
  #       kcl: "provisioning-kcl"
  #       platform: "provisioning-platform"
  #       test: "provisioning-test"
  #     tls_enabled: true
  #     auth_token_path: "~/.provisioning/tokens/harbor"
"""

INFRA_TEMPLATE = """\
# Infra {name}: where taskservs and clusters go, written by `provisioning workspace init`.
#   provisioning taskserv create NAME --infra {name} --check
# checks the values below against the extension's KCL schema, renders its templates into
# infra/{name}/.check/NAME/ and prints what scripts/install.nu would do. Nothing on the host changes.
provider: "local"                        # the provider of servers that name none

# Shared settings the templates see as `settings` (main_name names the infra in generated files).
settings:
  main_name: "{name}"

# The servers of this infra; templates see the first as `server` and all as `servers`.
servers:
  - hostname: "{name}-01"
    address: "127.0.0.1"
    provider: "local"

# Values per taskserv, cluster and provider, checked against the extension's schema; what is not
# given takes the schema's default.
taskservs: {{}}
  # redis:
  #   port: 6380
  #   maxmemory_mb: 512
clusters: {{}}
providers: {{}}
  # local:
  #   ssh_user: "devadm"

# Extra template variables that are not settings of an extension (public data only, never secrets).
vars: {{}}
"""

GITIGNORE = """\
# installed by `provisioning dep resolve` from config/provisioning.lock (commit the lock, not these)
/extensions/
# rendered by `provisioning taskserv create --check`
/infra/*/.check/
"""


def _registry_text(registry: str, root: Path) -> tuple[str, str]:
    """The registry as the config should say it; an embedded store path is kept relative to the workspace."""
    if not is_path_registry(registry):
        return registry, ""
    path = Path(layout_path(registry)).expanduser().resolve()
    rel = os.path.relpath(path, root)
    shown = rel if rel.startswith(".") else f"./{rel}"
    return shown, "        # a path: the embedded store (relative to this workspace)"


def init_workspace(
    path: Path,
    *,
    registry: str | None = None,
    namespace: str | None = None,
    infra: str | None = DEFAULT_INFRA,
) -> list[Path]:
    """Write a new workspace at ``path``; return the files written (relative to it).

    ``path`` may be missing or an empty folder; anything else is refused untouched.
    """
    root = Path(path).expanduser().absolute()
    if root.exists() and not root.is_dir():
        raise ValidationError(f"{display_path(root)} exists and is not a folder; pick another PATH")
    if (root / CONFIG_RELPATH).exists():
        raise ValidationError(
            f"{display_path(root)} is already a workspace ({display_path(root / CONFIG_RELPATH)} exists); "
            "nothing was written"
        )
    if root.is_dir() and any(root.iterdir()):
        found = ", ".join(sorted(p.name for p in root.iterdir())[:5])
        raise ValidationError(
            f"{display_path(root)} exists and is not a workspace (it holds {found} but no "
            f"{CONFIG_RELPATH.as_posix()}): init writes only into a new or empty folder; nothing was written"
        )
    if infra is not None:
        from .infra import check_infra_name

        check_infra_name(infra)
    registry = registry or os.environ.get("PROVISIONING_REGISTRY") or DEFAULT_REGISTRY
    reg_text, note = _registry_text(registry, root)
    files: dict[str, str] = {
        CONFIG_RELPATH.as_posix(): CONFIG_TEMPLATE.format(
            core_version=__version__,
            registry=reg_text,
            registry_note=note,
            namespace=namespace or os.environ.get("PROVISIONING_NAMESPACE") or DEFAULT_NAMESPACE,
            tls_enabled="false" if reg_text.split(":")[0] in ("localhost", "127.0.0.1") or note else "true",
        ),
        ".gitignore": GITIGNORE,
    }
    if infra is not None:
        files[f"infra/{infra}/settings.yaml"] = INFRA_TEMPLATE.format(name=infra)
    existing = root.is_dir()  # empty, checked above: stage inside it, so the folder itself stays (a shell may be in it)
    if not existing:
        root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.init-", dir=root if existing else root.parent))
    try:
        tmp.chmod(0o755)
        for folder in ("extensions", "infra"):
            (tmp / folder).mkdir()
        for rel, text in files.items():
            target = tmp / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        load_config(tmp, require_modules=False)  # what we wrote must load
        if existing:
            for entry in sorted(tmp.iterdir()):
                os.replace(entry, root / entry.name)
            tmp.rmdir()
        else:
            os.replace(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return [Path(rel) for rel in sorted([*files, "extensions/", "infra/"])]
