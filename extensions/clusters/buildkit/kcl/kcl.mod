[package]
name = "buildkit"
edition = "v0.11.2"
version = "0.12.0"

[dependencies]
# The core's base schemas; `provisioning` checks resolve it from the core itself, the
# path serves `kcl run` inside a checkout of the extensions repository.
provisioning = { path = "../../../../schemas/kcl", version = "3.5.0" }
