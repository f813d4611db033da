"""One function from "where the artifacts live" (as users write it) to a Storage.

A filesystem path (absolute, ``./…``, ``~/…``, ``oci-layout:PATH``) is the embedded store;
anything else is a registry host, reached with the credentials found for it (looked up only
when the registry asks for them, so anonymous registries never run credential helpers).
"""

from __future__ import annotations

import os
from pathlib import Path

from .credentials import Credentials, lookup
from .endpoint import Endpoint, parse_endpoint
from .reference import is_path_registry, layout_path
from .remote import RemoteStorage
from .store import Storage


def open_storage(
    registry: str | Endpoint,
    *,
    plain_http: bool | None = None,
    tls_enabled: bool | None = None,
    ca_file: str | os.PathLike[str] | None = None,
    insecure: bool = False,
    auth_token_path: str | os.PathLike[str] | None = None,
    credentials: Credentials | None = None,
) -> Storage:
    """The store named by ``registry``; ``tls_enabled: false`` means plain HTTP (``plain_http`` wins if given).

    Everything about reaching a server (scheme, loopback, CA file, insecure) is decided by
    ``parse_endpoint``; nothing else here looks at the host.
    """
    if isinstance(registry, Endpoint):
        endpoint = registry
    elif is_path_registry(registry):
        from .layout import LayoutStorage  # written alongside; imported only when a path is named

        return LayoutStorage(Path(layout_path(registry)).expanduser())
    else:
        if plain_http is not None:
            tls_enabled = not plain_http
        endpoint = parse_endpoint(registry, tls=tls_enabled, ca_file=ca_file, insecure=insecure)

    def find() -> Credentials | None:
        return lookup(endpoint.host, explicit=credentials, auth_token_path=auth_token_path)

    return RemoteStorage(endpoint, credentials=find)
