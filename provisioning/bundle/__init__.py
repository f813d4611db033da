"""Bundles for air-gapped sites: the whole resolved closure of a workspace as an embedded store tree.

A bundle is a folder of OCI image layouts (``<root>/<namespace>/<name>/``, what zot serves and
``skopeo copy oci:`` reads) plus ``bundle.json``: where it came from, the lock it was made from,
and every artifact with its digest. ``create`` fills it from a registry, ``verify`` checks it
offline, ``push`` loads it into another registry, and the resolver reads it as a mirror of its
origin, so the same lock installs online, from a loaded registry, and from the folder itself.
"""

from .manifest import BUNDLE_FILE, Bundle, BundleArtifact, BundleError, read_bundle

__all__ = ["BUNDLE_FILE", "Bundle", "BundleArtifact", "BundleError", "read_bundle"]
