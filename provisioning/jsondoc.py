"""Untrusted JSON documents (a bundle's ``bundle.json``, a namespace's catalog): the checks every reader repeats.

Bytes from a registry or a carried disk are parsed, must hold an object, and must name the one
format version this provisioning reads; each failure is the reader's own error class with a
message that names where the document came from and what to do. Size bounds stay with the
caller (it knows whether it read a file or a registry response).
"""

from __future__ import annotations

import json
from typing import Any

from .errors import ProvisioningError


def json_object(
    data: bytes,
    where: str,
    *,
    what: str,
    error: type[ProvisioningError],
    version: tuple[str, Any, str] | None = None,
    damaged: str = "",
) -> dict[str, Any]:
    """``data`` as a JSON object; ``version`` is (key, the value required, advice when it differs).

    ``damaged`` is appended to the message for bytes that are not a JSON object (what to do about it).
    """
    tail = f"; {damaged}" if damaged else ""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise error(f"{where}: the {what} is not JSON ({exc}){tail}") from None
    if not isinstance(doc, dict):
        raise error(f"{where}: the {what} is not a JSON object{tail}")
    if version is not None:
        key, required, advice = version
        if doc.get(key) != required:
            raise error(f"{where}: {what} {key} {doc.get(key)!r} is not {required}; {advice}")
    return doc
