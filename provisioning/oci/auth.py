"""Moved to ``provisioning.oci.remote.auth``; this name stays importable during the transition."""

from .remote import auth as _moved
from .remote.auth import *  # noqa: F403


def __getattr__(name: str):  # the private names too
    return getattr(_moved, name)
