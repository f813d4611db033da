"""One Nushell test file in its own ``nu`` process from the extension folder: the reference semantics a batch
must agree with."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from . import limits
from .report import TestCase

_NO_NU = "Nushell ('nu') is not on PATH; install it (for example `npm install -g nushell`)"


@dataclass(frozen=True)
class _NuTest:
    ext_dir: Path  # resolved
    file: Path  # resolved

    @property
    def rel(self) -> Path:
        return self.file.relative_to(self.ext_dir)


def run_nu_test(ext_dir: Path, test: Path) -> TestCase:
    """One test file in its own ``nu`` from the extension folder: what a batch must agree with."""
    return _run_nu_test(_NuTest(Path(ext_dir).resolve(), Path(test).resolve()))


def _run_nu_test(test: _NuTest) -> TestCase:
    """``nu --no-config-file tests/test_x.nu`` from the extension folder: the reference semantics."""
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            ["nu", "--no-config-file", str(test.rel)],
            cwd=test.ext_dir,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=limits.NU_TEST_TIMEOUT,
            env=_nu_env(),
        )
    except subprocess.TimeoutExpired:
        return _timed_out(test)
    return TestCase(test.file.name, "nu", proc.returncode == 0, _joined(proc.stdout, proc.stderr), _ms_since(start))


def _timed_out(test: _NuTest) -> TestCase:
    return TestCase(
        test.file.name, "nu", False, f"timed out after {limits.NU_TEST_TIMEOUT} s", limits.NU_TEST_TIMEOUT * 1000.0
    )


def _joined(stdout: str, stderr: str) -> str:
    return "\n".join(part.strip() for part in (stdout, stderr) if part.strip())


def _ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1000


def _nu_env() -> dict[str, str]:
    return {**os.environ, "NO_COLOR": "1"}
