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


POWERS = ("mount", "push_reference", "fetch_reference", "expect_absent", "delete", "referrers", "catalog")


def test_no_store_power_is_looked_up_by_name() -> None:
    import re

    names = "|".join(POWERS)
    by_name = re.compile(r"(?:getattr|hasattr)\([^)]*[\"'](" + names + r")[\"']")
    found = [
        f"{p.relative_to(PROJECT)}:{i}: {line.strip()}"
        for p in sorted((PROJECT / "provisioning").rglob("*.py"))
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if by_name.search(line)
    ]
    assert found == [], "check store powers with isinstance and the protocols of oci/store.py:\n" + "\n".join(found)


def test_each_store_has_the_powers_it_claims(tmp_path: Path) -> None:
    from provisioning.oci import store as s
    from provisioning.oci.layout import LayoutStorage
    from provisioning.oci.memory import MemoryStorage
    from provisioning.oci.remote import RemoteStorage

    remote = RemoteStorage("127.0.0.1:9")  # never contacted
    layout = LayoutStorage(tmp_path / "store")
    memory = MemoryStorage()
    for storage in (remote, layout, memory):
        assert isinstance(storage, s.Cataloger)
    rt, lt, mt = (x.repository("ns/name") for x in (remote, layout, memory))
    for power in (s.Mounter, s.ReferencePusher, s.ReferenceFetcher, s.BlindPusher, s.Deleter, s.ReferrerLister):
        assert isinstance(rt, power), power
    for power in (s.Mounter, s.ReferencePusher, s.Deleter, s.ReferrerLister):
        assert isinstance(lt, power), power
    assert not isinstance(lt, s.BlindPusher)
    assert isinstance(mt, s.Deleter) and not isinstance(mt, s.Mounter)


def test_only_the_registry_client_imports_requests(architecture) -> None:
    outside = [
        m
        for m in architecture.report(PROJECT)["modules_importing_requests"]
        if not m.startswith("provisioning.oci.remote")
    ]
    assert outside == [], "the HTTP library belongs to provisioning/oci/remote/ only"


def test_credentials_is_a_leaf_of_the_registry_client(architecture) -> None:
    mods = architecture.scan(PROJECT, type_checking=True)
    above = {m for m in mods["provisioning.oci.credentials"].imports if m.startswith("provisioning.oci.remote")}
    assert above == set()


def test_no_import_cycle_even_for_type_checking(architecture) -> None:
    assert architecture.report(PROJECT)["import_cycles_with_type_checking"] == []


# the registry client, top to bottom: a module imports only modules below it (watch and errors are leaves
# of the stack; challenge is parsed by auth and by errors)
REMOTE_STACK = (
    "client",
    "repository",
    "upload",
    "referrers",
    "api",
    "connection",
    "auth",
    "transport",
    "retry",
    "errors",
)
REMOTE_LEAVES = ("challenge", "watch")


def test_the_registry_client_calls_down_only(architecture) -> None:
    mods = architecture.scan(PROJECT, type_checking=True)
    prefix = "provisioning.oci.remote."
    for i, name in enumerate(REMOTE_STACK):
        inside = {m[len(prefix) :] for m in mods[prefix + name].imports if m.startswith(prefix)}
        above = inside & set(REMOTE_STACK[: i + 1])
        assert above == set(), f"remote.{name} imports {sorted(above)}, which sit above it (or itself)"
        assert inside <= set(REMOTE_STACK[i + 1 :]) | set(REMOTE_LEAVES), f"remote.{name}: {sorted(inside)}"
    for leaf in REMOTE_LEAVES:
        inside = {m for m in mods[prefix + leaf].imports if m.startswith(prefix)}
        assert inside == set(), f"remote.{leaf} is a leaf of the stack, yet imports {sorted(inside)}"


def test_nothing_above_the_registry_client_catches_http_library_errors() -> None:
    import re

    http_names = re.compile(r"\b(requests|urllib3)\.|\b(RequestException|SSLError|ConnectionError|ReadTimeout)\b")
    found = []
    for path in sorted((PROJECT / "provisioning").rglob("*.py")):
        if (PROJECT / "provisioning" / "oci" / "remote") in path.parents:
            continue
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.lstrip().startswith("except") and http_names.search(line):
                found.append(f"{path.relative_to(PROJECT)}:{i}: {line.strip()}")
    assert found == [], "the registry client turns HTTP failures into our errors:\n" + "\n".join(found)


def test_the_old_module_names_are_gone() -> None:
    """``oci/auth.py`` and ``oci/transport.py`` were shims for ``oci/remote/``; nothing imports them any more."""
    assert not (PROJECT / "provisioning" / "oci" / "auth.py").exists()
    assert not (PROJECT / "provisioning" / "oci" / "transport.py").exists()
