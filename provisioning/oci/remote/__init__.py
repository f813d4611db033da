"""The remote store: an OCI distribution registry over HTTP(S). Calls go down only:

```
client (RemoteStorage: one registry)      repository (RemoteTarget: one repository)
   │  ping, credentials check, catalog       │  reads, manifest writes; upload and referrers mixed in
   ▼                                         ▼
errors (the one translation of an answer or failure into our error)
   ▼
auth (401 challenge, bearer tokens fetched through the transport, cached per scope)
   ▼
transport (the request loop: retries, Retry-After, redacted log) ─> watch (bounded bodies, deadlines)
   ▼
requests
```

Registries differ, so what one supports is learnt once and remembered per ``RemoteStorage``
(``capabilities``): the referrers API (else the ``sha256-<hex>`` tag schema), cross-repository
mount, chunked upload (else monolithic), and ``_catalog``. Only this package imports requests.
"""

from ..endpoint import is_loopback, split_host
from .client import Capabilities, RemoteStorage
from .repository import RemoteTarget
from .transport import DEFAULT_CHUNK_SIZE, DEFAULT_CHUNK_THRESHOLD, DEFAULT_RETRIES, DEFAULT_TIMEOUT, redact_headers

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_CHUNK_THRESHOLD",
    "DEFAULT_RETRIES",
    "DEFAULT_TIMEOUT",
    "Capabilities",
    "RemoteStorage",
    "RemoteTarget",
    "is_loopback",
    "redact_headers",
    "split_host",
]
