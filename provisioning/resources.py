"""Data that ships with the tool (JSON Schemas, base KCL, registry configs, templates): one helper reads it.

The repository keeps one copy of each file: ``schemas/`` and ``registry/`` at the top level
(extensions in a checkout import the base KCL from ``schemas/kcl`` by path), the extension
templates in ``provisioning/templates/``. A wheel carries the top-level folders inside the
package, under ``provisioning/_data/`` (``setup.py`` copies them at build time), so an
installed tool finds everything through ``importlib.resources`` from any working folder; a
checkout (or an editable install) reads the repository's folders directly.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from .errors import ProvisioningError

SHIPPED = "_data"  # where a wheel holds the top-level folders
TOP_LEVEL = ("schemas", "registry")  # the repository's top-level data folders
REPOSITORY = Path(__file__).resolve().parent.parent


def resource(folder: str, *parts: str) -> Path:
    """The file or folder ``folder/parts…`` of the shipped data (``resource("schemas", "kcl")``)."""
    package = files(__package__ or "provisioning")
    if folder in TOP_LEVEL:
        candidates = [package.joinpath(SHIPPED, folder, *parts), REPOSITORY.joinpath(folder, *parts)]
    else:
        candidates = [package.joinpath(folder, *parts)]
    for candidate in candidates:
        if candidate.is_file() or candidate.is_dir():
            return Path(str(candidate))
    raise ProvisioningError(
        f"{'/'.join((folder, *parts))} is missing from this installation of provisioning: reinstall it "
        "(a wheel carries it under provisioning/_data, a checkout at the top of the repository)"
    )
