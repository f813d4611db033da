"""The package's shape, measured by tools/architecture.py: the layers stay one-way."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def architecture():
    spec = importlib.util.spec_from_file_location("architecture", PROJECT / "tools" / "architecture.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["architecture"] = module
    spec.loader.exec_module(module)
    return module


def test_the_tool_finds_a_cycle(architecture, tmp_path: Path) -> None:
    pkg = tmp_path / "provisioning"
    (pkg / "oci").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "oci" / "__init__.py").write_text("")
    (pkg / "oci" / "a.py").write_text("from . import b\n")
    (pkg / "oci" / "b.py").write_text("def f():\n    from .c import x\n")
    (pkg / "oci" / "c.py").write_text("from provisioning.oci.a import y\nimport requests\n")
    (pkg / "leaf.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .oci import a\n")
    report = architecture.report(tmp_path)
    assert report["import_cycles"] == [["provisioning.oci.a", "provisioning.oci.b", "provisioning.oci.c"]]
    assert report["modules_importing_requests"] == ["provisioning.oci.c"]


def test_no_import_cycle_in_the_package(architecture) -> None:
    assert architecture.report(PROJECT)["import_cycles"] == []


def test_readme_and_docs_link_only_inside_the_repository() -> None:
    import re

    for doc in [PROJECT / "README.md", *sorted((PROJECT / "docs").glob("*.md"))]:
        text = doc.read_text(encoding="utf-8")
        links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text) + re.findall(r"`(\.\./[^`]+)`", text)
        for link in links:
            if "://" in link:
                continue
            target = (doc.parent / link).resolve()
            assert target.is_relative_to(PROJECT) and target.exists(), f"{doc.name} links to {link}"
    assert "docs/architecture.md" in (PROJECT / "README.md").read_text()
