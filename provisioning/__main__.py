"""``python -m provisioning``."""

from .cli import run

run()
