"""One function from "where the artifacts live" (as users write it) to a Storage.

A filesystem path (absolute, ``./…``, ``~/…``, ``oci-layout:PATH``) is the embedded store;
anything else is a registry host, reached with the credentials found for it (looked up only
when the registry asks for them, so anonymous registries never run credential helpers).
"""

from __future__ import annotations

import os
from pathlib import Path

from .credentials import Credentials, lookup
from .reference import is_path_registry, layout_path
from .remote import RemoteStorage
from .store import Storage


def open_storage(
    registry: str,
    *,
    plain_http: bool | None = None,
    tls_enabled: bool | None = None,
    ca_file: str | os.PathLike[str] | None = None,
    insecure: bool = False,
    auth_token_path: str | os.PathLike[str] | None = None,
    credentials: Credentials | None = None,
) -> Storage:
    """The store named by ``registry``; ``tls_enabled: false`` means plain HTTP (``plain_http`` wins if given)."""
    if is_path_registry(registry):
        from .layout import LayoutStorage  # written alongside; imported only when a path is named

        return LayoutStorage(Path(layout_path(registry)).expanduser())
    if plain_http is None and tls_enabled is not None:
        plain_http = not tls_enabled
    host = registry.strip().rstrip("/")
    bare = host.split("://", 1)[-1]

    def find() -> Credentials | None:
        return lookup(bare, explicit=credentials, auth_token_path=auth_token_path)

    return RemoteStorage(
        host,
        plain_http=plain_http,
        ca_file=str(ca_file) if ca_file else None,
        insecure=insecure,
        credentials=find,
    )
