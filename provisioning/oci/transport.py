"""Moved to ``provisioning.oci.remote.watch``; this name stays importable during the transition."""

from .remote import watch as _moved
from .remote.watch import *  # noqa: F403


def __getattr__(name: str):  # the private names too
    return getattr(_moved, name)
