"""``run_many_extension_tests``: batched KCL and Nushell tests give the reports of running each alone.

The reference for a KCL case is the KCL test API on the one extension (``run_kcl_tests``),
for a Nushell test file its own ``nu --no-config-file tests/test_x.nu`` from the extension
folder (``run_nu_test``). Timings are printed (``pytest -s``), never asserted.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest
import yaml

from provisioning import testing
from provisioning.checks import nu_available
from provisioning.testing import (
    TestCase,
    run_extension_tests,
    run_kcl_tests,
    run_many_extension_tests,
    run_nu_test,
)

PROJECT = Path(__file__).resolve().parent.parent
EXTENSIONS = PROJECT / "extensions"
SHIPPED = sorted(p for p in EXTENSIONS.glob("*/*") if (p / "manifest.yaml").is_file())


@pytest.fixture(scope="module", autouse=True)
def nu() -> None:
    if not nu_available():
        pytest.fail("Nushell ('nu') is not on PATH; install it (npm install -g nushell)")


def essence(cases: list[TestCase]) -> list[tuple[str, str, bool, str]]:
    """What must agree between a batch and single runs (durations differ)."""
    return [(c.name, c.kind, c.passed, c.output) for c in cases]


def reference(ext_dir: Path) -> list[tuple[str, str, bool, str]]:
    """The extension's cases run the old way: the KCL test API alone, each nu test in its own process."""
    tests = ext_dir / "tests"
    cases = run_kcl_tests(ext_dir) if any(tests.glob("*_test.k")) else []
    cases += [run_nu_test(ext_dir, f) for f in sorted(tests.glob("test_*.nu"))]
    return essence(cases)


def copy_extensions(dest: Path) -> dict[str, Path]:
    """A private copy of every shipped extension: {folder name: copy}."""
    shutil.copytree(EXTENSIONS, dest)
    return {p.name: p for p in sorted(dest.glob("*/*")) if (p / "manifest.yaml").is_file()}


def renamed_copies(root: Path, n: int) -> list[Path]:
    """``n`` copies of the shipped extensions with distinct names (folder, manifest, kcl.mod, imports)."""
    copies = []
    for k in range(n):
        src = SHIPPED[k % len(SHIPPED)]
        name = yaml.safe_load((src / "manifest.yaml").read_text())["name"]
        new = f"{name}-c{k // len(SHIPPED)}"
        dest = root / src.parent.name / new
        shutil.copytree(src, dest)
        manifest = dest / "manifest.yaml"
        manifest.write_text(re.sub(r"^name: .*$", f"name: {new}", manifest.read_text(), count=1, flags=re.M))
        mod = dest / "kcl" / "kcl.mod"
        mod.write_text(re.sub(r'^name = ".*"$', f'name = "{new}"', mod.read_text(), count=1, flags=re.M))
        old_id, new_id = name.replace("-", "_"), new.replace("-", "_")
        for test in (dest / "tests").glob("*_test.k"):
            text = re.sub(rf"^import {old_id}$", f"import {new_id}", test.read_text(), flags=re.M)
            test.write_text(re.sub(rf'(?<![\w"./:-]){old_id}(?=\.)', new_id, text))
        copies.append(dest)
    return copies


def test_batch_equals_single_runs_for_every_shipped_extension() -> None:
    run_kcl_tests(SHIPPED[0])  # load the KCL library outside the timings
    start = time.perf_counter()
    batch = run_many_extension_tests(SHIPPED)
    batch_s = time.perf_counter() - start
    start = time.perf_counter()
    single = {d: run_extension_tests(d) for d in SHIPPED}
    single_s = time.perf_counter() - start
    start = time.perf_counter()
    old = {d: reference(d) for d in SHIPPED}
    old_s = time.perf_counter() - start
    print(
        f"\n{len(SHIPPED)} extensions: batch {batch_s:.2f} s, run_extension_tests one by one {single_s:.2f} s, "
        f"test API + a nu process per file {old_s:.2f} s"
    )
    assert list(batch) == SHIPPED
    for d in SHIPPED:
        assert batch[d].extension == d
        assert batch[d].ok, batch[d].summary()
        assert {c.kind for c in batch[d].cases} == {"kcl", "nu"}
        assert essence(batch[d].cases) == old[d] == essence(single[d].cases), d.name


def test_failing_nu_test_fails_only_its_extension(tmp_path: Path) -> None:
    exts = copy_extensions(tmp_path / "extensions")
    test = exts["kubernetes"] / "tests" / "test_kubernetes.nu"
    test.write_text(test.read_text().replace('["swapoff" "-a"]', '["swapoff" "--all"]'))
    reports = run_many_extension_tests(list(exts.values()))
    assert [d.name for d, r in reports.items() if not r.ok] == ["kubernetes"]
    k8s = reports[exts["kubernetes"]]
    [failed] = k8s.failed
    assert failed.kind == "nu" and failed.name == "test_kubernetes.nu"
    assert (
        "test_kubernetes.nu:" in failed.output and "These are not equal" in failed.output and "--all" in failed.output
    )
    assert essence(k8s.cases) == reference(exts["kubernetes"])
    assert "FAIL  nu   test_kubernetes.nu" in k8s.summary()


def test_failing_kcl_test_fails_only_its_extension(tmp_path: Path) -> None:
    exts = copy_extensions(tmp_path / "extensions")
    test = exts["kubernetes"] / "tests" / "kubernetes_test.k"
    test.write_text(test.read_text().replace('assert k.role == "controlplane"', 'assert k.role == "worker", "role"'))
    reports = run_many_extension_tests(list(exts.values()))
    assert [d.name for d, r in reports.items() if not r.ok] == ["kubernetes"]
    k8s = reports[exts["kubernetes"]]
    [failed] = k8s.failed
    assert failed.kind == "kcl" and failed.name == "test_defaults"
    assert "kubernetes_test.k:" in failed.output and "role" in failed.output
    assert len(k8s.passed) == len(k8s.cases) - 1  # its other KCL cases and its nu test still pass
    assert essence(k8s.cases) == reference(exts["kubernetes"])
    assert not list((exts["kubernetes"] / "tests").glob("_kcl_test_*"))


def test_broken_schema_fails_only_its_extension(tmp_path: Path) -> None:
    exts = copy_extensions(tmp_path / "extensions")
    main_k = exts["kubernetes"] / "kcl" / "kubernetes.k"
    main_k.write_text(main_k.read_text().replace('pod_cidr: str = "10.244.0.0/16"', "pod_cidr: str = 10"))
    reports = run_many_extension_tests(list(exts.values()))
    assert [d.name for d, r in reports.items() if not r.ok] == ["kubernetes"]
    k8s = reports[exts["kubernetes"]]
    assert [(c.name, c.kind) for c in k8s.failed] == [("kcl (compile)", "kcl")]
    assert "kubernetes.k:" in k8s.failed[0].output
    assert essence(k8s.cases) == reference(exts["kubernetes"])
    assert not list((exts["kubernetes"] / "tests").glob("_kcl_test_*"))  # the API's leftover is cleaned up


def test_nu_syntax_error_fails_only_that_test(tmp_path: Path) -> None:
    exts = copy_extensions(tmp_path / "extensions")
    test = exts["etcd"] / "tests" / "test_etcd.nu"
    test.write_text(test.read_text() + "\ndef broken [] { print ( }\n")
    reports = run_many_extension_tests(list(exts.values()))
    assert [d.name for d, r in reports.items() if not r.ok] == ["etcd"]
    [failed] = reports[exts["etcd"]].failed
    assert failed.name == "test_etcd.nu" and "test_etcd.nu:" in failed.output and "Unbalanced" in failed.output
    assert essence(reports[exts["etcd"]].cases) == reference(exts["etcd"])


# Test files whose exit status or output a shared process could get wrong if it were not careful.
EDGE_TESTS = {
    "test_a_exit0.nu": 'use ../scripts/lib.nu [bye]\ndef main [] { print "leaving"; bye 0; print "unreached" }\n',
    "test_b_exit3.nu": 'def main [] { print "failing exit"; exit 3 }\n',
    "test_c_external_last.nu": 'def main [] { print "before"; ^sh -c "echo out; exit 2" }\n',
    "test_d_returns.nu": "def main [] { {answer: 42} }\n",
    "test_e_no_main.nu": (
        "use std/assert\nuse ../scripts/lib.nu [twice]\nassert equal (twice 2) 4\n"
        '$env.LEAKED = "yes"\ncd scripts\ndef helper_from_e [] { "e" }\nprint $"top level in (pwd | path basename)"\n'
    ),
    "test_f_isolated.nu": (
        'use std/assert\ndef main [] {\n    assert ("LEAKED" not-in $env)\n'
        '    assert equal (pwd | path basename) "edgy"\n    print "isolated"\n}\n'
    ),
    "test_g_other_files_def.nu": "def main [] { helper_from_e }\n",
    "test_h_file_pwd.nu": "def main [] { print ($env.FILE_PWD | path basename) }\n",
    "test_i_syntax.nu": "def main [] { print ( }\n",
    "test_j_main_needs_args.nu": "def main [x: int] { print $x }\n",
    "test_k_stderr.nu": 'def main [] { print -e "to stderr"; print -n "no newline" }\n',
    "test_l_assert.nu": (
        "use std/assert\nuse ../scripts/lib.nu [twice]\n"
        'def main [] { print "partial"; assert equal (twice 2) 5; print "never" }\n'
    ),
    "test_m_mentions_main.nu": '# no main here\nprint "plain"\n',
    "test_n_ok.nu": "use ../scripts/lib.nu [twice]\ndef main [] { print (twice 21) }\n",
    "test_o_external_midway.nu": 'def main [] { ^false; print "after false" }\n',
    "test_p_process_path.nu": "def main [] { print $env.PROCESS_PATH }\n",
    # parse-time warning (nu 0.106+): printed by its own process before anything else
    "test_q_deprecated_flag.nu": "def main [] { print ({a: 1} | get -i a) }\n",
}


def edge_extension(root: Path) -> Path:
    ext = root / "taskservs" / "edgy"
    (ext / "scripts").mkdir(parents=True)
    (ext / "tests").mkdir()
    (ext / "scripts" / "lib.nu").write_text(
        "export def twice [x: int] { $x * 2 }\nexport def bye [code: int] { exit $code }\n"
    )
    for name, text in EDGE_TESTS.items():
        (ext / "tests" / name).write_text(text)
    return ext


def test_nu_batch_agrees_with_own_processes_on_edge_cases(tmp_path: Path) -> None:
    ext = edge_extension(tmp_path)
    drivers: list[int] = []
    real_run = testing.nu_batch._NuDriver.run

    def counting_run(self: testing.nu_batch._NuDriver) -> testing.nu_batch._NuOutcome:
        drivers.append(len(self.tests))
        return real_run(self)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(testing.nu_batch._NuDriver, "run", counting_run)
        report = run_extension_tests(ext)
    assert drivers  # batched (exits, syntax errors and the rest fall back inside)
    assert essence(report.cases) == reference(ext)
    outcome = {c.name: c.passed for c in report.cases if c.name != "test_q_deprecated_flag.nu"}
    assert outcome == {
        "test_a_exit0.nu": True,
        "test_b_exit3.nu": False,
        "test_c_external_last.nu": False,
        "test_d_returns.nu": True,
        "test_e_no_main.nu": True,
        "test_f_isolated.nu": True,  # nothing leaks from test_e: env, folder
        "test_g_other_files_def.nu": False,  # nor definitions
        "test_h_file_pwd.nu": True,
        "test_i_syntax.nu": False,
        "test_j_main_needs_args.nu": False,
        "test_k_stderr.nu": True,
        "test_l_assert.nu": False,
        "test_m_mentions_main.nu": True,
        "test_n_ok.nu": True,
        "test_o_external_midway.nu": False,
        "test_p_process_path.nu": True,
    }
    cases = {c.name: c for c in report.cases}
    assert cases["test_h_file_pwd.nu"].output == "tests"
    assert cases["test_p_process_path.nu"].output == "tests/test_p_process_path.nu"
    assert "answer" in cases["test_d_returns.nu"].output and "42" in cases["test_d_returns.nu"].output
    assert (
        cases["test_l_assert.nu"].output.startswith("partial\n")
        and "test_l_assert.nu:" in cases["test_l_assert.nu"].output
    )


def test_nu_batch_failures_beyond_the_cap_keep_the_batch_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ext = edge_extension(tmp_path)
    monkeypatch.setattr(testing.limits, "NU_CONFIRM_MAX", 0)
    cases = {c.name: c for c in run_extension_tests(ext).cases}
    failed = cases["test_l_assert.nu"]
    assert not failed.passed
    assert (
        failed.output.startswith("partial\n")
        and "test_l_assert.nu:" in failed.output
        and "Assertion failed" in failed.output
    )
    assert not cases["test_g_other_files_def.nu"].passed and cases["test_n_ok.nu"].passed


def test_nu_timeout_stops_one_test_not_the_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ext = tmp_path / "taskservs" / "slow"
    (ext / "tests").mkdir(parents=True)
    (ext / "tests" / "test_1_quick.nu").write_text('def main [] { print "quick" }\n')
    (ext / "tests" / "test_2_slow.nu").write_text("def main [] { sleep 30sec }\n")
    (ext / "tests" / "test_3_after.nu").write_text('def main [] { print "after" }\n')
    monkeypatch.setattr(testing.limits, "NU_TEST_TIMEOUT", 3)
    start = time.perf_counter()
    cases = {c.name: c for c in run_extension_tests(ext).cases}
    assert time.perf_counter() - start < 20
    assert cases["test_1_quick.nu"].passed and cases["test_3_after.nu"].passed
    assert not cases["test_2_slow.nu"].passed and "timed out after 3 s" in cases["test_2_slow.nu"].output


def test_kcl_batches_agree_with_the_test_api(tmp_path: Path) -> None:
    """Renamed copies share programs; broken ones are found and run alone; same-named ones do not collide."""
    copies = renamed_copies(tmp_path / "many", 30)
    by_name = {d.name: d for d in copies}
    k0 = by_name["kubernetes-c0"] / "tests" / "kubernetes_test.k"
    k0.write_text(k0.read_text().replace('assert k.role == "controlplane"', 'assert k.role == "worker", "role"'))
    k1 = by_name["kubernetes-c1"] / "tests" / "kubernetes_test.k"
    k1.write_text(k1.read_text().replace('assert k.role == "controlplane"', 'assert k.no_such_attribute == "x"'))
    e0 = by_name["etcd-c0"] / "tests" / "etcd_test.k"
    e0.write_text(e0.read_text() + "\n_unused = [1][5]\n")  # evaluated by the API for every case
    r1 = by_name["redis-c1"] / "tests" / "redis_test.k"
    r1.write_text(r1.read_text() + '\nassert 1 == 2, "top level"\n')  # not batchable: the API runs it
    h0 = by_name["helm-c0"] / "tests" / "helm_test.k"  # another extension: known to a batch, not to the API
    h0.write_text(
        "import postgres_c0\n" + h0.read_text() + "\ntest_x = lambda {\n    assert postgres_c0.Postgres {}\n}\n"
    )
    twin = tmp_path / "other" / "taskservs" / "kubernetes"
    shutil.copytree(EXTENSIONS / "taskservs" / "kubernetes", twin)  # same package name as the shipped one
    dirs = [*copies, EXTENSIONS / "taskservs" / "kubernetes", twin]

    start = time.perf_counter()
    batch = run_many_extension_tests(dirs)
    print(f"\n{len(dirs)} extensions in one batch: {time.perf_counter() - start:.2f} s")
    failing = sorted(d.name for d, r in batch.items() if not r.ok)
    assert failing == ["etcd-c0", "helm-c0", "kubernetes-c0", "kubernetes-c1", "redis-c1"]
    for d in dirs:
        kcl_cases = [c for c in batch[d].cases if c.kind == "kcl"]
        assert essence(kcl_cases) == essence(run_kcl_tests(d)), d
        assert not list((d / "tests").glob("_kcl_test_*"))


def test_paths_given_twice_or_spelled_differently(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(PROJECT)
    relative = Path("extensions/taskservs/etcd")
    absolute = EXTENSIONS / "taskservs" / "etcd"
    reports = run_many_extension_tests([relative, absolute, relative])
    assert list(reports) == [relative, absolute]
    assert reports[relative].extension == relative and reports[absolute].extension == absolute
    assert essence(reports[relative].cases) == essence(reports[absolute].cases)
    assert reports[relative].ok and len(reports[relative].cases) == 4


def test_summary() -> None:
    report = testing.TestReport(
        Path("x"), [TestCase("test_a", "kcl", True), TestCase("test_b.nu", "nu", False, "line 1\nline 2")]
    )
    assert report.summary() == "x: 1 passed, 1 failed\n  FAIL  nu   test_b.nu\n        line 1\n        line 2"
