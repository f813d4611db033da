"""``bundle.json``: the origin, the lock a bundle was made from, and every artifact with its digest.

Written deterministically (sorted keys and entries, no timestamps), so the same lock gives the
same bytes. A ``checksum`` over the rest of the document catches an edited or damaged file;
what it lists is then checked against the layouts themselves by ``bundle verify``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ProvisioningError
from ..jsondoc import json_object
from ..oci.reference import DIGEST, validate_repository
from ..safefile import UnsafeFile, read_bounded

BUNDLE_FILE = "bundle.json"
BUNDLE_VERSION = 1
MAX_BUNDLE_FILE = 256 << 20  # the lock and every artifact of a very large closure; anything past it is refused
KINDS = ("extension", "core", "platform", "artifact", "signature", "referrer")


class BundleError(ProvisioningError):
    """A bundle is missing, incomplete, altered or unsafe."""


@dataclass(frozen=True)
class BundleArtifact:
    """One manifest in the bundle: where it lives there, its tag (if any) and what it is."""

    repository: str
    digest: str
    media_type: str
    size: int
    kind: str
    tag: str | None = None
    subject: str | None = None  # signatures and referrers: the digest they belong to
    registry: str | None = None  # where it came from when not the bundle's origin (platform images)

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "repository": self.repository,
            "digest": self.digest,
            "mediaType": self.media_type,
            "size": self.size,
            "kind": self.kind,
        }
        for key, value in (("tag", self.tag), ("subject", self.subject), ("registry", self.registry)):
            if value is not None:
                d[key] = value
        return d

    def sort_key(self) -> tuple[str, str, str]:
        return (self.repository, self.tag or "", self.digest)


@dataclass
class Bundle:
    """What ``bundle.json`` says."""

    origin: dict[str, str]  # {"registry": HOST, "namespace": NS}
    artifacts: list[BundleArtifact] = field(default_factory=list)
    lock: dict[str, Any] | None = None
    since: str | None = None  # digest of the older lock whose artifacts were left out

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "bundleVersion": BUNDLE_VERSION,
            "origin": dict(sorted(self.origin.items())),
            "lock": self.lock,
            "artifacts": [a.to_json() for a in sorted(self.artifacts, key=BundleArtifact.sort_key)],
        }
        if self.since:
            doc["since"] = self.since
        doc["checksum"] = _checksum(doc)
        return doc

    def dumps(self) -> bytes:
        return json.dumps(self.to_json(), indent=2, sort_keys=True, ensure_ascii=False).encode() + b"\n"

    def repositories(self) -> list[str]:
        return sorted({a.repository for a in self.artifacts})


def _checksum(doc: dict[str, Any]) -> str:
    body = {k: v for k, v in doc.items() if k != "checksum"}
    return "sha256:" + hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def read_bundle(root: Path) -> Bundle:
    """Read and check ``root/bundle.json``; every problem names the file and the fix."""
    path = Path(root) / BUNDLE_FILE
    try:
        raw = read_bounded(path, MAX_BUNDLE_FILE)
    except FileNotFoundError:
        raise BundleError(
            f"{path} is missing: {root} is not a bundle, or its `provisioning bundle create` did not finish "
            "(run the same create again to complete it)"
        ) from None
    except UnsafeFile as e:
        raise BundleError(f"{e}: the bundle was not used") from None
    except OSError as e:
        raise BundleError(f"cannot read {path}: {e.strerror or e}") from None
    advice = f"this provisioning reads bundles of version {BUNDLE_VERSION}; create the bundle with it"
    doc = json_object(
        raw,
        str(path),
        what="bundle manifest",
        error=BundleError,
        version=("bundleVersion", BUNDLE_VERSION, advice),
        damaged="the bundle is damaged; create it again",
    )
    if doc.get("checksum") != _checksum(doc):
        raise BundleError(
            f"{path} was changed after it was written (its checksum does not match its content): do not edit "
            "bundle.json; create the bundle again or restore it from the original medium"
        )
    origin = doc.get("origin")
    if not isinstance(origin, dict) or not isinstance(origin.get("registry"), str):
        raise BundleError(f"{path}: origin must be an object with a registry")
    artifacts = []
    raw_list = doc.get("artifacts")
    if not isinstance(raw_list, list):
        raise BundleError(f"{path}: artifacts must be a list")
    for i, a in enumerate(raw_list):
        where = f"{path}: artifacts[{i}]"
        try:
            repo = validate_repository(str(a["repository"]), f" at {where}")
            digest, kind, size = a["digest"], a["kind"], a["size"]
        except (KeyError, TypeError):
            raise BundleError(f"{where} needs repository, digest, mediaType, size and kind") from None
        if not isinstance(digest, str) or not DIGEST.match(digest):
            raise BundleError(f"{where}: digest {digest!r} is not sha256:<64 hex digits>")
        if kind not in KINDS or not isinstance(size, int) or size < 0:
            raise BundleError(f"{where}: kind must be one of {', '.join(KINDS)} and size a non-negative integer")
        artifacts.append(
            BundleArtifact(
                repository=repo,
                digest=digest,
                media_type=str(a.get("mediaType") or ""),
                size=size,
                kind=kind,
                tag=a.get("tag"),
                subject=a.get("subject"),
                registry=a.get("registry"),
            )
        )
    lock = doc.get("lock")
    return Bundle(
        origin={str(k): str(v) for k, v in origin.items()},
        artifacts=artifacts,
        lock=lock if isinstance(lock, dict) else None,
        since=doc.get("since"),
    )


def is_bundle(path: Path) -> bool:
    return (Path(path) / BUNDLE_FILE).is_file()
