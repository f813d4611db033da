"""``test extension``: run an extension's own tests with the real tools.

An extension's ``tests/`` holds Nushell tests (``test_*.nu``, run with ``nu`` from the
extension folder, so they can ``use ../scripts/x.nu``) and KCL tests (``*_test.k``, run
with the KCL test API; they ``import <name>`` for the extension's package, whose own
``import provisioning`` resolves to the core's base schemas).
"""

from __future__ import annotations

import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .checks import (
    format_kcl_diagnostics,
    kcl_api,
    kcl_external_pkgs,
    kcl_identifier,
    nu_available,
    parse_kcl_diagnostics,
    strip_ansi,
)

NU_TEST_TIMEOUT = 600


@dataclass
class TestCase:
    """One test: a KCL test lambda or one Nushell test file."""

    __test__ = False  # not a pytest class

    name: str
    kind: str  # "kcl" or "nu"
    passed: bool
    output: str = ""
    duration_ms: float = 0.0


@dataclass
class TestReport:
    """Every test of one extension; ``ok`` when there were tests and none failed."""

    __test__ = False

    extension: Path
    cases: list[TestCase] = field(default_factory=list)

    @property
    def passed(self) -> list[TestCase]:
        return [c for c in self.cases if c.passed]

    @property
    def failed(self) -> list[TestCase]:
        return [c for c in self.cases if not c.passed]

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict[str, Any]:
        return {
            "extension": str(self.extension),
            "ok": self.ok,
            "passed": len(self.passed),
            "failed": len(self.failed),
            "cases": [asdict(c) for c in self.cases],
        }


def run_extension_tests(ext_dir: Path) -> TestReport:
    """Run the KCL and Nushell tests under ``ext_dir/tests``; failures are in the report, not raised."""
    ext_dir = Path(ext_dir)
    report = TestReport(ext_dir)
    tests = ext_dir / "tests"
    if not tests.is_dir():
        return report
    if any(tests.glob("*_test.k")):
        report.cases.extend(run_kcl_tests(ext_dir))
    nu_tests = sorted(tests.glob("test_*.nu"))
    if nu_tests:
        report.cases.extend(run_nu_tests(ext_dir, nu_tests))
    return report


def package_name(ext_dir: Path) -> str:
    """The extension's name (manifest, else folder) as KCL code imports it."""
    name = ext_dir.resolve().name
    try:
        manifest = yaml.safe_load((ext_dir / "manifest.yaml").read_text(encoding="utf-8"))
        if isinstance(manifest, dict) and isinstance(manifest.get("name"), str):
            name = manifest["name"]
    except (OSError, yaml.YAMLError):
        pass
    return kcl_identifier(name)


def run_kcl_tests(ext_dir: Path) -> list[TestCase]:
    """``*_test.k`` files of ``tests/``: one case per ``test_*`` lambda."""
    api = kcl_api()
    tests = (ext_dir / "tests").resolve()
    args = api.TestArgs(
        exec_args=api.ExecProgramArgs(
            work_dir=str(tests),
            external_pkgs=kcl_external_pkgs({package_name(ext_dir): (ext_dir / "kcl").resolve()}),
        ),
        pkg_list=[str(tests)],
    )
    start = time.perf_counter()
    try:
        result = api.API().test(args)
    except Exception as exc:  # the tests (or the schemas they import) do not compile
        return [
            TestCase(
                name="kcl (compile)",
                kind="kcl",
                passed=False,
                output=_kcl_output(str(exc)),
                duration_ms=(time.perf_counter() - start) * 1000,
            )
        ]
    return [
        TestCase(
            name=info.name,
            kind="kcl",
            passed=not info.error,
            output=_kcl_output(info.error) if info.error else strip_ansi(info.log_message),
            duration_ms=info.duration / 1000,  # microseconds
        )
        for info in result.info
    ]


def _kcl_output(text: str) -> str:
    messages = format_kcl_diagnostics(parse_kcl_diagnostics(text))
    return "\n".join(messages) if messages else strip_ansi(text).strip()


def run_nu_tests(ext_dir: Path, files: list[Path]) -> list[TestCase]:
    """Each ``test_*.nu`` runs in its own ``nu`` from the extension folder; exit 0 means passed."""
    if not nu_available():
        return [
            TestCase(
                name=f.name,
                kind="nu",
                passed=False,
                output="Nushell ('nu') is not on PATH; install it (for example `npm install -g nushell`)",
            )
            for f in files
        ]
    with ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool:
        return list(pool.map(lambda f: _run_nu_test(ext_dir, f), files))


def _run_nu_test(ext_dir: Path, test: Path) -> TestCase:
    start = time.perf_counter()
    rel = test.resolve().relative_to(ext_dir.resolve())
    try:
        proc = subprocess.run(
            ["nu", "--no-config-file", str(rel)],
            cwd=ext_dir,
            capture_output=True,
            text=True,
            timeout=NU_TEST_TIMEOUT,
            env={**os.environ, "NO_COLOR": "1"},
        )
    except subprocess.TimeoutExpired:
        return TestCase(test.name, "nu", False, f"timed out after {NU_TEST_TIMEOUT} s", NU_TEST_TIMEOUT * 1000.0)
    output = "\n".join(part.strip() for part in (proc.stdout, proc.stderr) if part.strip())
    return TestCase(test.name, "nu", proc.returncode == 0, output, (time.perf_counter() - start) * 1000)
