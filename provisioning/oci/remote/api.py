"""The distribution API's single requests for one repository, each with its one status switch: a HEAD of a
blob or manifest, the GET of a manifest by tag or digest, the PUT of a manifest.

The repository, the uploads and the referrers all build on these, so none of them calls back into
another.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import requests

from ...errors import DigestMismatch, NotFound, RegistryError
from ..descriptor import MANIFEST, MANIFEST_TYPES, MAX_MANIFEST_SIZE, Descriptor, sha256_digest
from ..reference import tag_for_version
from .auth import repository_scope
from .connection import Connection
from .errors import media_type
from .transport import MANIFEST_ACCEPT
from .watch import body_chunks


def manifest_ref(reference: str) -> str:
    """A digest as it is; a version as the tag it is published under."""
    return reference if reference.startswith("sha256:") else tag_for_version(reference)


class RepositoryAPI:
    """Requests about one repository ``name`` of the registry behind ``conn``."""

    def __init__(self, conn: Connection, name: str) -> None:
        self.conn = conn
        self.name = name
        self.pull = (repository_scope(name, "pull"),)
        self.push = (repository_scope(name, "pull", "push"),)

    @property
    def where(self) -> str:
        return f"{self.conn.host}/{self.name}"

    def path(self, kind: str, ref: str) -> str:
        return f"/v2/{self.name}/{kind}/{ref}"

    @staticmethod
    def kind(desc: Descriptor) -> str:
        return "manifests" if desc.is_manifest else "blobs"

    @staticmethod
    def accept(desc: Descriptor | None = None) -> dict[str, str]:
        return {"Accept": MANIFEST_ACCEPT} if desc is None or desc.is_manifest else {}

    def head(self, desc: Descriptor, scopes: Sequence[str]) -> bool:
        """Whether the registry has ``desc`` (200) or not (404)."""
        resp = self.conn.request(
            "HEAD", self.path(self.kind(desc), desc.digest), scopes=scopes, ok=(200, 404), headers=self.accept(desc)
        )
        resp.close()
        match resp.status_code:
            case 200:
                return True
            case _:
                return False

    def not_found(self, ref: str) -> NotFound:
        sep = "@" if ref.startswith("sha256:") else ":"
        return NotFound(
            f"{self.where}{sep}{ref} not found: check the name and version",
            host=self.conn.host,
            repository=self.name,
            kind="manifest_not_found",
        )

    def get_manifest(self, reference: str) -> tuple[Descriptor, bytes]:
        """Resolve and fetch a manifest in one GET, its digest checked against what was asked and named."""
        ref = manifest_ref(reference)
        resp = self.conn.request(
            "GET", self.path("manifests", ref), scopes=self.pull, ok=(200, 404), stream=True, headers=self.accept()
        )
        try:
            match resp.status_code:
                case 404:
                    raise self.not_found(ref)
                case _:
                    data = self._bounded_manifest(resp, ref)
        except requests.RequestException as exc:
            raise self.conn.transport.broken_body("GET", resp.url, resp, exc) from None
        finally:
            resp.close()
        digest = sha256_digest(data)
        named = resp.headers.get("Docker-Content-Digest")
        if (ref.startswith("sha256:") and digest != ref) or (named and named != digest):
            raise DigestMismatch(
                f"{self.where}:{ref}: the manifest's content has digest {digest}, "
                f"not {ref if ref.startswith('sha256:') else named}; rejected"
            )
        kind = media_type(resp)
        if kind not in MANIFEST_TYPES:
            try:
                kind = json.loads(data).get("mediaType") or MANIFEST
            except (ValueError, AttributeError):
                kind = MANIFEST
        return Descriptor(kind, digest, len(data)), data

    def _bounded_manifest(self, resp: requests.Response, ref: str) -> bytes:
        data = b""
        for chunk in body_chunks(resp):
            data += chunk
            if len(data) > MAX_MANIFEST_SIZE:
                raise RegistryError(f"{self.where}:{ref} is larger than {MAX_MANIFEST_SIZE} bytes; not a manifest")
        return data

    def put_manifest(self, desc: Descriptor, data: bytes, ref: str) -> requests.Response:
        """PUT a manifest under a tag or its digest; the (closed) answer says whether the registry indexed a subject."""
        resp = self.conn.request(
            "PUT",
            self.path("manifests", ref),
            scopes=self.push,
            ok=(200, 201, 202, 204),
            data=data,
            headers={"Content-Type": desc.media_type},
        )
        resp.close()
        named = resp.headers.get("Docker-Content-Digest")
        if named and named != desc.digest:
            raise RegistryError(
                f"{self.conn.host} stored manifest {desc.digest} as {named}: the registry rewrote it; "
                "it may not support this manifest media type"
            )
        return resp
