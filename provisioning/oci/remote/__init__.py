"""The remote store: an OCI distribution registry over HTTP(S). Calls go down only:

```
client      RemoteStorage: one registry as a Storage; the catalog, credentials checks, login
   ▼
repository  RemoteTarget: one repository; reads and manifest writes, one status switch per operation
   ▼                       holding an Uploader (upload: monolithic, chunked, mount) and Referrers
api         the single requests about one repository (HEAD, GET and PUT of a manifest)
   ▼
connection  the /v2/ ping once, authenticated requests, paged lists, what the registry supports
   ▼
auth        401 challenge, bearer tokens fetched through the transport, cached per scope
   ▼
transport   the session, redirects, bounded reads, redacted log
   ▼
retry       the one retry policy: attempts, backoff, Retry-After, a host lost for a whole round
   ▼          errors: a failure as our error with its data (method, URL, status, codes, host, kind)
watch       bounded bodies and deadlines ─> requests
```

Registries differ, so what one supports is learnt once and remembered per registry
(``capabilities``): the referrers API (else the ``sha256-<hex>`` tag schema), cross-repository
mount, chunked upload (else monolithic), and ``_catalog``. Only this package imports requests.
"""

from ..endpoint import is_loopback, split_host
from .client import RemoteStorage, login
from .connection import Capabilities
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
    "login",
    "redact_headers",
    "split_host",
]
