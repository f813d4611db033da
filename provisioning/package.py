"""Deterministic packaging: the same extension contents give byte-identical artifacts anywhere.

Entries are sorted; owner, group, mode and mtime are normalised; gzip carries no name or
time; JSON is canonical; annotations never read the clock (``created`` comes from the
extension's last commit or SOURCE_DATE_EPOCH). Two checkouts of one commit therefore give
the same digests, and a fresh CI clone can tell what is already published.
"""

from __future__ import annotations

import fnmatch
import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .extension import Extension, display, load_extension
from .oci.descriptor import (
    ARTIFACT_TYPE,
    CONFIG_TYPE,
    CORE_ARTIFACT_TYPE,
    CORE_CONFIG_TYPE,
    LAYER_TYPE,
    MANIFEST,
    Descriptor,
    canonical_json,
)
from .oci.reference import tag_for_version

IGNORE_FILE = ".provisioningignore"
ALWAYS_IGNORED = ("tests/", ".git/", "__pycache__/", "*.pyc", ".DS_Store", IGNORE_FILE)
SOURCE_ANNOTATION = "io.provisioning.source.digest"
TYPE_ANNOTATION = "io.provisioning.extension.type"
PACKAGE_FORMAT = "1"  # bump when the layer layout changes, so old source digests stop matching


def _ignore_patterns(ext_dir: Path) -> list[str]:
    patterns = list(ALWAYS_IGNORED)
    ignore = ext_dir / IGNORE_FILE
    if ignore.is_file():
        for line in ignore.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                patterns.append(line)
    return patterns


def _ignored(rel: str, is_dir: bool, patterns: list[str]) -> bool:
    name = rel.rsplit("/", 1)[-1]
    for pat in patterns:
        if pat.endswith("/"):
            if not is_dir:
                continue
            pat = pat.rstrip("/")
        anchored = pat.startswith("/")
        pat = pat.lstrip("/")
        if fnmatch.fnmatchcase(rel, pat) or (not anchored and "/" not in pat and fnmatch.fnmatchcase(name, pat)):
            return True
    return False


def included_files(ext_dir: Path, ignore: tuple[str, ...] = ()) -> list[tuple[str, Path]]:
    """The files that go into the artifact as (posix relative path, path), sorted.

    ``tests/`` and the ignore file's patterns (gitignore-like: ``*.bak``, ``/build``, ``tmp/``) are
    left out. Symlinks are refused: an artifact holds plain files only.
    """
    from .errors import ValidationError

    patterns = _ignore_patterns(ext_dir) + list(ignore)
    out: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(ext_dir):
        base = Path(dirpath)
        rel_base = base.relative_to(ext_dir).as_posix()
        prefix = "" if rel_base == "." else rel_base + "/"
        dirnames[:] = sorted(d for d in dirnames if not _ignored(prefix + d, True, patterns))
        for d in dirnames:
            if (base / d).is_symlink():
                raise ValidationError(f"{display(base / d)}: symbolic links cannot be packaged; copy the folder in")
        for f in sorted(filenames):
            rel = prefix + f
            if _ignored(rel, False, patterns):
                continue
            path = base / f
            if path.is_symlink() or not path.is_file():
                raise ValidationError(f"{display(path)}: only regular files can be packaged (found a link or device)")
            out.append((rel, path))
    return sorted(out)


def source_digest(ext_dir: Path, files: list[tuple[str, Path]] | None = None) -> str:
    """A digest of what would be packaged, cheap enough to compute for every extension on every run.

    Published artifacts carry it as an annotation, so a fresh clone recognises what is already
    published without validating or packaging.
    """
    h = hashlib.sha256(f"provisioning-package/{PACKAGE_FORMAT}\0".encode())
    for rel, path in files if files is not None else included_files(ext_dir):
        data = path.read_bytes()
        h.update(f"{rel}\0{len(data)}\0".encode())
        h.update(hashlib.sha256(data).digest())
    return "sha256:" + h.hexdigest()


def _tar_info(name: str, is_dir: bool, size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE if is_dir else tarfile.REGTYPE
    info.mode = 0o755 if is_dir else 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = 0
    info.size = size
    return info


def build_layer(entries: list[tuple[str, bytes]]) -> bytes:
    """A reproducible tar.gz of (path, content) entries with their parent folders."""
    dirs = sorted({"/".join(rel.split("/")[:i]) for rel, _ in entries for i in range(1, rel.count("/") + 1)})
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in dirs:
            tar.addfile(_tar_info(d + "/", True))
        for rel, data in sorted(entries):
            tar.addfile(_tar_info(rel, False, len(data)), io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=6) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def git_source_info(ext_dir: Path) -> tuple[str | None, int | None]:
    """(commit, commit time) of the last commit touching the folder; (None, None) outside git."""
    try:
        out = subprocess.run(
            ["git", "log", "-1", "--format=%H %ct", "--", "."],
            cwd=ext_dir,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None, None
    parts = out.stdout.split()
    if out.returncode != 0 or len(parts) != 2:
        return None, None
    return parts[0], int(parts[1])


@dataclass(frozen=True)
class Artifact:
    """An extension packaged to the artifact contract, held in memory (extensions are small)."""

    extension: Extension
    config: bytes
    config_desc: Descriptor
    layer: bytes
    layer_desc: Descriptor
    manifest: bytes
    manifest_desc: Descriptor
    source_digest: str

    @property
    def name(self) -> str:
        return self.extension.name

    @property
    def version(self) -> str:
        return self.extension.version

    @property
    def tag(self) -> str:
        return tag_for_version(self.version)

    def parts(self) -> list[tuple[Descriptor, bytes]]:
        """Every node of the artifact's graph, children before the manifest."""
        return [(self.config_desc, self.config), (self.layer_desc, self.layer), (self.manifest_desc, self.manifest)]


def _rfc3339(timestamp: int | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def annotations(ext: Extension, revision: str | None, created: int | None) -> dict[str, str]:
    m = ext.manifest
    ann = {
        "org.opencontainers.image.title": ext.name,
        "org.opencontainers.image.version": ext.version,
        "org.opencontainers.image.description": m.get("description", ""),
        TYPE_ANNOTATION: ext.type,
    }
    optional = {
        "org.opencontainers.image.licenses": m.get("license"),
        "org.opencontainers.image.authors": m.get("author"),
        "org.opencontainers.image.source": m.get("repository"),
        "org.opencontainers.image.url": m.get("homepage"),
        "org.opencontainers.image.revision": revision,
        "org.opencontainers.image.created": (
            datetime.fromtimestamp(created, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            if created is not None
            else None
        ),
    }
    ann.update({k: v for k, v in optional.items() if v})
    return ann


def build_artifact(ext_dir: Path | Extension, *, use_git: bool = True) -> Artifact:
    """Package one (already validated) extension. Pure function of the files, the commit and SOURCE_DATE_EPOCH."""
    ext = ext_dir if isinstance(ext_dir, Extension) else load_extension(Path(ext_dir))
    return _assemble(ext, included_files(ext.path), ARTIFACT_TYPE, CONFIG_TYPE, LAYER_TYPE, use_git)


CORE_FILES = ("schemas", "provisioning", "pyproject.toml", "README.md")


def build_core_artifact(root: Path, version: str, *, use_git: bool = True) -> Artifact:
    """The core release (``provisioning-core:vX.Y.Z``): base schemas (KCL and JSON) and the tool itself."""
    core = Extension(
        root,
        {
            "name": "provisioning-core",
            "type": "core",
            "version": version,
            "description": "provisioning core: base KCL and JSON schemas and the provisioning tool",
            "license": "MIT",
        },
    )
    files = []
    for top in CORE_FILES:
        path = root / top
        if path.is_file():
            files.append((top, path))
        elif path.is_dir():
            files.extend((f"{top}/{rel}", p) for rel, p in included_files(path))
    return _assemble(core, sorted(files), CORE_ARTIFACT_TYPE, CORE_CONFIG_TYPE, LAYER_TYPE, use_git)


def _assemble(
    ext: Extension,
    files: list[tuple[str, Path]],
    artifact_type: str,
    config_type: str,
    layer_type: str,
    use_git: bool,
) -> Artifact:
    contents = [(rel, path.read_bytes()) for rel, path in files]
    digest = source_digest(ext.path, files)
    oci_manifest = {
        "schemaVersion": 1,
        "name": ext.name,
        "type": ext.type,
        "version": ext.version,
        "artifactType": artifact_type,
        "sourceDigest": digest,
        "files": [
            {"path": rel, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)} for rel, data in contents
        ],
    }
    entries = [(rel, data) for rel, data in contents if rel != "oci-manifest.json"]
    entries.append(("oci-manifest.json", json.dumps(oci_manifest, indent=2, sort_keys=True).encode() + b"\n"))
    layer = build_layer(entries)
    config = canonical_json(ext.manifest)
    revision, created = git_source_info(ext.path) if use_git else (None, None)
    if os.environ.get("SOURCE_DATE_EPOCH", "").isdigit():
        created = int(os.environ["SOURCE_DATE_EPOCH"])
    layer_desc = Descriptor.of(
        layer_type, layer, annotations={"org.opencontainers.image.title": f"{ext.name}-{ext.version}.tar.gz"}
    )
    config_desc = Descriptor.of(config_type, config)
    ann = annotations(ext, revision, created)
    ann[SOURCE_ANNOTATION] = digest
    manifest_doc = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "artifactType": artifact_type,
        "config": config_desc.to_dict(),
        "layers": [layer_desc.to_dict()],
        "annotations": dict(sorted(ann.items())),
    }
    manifest = canonical_json(manifest_doc)
    manifest_desc = Descriptor.of(MANIFEST, manifest, artifact_type=artifact_type)
    return Artifact(ext, config, config_desc, layer, layer_desc, manifest, manifest_desc, digest)


def write_artifact(artifact: Artifact, out_dir: Path) -> Path:
    """Write ``<name>-<version>.tar.gz`` and its OCI manifest and config beside it, atomically.

    Returns the tar.gz path. Nothing is half-written: each file goes to a temp name first.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{artifact.name}-{artifact.version}"
    files = {
        f"{stem}.tar.gz": artifact.layer,
        f"{stem}.config.json": artifact.config,
        f"{stem}.manifest.json": artifact.manifest,
    }
    for name, data in files.items():
        target = out_dir / name
        if target.is_file() and target.read_bytes() == data:
            continue
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=out_dir)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return out_dir / f"{stem}.tar.gz"


def package_paths(out_dir: Path, name: str, version: str) -> list[Path]:
    """The files ``write_artifact`` produces (doit targets)."""
    stem = f"{name}-{version}"
    return [out_dir / f"{stem}.tar.gz", out_dir / f"{stem}.config.json", out_dir / f"{stem}.manifest.json"]
