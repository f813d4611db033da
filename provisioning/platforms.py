"""OCI platforms: ``os/arch[/variant]`` with the os and architecture values the OCI image spec lists.

The spec takes its values from Go's GOOS and GOARCH; variants name CPU generations (``arm/v7``,
``arm64/v8``, ``amd64/v3``). One definition here serves the manifest schema's pattern (a test keeps
them equal), validation messages, and the install-time check against the host.
"""

from __future__ import annotations

import platform as _host
import re
import sys
from dataclasses import dataclass

# https://github.com/opencontainers/image-spec/blob/main/image-index.md (platform.os, platform.architecture)
OPERATING_SYSTEMS = (
    "aix android darwin dragonfly freebsd illumos ios js linux netbsd openbsd plan9 solaris wasip1 windows".split()
)
ARCHITECTURES = "386 amd64 arm arm64 loong64 mips mips64 mips64le mipsle ppc64 ppc64le riscv64 s390x wasm".split()
# variants the image spec and containerd name; an architecture not listed takes no variant
VARIANTS = {
    "arm": ("v5", "v6", "v7", "v8"),
    "arm64": ("v8", "v8.0", "v8.1", "v8.2", "v8.3", "v8.4", "v8.5", "v8.6", "v8.7", "v8.8", "v8.9", "v9", "v9.0"),
    "amd64": ("v1", "v2", "v3", "v4"),
}
EXAMPLES = "linux/amd64, linux/arm64, linux/arm64/v8, linux/arm/v7"


def _alternation(values: list[str] | tuple[str, ...]) -> str:
    return "|".join(re.escape(v) for v in values)


def schema_pattern() -> str:
    """The JSON Schema pattern of one platform string (``schemas/manifest.schema.json`` carries it)."""
    plain = [a for a in ARCHITECTURES if a not in VARIANTS]
    with_variant = [f"{re.escape(a)}(/({_alternation(VARIANTS[a])}))?" for a in ARCHITECTURES if a in VARIANTS]
    return f"^({_alternation(OPERATING_SYSTEMS)})/({_alternation(plain)}|{'|'.join(with_variant)})$"


def allowed_forms() -> str:
    """The help text a refused platform gets: the grammar, examples, and every allowed value."""
    variants = "; ".join(f"{a}: {', '.join(v)}" for a, v in VARIANTS.items())
    return (
        f"write os/arch or os/arch/variant as OCI platforms are written (e.g. {EXAMPLES}); "
        f"os is one of {', '.join(OPERATING_SYSTEMS)}; arch is one of {', '.join(ARCHITECTURES)}; "
        f"variants: {variants}"
    )


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str | None = None

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)

    def to_oci(self) -> dict[str, str]:
        """The OCI descriptor ``platform`` object."""
        out = {"os": self.os, "architecture": self.architecture}
        if self.variant:
            out["variant"] = self.variant
        return out


class PlatformError(ValueError):
    pass


def parse_platform(text: str) -> Platform:
    """``linux/arm/v7`` -> Platform; anything else raises PlatformError with the allowed forms."""
    if not isinstance(text, str) or not re.match(schema_pattern(), text):
        raise PlatformError(f"{text!r} is not an OCI platform: {allowed_forms()}")
    parts = text.split("/")
    return Platform(parts[0], parts[1], parts[2] if len(parts) > 2 else None)


def host_platform() -> Platform:
    """This machine as an OCI platform (Go's names: x86_64 is amd64, aarch64 is arm64)."""
    machine = _host.machine().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "i386": "386", "i686": "386"}
    if machine.startswith("armv"):
        return Platform(_os_name(), "arm", f"v{machine[4]}")
    return Platform(_os_name(), arch.get(machine, machine), None)


def _os_name() -> str:
    return {"win32": "windows", "cygwin": "windows"}.get(sys.platform, sys.platform.rstrip("0123456789") or "linux")


def supports(listed: list[str], host: Platform) -> bool:
    """Does an extension listing ``listed`` run on ``host``? No list means any platform.

    A listed platform without a variant covers every variant of its architecture; one with a variant
    covers a host of that variant, or one that reports none.
    """
    if not listed:
        return True
    for text in listed:
        try:
            p = parse_platform(text)
        except PlatformError:
            continue
        if (p.os, p.architecture) != (host.os, host.architecture):
            continue
        if p.variant is None or host.variant in (None, p.variant):
            return True
    return False
