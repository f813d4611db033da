"""``python -m provisioning.cli``."""

from . import run

run()
