"""provisioning: validate, package, publish, resolve and install extensions as OCI artifacts."""

__version__ = "3.5.0"
