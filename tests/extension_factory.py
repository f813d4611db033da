"""Build small but complete extension folders for tests."""

from __future__ import annotations

from pathlib import Path

import yaml


def make_extension(
    root: Path,
    name: str = "demo",
    type_: str = "taskserv",
    version: str = "1.0.0",
    dependencies: dict[str, str] | None = None,
    **manifest: object,
) -> Path:
    """``root/<type>s/<name>/`` with manifest, KCL, scripts, templates, docs and tests."""
    ext = root / f"{type_}s" / name
    for sub in ("kcl", "scripts", "templates", "docs", "tests"):
        (ext / sub).mkdir(parents=True, exist_ok=True)
    data = {
        "name": name,
        "type": type_,
        "version": version,
        "description": f"{name} test extension",
        "author": "Test Team",
        "license": "MIT",
        "dependencies": dependencies or {},
        "tags": ["test"],
        "platforms": ["linux/amd64"],
        "min_provisioning_version": "3.0.0",
        **manifest,
    }
    (ext / "manifest.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    (ext / "kcl" / "kcl.mod").write_text(f'[package]\nname = "{name.replace("-", "_")}"\nversion = "{version}"\n')
    schema = name.replace("-", "_").capitalize()
    (ext / "kcl" / f"{name}.k").write_text(
        f'schema {schema}:\n    version: str = "{version}"\n    replicas: int = 1\n\n'
        f"    check:\n        replicas >= 1\n\n{name.replace('-', '_')} = {schema} {{}}\n"
    )
    for script in ("install", "check", "uninstall"):
        (ext / "scripts" / f"{script}.nu").write_text(
            f'# {script} {name}\ndef main [--dry-run] {{\n    print $"{script} {name}"\n}}\n'
        )
    (ext / "templates" / "config.yaml.j2").write_text("name: {{ name }}\n")
    (ext / "docs" / "README.md").write_text(f"# {name}\n")
    (ext / "tests" / f"test_{name}.nu").write_text("use std assert\nassert equal (1 + 1) 2\n")
    return ext
