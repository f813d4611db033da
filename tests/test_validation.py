"""Bad input gets a clear message naming the file, line and field; exit 1; no traceback."""

import shutil

import pytest
import yaml
from extension_factory import make_extension

from provisioning.cli import main
from provisioning.errors import ValidationError
from provisioning.extension import load_extension, validate_extension


def edit_manifest(ext, **changes):
    path = ext / "manifest.yaml"
    data = yaml.safe_load(path.read_text())
    data.update(changes)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def problems(ext, **kwargs) -> str:
    with pytest.raises(ValidationError) as err:
        validate_extension(ext, **kwargs)
    return str(err.value)


def test_valid_extension_passes_real_kcl_and_nu(tmp_path):
    make_extension(tmp_path, "containerd", version="1.7.0")
    ext = make_extension(tmp_path, "kubernetes", version="1.28.0", dependencies={"containerd": ">=1.7.0"})
    assert validate_extension(ext).name == "kubernetes"


def test_malformed_yaml_names_file_and_line(tmp_path):
    ext = make_extension(tmp_path, "redis")
    (ext / "manifest.yaml").write_text("name: redis\ntype: taskserv\nversion: [1.0\n")
    msg = problems(ext)
    assert "manifest.yaml:3" in msg or "manifest.yaml:4" in msg
    assert "malformed YAML" in msg


def test_empty_manifest(tmp_path):
    ext = make_extension(tmp_path, "redis")
    (ext / "manifest.yaml").write_text("")
    assert "manifest is empty" in problems(ext)


def test_wrong_types_and_invalid_semver_name_line_and_field(tmp_path):
    ext = make_extension(tmp_path, "redis")
    (ext / "manifest.yaml").write_text(
        "name: redis\ntype: taskserv\nversion: 1.0\ndescription: cache\ntags: notalist\nplatforms: [linux/sparc]\n"
    )
    msg = problems(ext)
    assert "manifest.yaml:3: version" in msg
    assert "manifest.yaml:5: tags" in msg and "'array'" in msg
    assert "manifest.yaml:6: platforms[0]" in msg


def test_bad_version_string_and_type(tmp_path):
    ext = make_extension(tmp_path, "redis")
    edit_manifest(ext, version="1.2", type="service")
    msg = problems(ext)
    assert "version: '1.2' is not a semantic version" in msg
    assert "type: 'service' is not one of provider, taskserv, cluster" in msg


def test_invalid_constraint_names_the_dependency(tmp_path):
    make_extension(tmp_path, "containerd")
    ext = make_extension(tmp_path, "kubernetes", dependencies={"containerd": ">=1.x.y.z"})
    msg = problems(ext)
    assert "dependencies.containerd" in msg and "1.x.y.z" in msg


def test_unknown_dependency_unless_declared_external(tmp_path):
    ext = make_extension(tmp_path, "kubernetes", dependencies={"containerd": ">=1.7.0"})
    assert "no extension 'containerd' in this tree" in problems(ext)
    edit_manifest(ext, external=["containerd"])
    validate_extension(ext)


def test_folder_name_must_match_manifest_name(tmp_path):
    ext = make_extension(tmp_path, "redis")
    moved = ext.parent / "valkey"
    shutil.move(ext, moved)
    msg = problems(moved)
    assert "names 'redis' but the folder is 'valkey'" in msg


def test_missing_folders_and_scripts(tmp_path):
    ext = make_extension(tmp_path, "redis")
    shutil.rmtree(ext / "docs")
    (ext / "scripts" / "check.nu").unlink()
    msg = problems(ext)
    assert "docs/README.md: missing" in msg
    assert "scripts/check.nu: missing" in msg


def test_kcl_mod_version_must_match(tmp_path):
    ext = make_extension(tmp_path, "redis", version="1.0.0")
    (ext / "kcl" / "kcl.mod").write_text('[package]\nname = "redis"\nversion = "0.9.0"\n')
    assert "kcl.mod: version '0.9.0' differs from manifest.yaml version '1.0.0'" in problems(ext)


def test_kcl_syntax_error_is_reported_with_file(tmp_path):
    ext = make_extension(tmp_path, "redis")
    (ext / "kcl" / "redis.k").write_text("schema Redis:\n    port: int =\n")
    assert "redis.k" in problems(ext)


def test_nu_syntax_error_is_reported_with_file(tmp_path):
    ext = make_extension(tmp_path, "redis")
    (ext / "scripts" / "check.nu").write_text("def main [ {\n  print (\n")
    assert "check.nu" in problems(ext)


def test_not_a_folder(tmp_path):
    with pytest.raises(ValidationError, match="no such extension folder"):
        load_extension(tmp_path / "nope")


def test_cli_validate_exit_codes(tmp_path, capsys):
    ext = make_extension(tmp_path, "redis")
    assert main(["oci", "package", "validate", str(ext)]) == 0
    edit_manifest(ext, version="one")
    assert main(["oci", "package", "validate", str(ext)]) == 1
    err = capsys.readouterr().err
    assert "manifest.yaml" in err and "version" in err and "Traceback" not in err


def test_the_catalog_repository_name_is_reserved(tmp_path, capsys):
    from provisioning.catalog import CATALOG_NAME
    from provisioning.extension import RESERVED_NAMES

    assert CATALOG_NAME in RESERVED_NAMES  # the name the catalog is written under
    ext = make_extension(tmp_path, CATALOG_NAME)
    assert main(["oci", "package", "validate", str(ext)]) == 1
    err = capsys.readouterr().err
    assert f"manifest.yaml:1: name: '{CATALOG_NAME}' is reserved" in err and "give the extension another name" in err
    assert "Traceback" not in err
    with pytest.raises(ValidationError, match="is reserved"):
        load_extension(ext)  # so publish, resolve and install refuse it too
