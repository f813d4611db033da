"""Referrers: the OCI referrers API, else the ``sha256-<hex>`` tag-schema index that registries
without the API (CNCF distribution) are given on push.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import quote

from ...errors import NotFound, RegistryError
from ..descriptor import INDEX, Descriptor, InvalidContent
from .api import RepositoryAPI
from .transport import ANY_FINAL_STATUS

log = logging.getLogger(__name__)


class Referrers:
    """The referrers of manifests in one repository: listed, and indexed by tag where the registry has no API."""

    def __init__(self, api: RepositoryAPI) -> None:
        self.api = api
        self.conn = api.conn

    def index(self, desc: Descriptor, data: bytes) -> None:
        """Without the referrers API, record a manifest with a ``subject`` in the ``sha256-<hex>`` tag index."""
        try:
            doc = json.loads(data)
        except ValueError:
            return
        subject = doc.get("subject") if isinstance(doc, dict) else None
        if not isinstance(subject, dict) or not str(subject.get("digest", "")).startswith("sha256:"):
            return
        if self.conn.capabilities.referrers:
            return
        entry = Descriptor(
            desc.media_type,
            desc.digest,
            desc.size,
            annotations=dict(doc.get("annotations") or {}),
            artifact_type=doc.get("artifactType") or (doc.get("config") or {}).get("mediaType"),
        )
        tag = "sha256-" + subject["digest"].split(":", 1)[1]
        try:
            _, current = self.api.get_manifest(tag)
            manifests = json.loads(current).get("manifests") or []
        except NotFound:
            manifests = []
        if any(m.get("digest") == desc.digest for m in manifests):
            return
        manifests.append(entry.to_dict())
        index = json.dumps({"schemaVersion": 2, "mediaType": INDEX, "manifests": manifests}, indent=None).encode()
        self.api.put_manifest(Descriptor.of(INDEX, index), index, tag)

    def list(self, desc: Descriptor, artifact_type: str | None = None) -> list[Descriptor]:
        """Manifests whose ``subject`` is ``desc``: the referrers API, else the tag-schema index."""
        caps = self.conn.capabilities
        if caps.referrers is not False:
            query = f"?artifactType={quote(artifact_type, safe='')}" if artifact_type else ""
            url = self.api.path("referrers", desc.digest) + query
            found: list[dict[str, Any]] = []
            filtered = False
            for resp in self.conn.pages(
                url, f"referrers of {desc.digest}", scopes=self.api.pull, ok=ANY_FINAL_STATUS, headers={"Accept": INDEX}
            ):
                resp.close()
                try:
                    doc = resp.json() if resp.status_code == 200 else None
                except ValueError:
                    doc = None
                if not isinstance(doc, dict) or not isinstance(doc.get("manifests"), list):
                    if resp.status_code not in (404, 405, 400) and found == []:
                        log.debug("referrers API of %s answered %s", self.conn.host, resp.status_code)
                    caps.referrers = False
                    break
                caps.referrers = True
                filtered = filtered or "artifactType" in resp.headers.get("OCI-Filters-Applied", "")
                found.extend(doc["manifests"])
            if caps.referrers:
                return self._filter(found, artifact_type if not filtered else None)
        tag = "sha256-" + desc.digest.split(":", 1)[1]
        try:
            _, data = self.api.get_manifest(tag)
        except NotFound:
            return []
        try:
            manifests = json.loads(data).get("manifests") or []
        except (ValueError, AttributeError):
            return []
        return self._filter(manifests, artifact_type)

    def _filter(self, manifests: Any, artifact_type: str | None) -> list[Descriptor]:
        try:
            if not isinstance(manifests, list):
                raise InvalidContent("'manifests' must be a list of descriptors")
            out = [Descriptor.from_dict(m) for m in manifests]
        except InvalidContent as exc:
            raise RegistryError(f"{self.api.where}: the referrers of a manifest are malformed: {exc}") from None
        return [d for d in out if artifact_type is None or d.artifact_type == artifact_type]
