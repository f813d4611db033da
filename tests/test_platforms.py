"""Platforms are OCI's os/arch[/variant], in the schema, validation, the config blob and at install."""

import json

import pytest
from extension_factory import make_extension

from provisioning.errors import ValidationError
from provisioning.extension import validate_extension
from provisioning.package import build_artifact
from provisioning.platforms import Platform, PlatformError, parse_platform, schema_pattern, supports
from provisioning.workspace.sources.oci import check_extracted
from provisioning.yamlfile import load_schema

GOOD = [
    "linux/amd64",
    "linux/arm64",
    "linux/arm64/v8",
    "linux/arm/v7",
    "linux/arm/v6",
    "linux/amd64/v3",
    "windows/amd64",
    "darwin/arm64",
    "linux/riscv64",
    "linux/s390x",
    "freebsd/386",
]
BAD = [
    "linux/sparc",
    "linux",
    "linux/arm/v9",
    "linux/386/v1",
    "Linux/amd64",
    "linux/amd64/",
    "beos/amd64",
    "linux/x86_64",
    "linux/arm64/v8/extra",
]


def test_the_manifest_schema_carries_the_same_grammar():
    item = load_schema("manifest.schema.json")["properties"]["platforms"]["items"]
    assert item["pattern"] == schema_pattern()


@pytest.mark.parametrize("text", GOOD)
def test_oci_platforms_are_accepted(text):
    p = parse_platform(text)
    assert str(p) == text
    assert set(p.to_oci()) <= {"os", "architecture", "variant"}


@pytest.mark.parametrize("text", BAD)
def test_other_strings_are_refused_with_the_allowed_forms(text):
    with pytest.raises(PlatformError) as err:
        parse_platform(text)
    assert "os/arch or os/arch/variant" in str(err.value) and "linux/arm/v7" in str(err.value)


def test_validation_accepts_variants_and_refuses_others_naming_the_forms(tmp_path):
    ext = make_extension(tmp_path, "redis", platforms=["linux/amd64", "linux/arm64/v8", "linux/arm/v7"])
    assert validate_extension(ext).name == "redis"
    config = json.loads(build_artifact(ext, use_git=False).config)
    assert config["platforms"] == ["linux/amd64", "linux/arm64/v8", "linux/arm/v7"]

    bad = make_extension(tmp_path / "other", "redis", platforms=["linux/arm/v7", "linux/sparc"])
    with pytest.raises(ValidationError) as err:
        validate_extension(bad)
    msg = str(err.value)
    assert "platforms[1]" in msg and "'linux/sparc' is not an OCI platform" in msg
    assert "arch is one of 386, amd64, arm, arm64" in msg and "platforms[0]" not in msg


def test_host_support():
    arm7 = Platform("linux", "arm", "v7")
    assert supports(["linux/arm/v7"], arm7) and supports(["linux/arm"], arm7)
    assert not supports(["linux/arm/v6"], arm7) and not supports(["linux/arm64"], arm7)
    assert supports(["linux/amd64/v2"], Platform("linux", "amd64")) and supports([], arm7)


def test_install_refuses_an_artifact_listing_a_bad_platform(tmp_path):
    class Entry:
        name, version, dependencies = "redis", "1.0.0", {}

    folder = tmp_path / "redis"
    folder.mkdir()
    head = "name: redis\ntype: taskserv\nversion: 1.0.0\ndescription: cache\n"
    (folder / "manifest.yaml").write_text(head + "platforms: [linux/arm/v7]\n")
    check_extracted(folder, Entry())
    (folder / "manifest.yaml").write_text(head + "platforms: [linux/arm/v7, sparc]\n")
    bad = r"redis 1.0.0: manifest.yaml: platforms\[1\]: 'sparc' is not an OCI platform"
    with pytest.raises(ValidationError, match=bad):
        check_extracted(folder, Entry())
