"""``provisioning test extension``: an extension's KCL and Nushell tests, run with the real tools."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from provisioning.checks import nu_available
from provisioning.cli import main
from provisioning.testing import run_extension_tests

PROJECT = Path(__file__).resolve().parent.parent
EXTENSIONS = PROJECT / "extensions"


@pytest.fixture(scope="session", autouse=True)
def nu() -> None:
    if not nu_available():
        pytest.fail("Nushell ('nu') is not on PATH; install it (npm install -g nushell)")


@pytest.fixture
def k8s_copy(tmp_path: Path) -> Path:
    """A private extensions tree holding a copy of kubernetes."""
    dest = tmp_path / "extensions" / "taskservs" / "kubernetes"
    shutil.copytree(EXTENSIONS / "taskservs" / "kubernetes", dest)
    return dest


def test_kubernetes_passes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["test", "extension", "kubernetes", "--extensions", str(EXTENSIONS)]) == 0
    out = capsys.readouterr().out
    assert "PASS  kcl  test_defaults" in out
    assert "PASS  nu   test_kubernetes.nu" in out
    assert "0 failed" in out


def test_report_api() -> None:
    report = run_extension_tests(EXTENSIONS / "taskservs" / "nginx-ingress")  # dashed name: imported as nginx_ingress
    assert report.ok
    assert {c.kind for c in report.passed} == {"kcl", "nu"}
    assert not report.failed
    nu_case = next(c for c in report.cases if c.kind == "nu")
    assert "3 tests passed" in nu_case.output


def test_failing_nu_test_exits_1(k8s_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    test = k8s_copy / "tests" / "test_kubernetes.nu"
    test.write_text(test.read_text().replace('["swapoff" "-a"]', '["swapoff" "--all"]'))
    assert main(["test", "extension", "kubernetes", "--extensions", str(k8s_copy.parent.parent)]) == 1
    out = capsys.readouterr().out
    assert "FAIL  nu   test_kubernetes.nu" in out
    assert "These are not equal" in out and "--all" in out
    assert "PASS  kcl  test_defaults" in out


def test_failing_kcl_test_exits_1(k8s_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    test = k8s_copy / "tests" / "kubernetes_test.k"
    test.write_text(test.read_text().replace('assert k.role == "controlplane"', 'assert k.role == "worker", "role"'))
    assert main(["test", "extension", str(k8s_copy), "--output", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and report["failed"] == 1
    [failed] = [c for c in report["cases"] if not c["passed"]]
    assert failed["name"] == "test_defaults" and failed["kind"] == "kcl"
    assert "kubernetes_test.k:" in failed["output"] and "role" in failed["output"]


def test_broken_schema_fails_the_kcl_tests(k8s_copy: Path) -> None:
    main_k = k8s_copy / "kcl" / "kubernetes.k"
    main_k.write_text(main_k.read_text().replace('pod_cidr: str = "10.244.0.0/16"', "pod_cidr: str = 10"))
    report = run_extension_tests(k8s_copy)
    assert not report.ok
    kcl_failures = [c for c in report.failed if c.kind == "kcl"]
    assert kcl_failures and any("kubernetes.k:" in c.output for c in kcl_failures)


def test_name_as_path_and_unknown_name(k8s_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["test", "extension", str(k8s_copy)]) == 0
    capsys.readouterr()
    assert main(["test", "extension", "no-such-thing", "--extensions", str(EXTENSIONS)]) == 1
    assert "no extension 'no-such-thing'" in capsys.readouterr().err


def test_default_extensions_folder(k8s_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROVISIONING_EXTENSIONS", str(k8s_copy.parent.parent))
    assert main(["test", "extension", "kubernetes"]) == 0


def test_extension_without_tests(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ext = tmp_path / "taskservs" / "bare"
    (ext / "kcl").mkdir(parents=True)
    assert run_extension_tests(ext).cases == []
    assert main(["test", "extension", "bare", "--extensions", str(tmp_path)]) == 0
    assert "no tests" in capsys.readouterr().out
