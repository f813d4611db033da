"""One registry endpoint, parsed once: host, plain HTTP or TLS, CA file, insecure.

Wherever a registry is named (a flag, the environment, a workspace config, a reference), the
text goes through ``parse_endpoint`` before anything talks to it. The rules live here only:
- a scheme is stripped: ``https://`` means TLS, ``http://`` plain HTTP, ``oci://`` says nothing;
- an explicit ``tls`` (a ``tls_enabled`` setting, ``--plain-http``) wins over the scheme;
- a CA file or ``insecure`` (skip certificate verification) only make sense with TLS, so either
  one means TLS, loopback included;
- otherwise loopback hosts (localhost, 127.x, ::1) use plain HTTP, as docker treats them, and
  every other host TLS.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass

from ..errors import RegistryError

SCHEMES = (("https://", True), ("http://", False), ("oci://", None))


def strip_scheme(text: str) -> tuple[str, bool | None]:
    """``https://harbor.example/`` -> (``harbor.example``, True); no scheme says nothing about TLS."""
    text = text.strip()
    for scheme, tls in SCHEMES:
        if text.lower().startswith(scheme):
            return text[len(scheme) :].rstrip("/"), tls
    return text.rstrip("/"), None


def split_host(host: str) -> tuple[str, str | None]:
    """``host:port``, ``[::1]:5000`` or a bare name -> (name, port)."""
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        return name, rest[1:] or None
    if host.count(":") == 1:
        name, port = host.split(":")
        return name, port
    return host, None


def is_loopback(host: str) -> bool:
    """localhost, 127.x and ::1: registries there default to plain HTTP."""
    name = split_host(host)[0].lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Endpoint:
    """How to reach one registry. ``insecure`` keeps TLS but skips verification (not plain HTTP)."""

    host: str
    plain_http: bool = False
    ca_file: str | None = None
    insecure: bool = False

    @property
    def scheme(self) -> str:
        return "http" if self.plain_http else "https"

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.host}"

    @property
    def tls_enabled(self) -> bool:
        return not self.plain_http

    @property
    def verify(self) -> bool | str:
        """What requests' ``verify`` takes: the CA file, or whether to check certificates at all."""
        return self.ca_file if self.ca_file else not self.insecure

    def __str__(self) -> str:
        return self.host


def parse_endpoint(
    text: str,
    *,
    tls: bool | None = None,
    ca_file: str | os.PathLike[str] | None = None,
    insecure: bool = False,
) -> Endpoint:
    """The one place a registry name becomes an Endpoint (see the module's rules)."""
    host, scheme_tls = strip_scheme(text)
    if not host or "/" in host:
        raise RegistryError(
            f"invalid registry host {text.strip()!r}: expected HOST[:PORT] (a URL path is not part of it)"
        )
    if tls is None:
        tls = scheme_tls
    if tls is None and (ca_file or insecure):
        tls = True
    if tls is None:
        tls = not is_loopback(host)
    return Endpoint(host, plain_http=not tls, ca_file=str(ca_file) if ca_file else None, insecure=bool(insecure))
