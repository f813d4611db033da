[package]
name = "provisioning"
edition = "v0.11.2"
version = "3.5.0"
description = "Base schemas of the provisioning core: settings, servers, clusters, dependencies (with OCI sources) and workflows"
