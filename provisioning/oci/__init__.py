"""The registry library: descriptors, references, stores (memory, OCI layout, remote) and one graph copy."""
