"""Output contracts: JSON when asked even for bad input, files named as written, the core's repository kept."""

import json

from extension_factory import make_extension

from provisioning.cli import main
from provisioning.oci.layout import LayoutStorage
from provisioning.oci.reference import parse_reference
from provisioning.package import build_artifact, build_core_artifact
from provisioning.publish import publish

PROJECT_ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent


def test_package_validate_answers_json_when_invalid_too(tmp_path, capsys):
    ext = make_extension(tmp_path / "extensions", "redis")
    assert main(["oci", "package", "validate", str(ext), "--output", "json"]) == 0
    ok = json.loads(capsys.readouterr().out)
    assert ok["valid"] is True and ok["problems"] == [] and ok["name"] == "redis"

    (ext / "kcl" / "redis.k").write_text("schema Redis:\n    port: int =\n")
    assert main(["oci", "package", "validate", str(ext), "--output", "json"]) == 1
    bad = json.loads(capsys.readouterr().out)
    assert bad["valid"] is False and bad["version"] == "1.0.0"
    assert any("redis.k" in p for p in bad["problems"])

    assert main(["oci", "package", "validate", str(tmp_path / "missing"), "--output", "json"]) == 1
    gone = json.loads(capsys.readouterr().out)
    assert gone["valid"] is False and "no such extension folder" in gone["problems"][0]


def test_package_names_the_files_it_wrote_and_the_manifest_digest(tmp_path, capsys):
    ext = make_extension(tmp_path / "extensions", "redis", version="1.2.3")
    out = tmp_path / "out"
    assert main(["oci", "package", str(ext), "--output", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    written = [line.removeprefix("wrote ") for line in lines if line.startswith("wrote ")]
    assert sorted(written) == sorted(str(p) for p in out.iterdir()) and len(written) == 3
    digest = build_artifact(ext).manifest_desc.digest
    assert lines[-1] == f"manifest digest: {digest}"


def test_copy_of_the_core_keeps_its_repository(tmp_path, capsys):
    from provisioning import __version__

    store = LayoutStorage(tmp_path / "store")
    publish(build_core_artifact(PROJECT_ROOT, __version__), store, "", tag=f"v{__version__}")
    assert parse_reference(f"provisioning-core:v{__version__}").repository == "provisioning-core"
    for i, src in enumerate(
        [f"provisioning-core:v{__version__}", str(tmp_path / "store" / f"provisioning-core:v{__version__}")]
    ):
        mirror = tmp_path / f"mirror{i}"
        assert main(["oci", "copy", src, str(mirror), "--registry", str(tmp_path / "store")]) == 0, capsys.readouterr()
        assert (mirror / "provisioning-core" / "index.json").is_file()
        assert not (mirror / "provisioning-extensions").exists()
