"""One definition of a valid manifest, one list of extension types, one content-layer picker.

Validation, resolve and install ask the same function (the manifest schema), so what one
accepts the others accept; pull and install pick the same layer, so an artifact is pullable
exactly when it is installable.
"""

# ruff: noqa: F811  (pytest fixtures imported from test_workspace_helpers)

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_workspace_helpers import extension_manifest, home, make_workspace, push  # noqa: F401

from provisioning.cli import main
from provisioning.extension import TYPES, manifest_problems
from provisioning.oci.descriptor import LAYER_TYPE, MANIFEST, content_layer
from provisioning.oci.layout import LayoutStorage
from provisioning.resources import resource

DIGEST = "sha256:" + "a" * 64


def layer(media_type: str) -> dict:
    return {"mediaType": media_type, "digest": DIGEST, "size": 1}


def test_the_extension_types_are_the_schemas() -> None:
    schema = json.loads(resource("schemas", "manifest.schema.json").read_text())
    assert TYPES == tuple(schema["properties"]["type"]["enum"]) == ("provider", "taskserv", "cluster")


@pytest.mark.parametrize(
    ("layers", "picked"),
    [
        ([LAYER_TYPE], LAYER_TYPE),
        (["application/vnd.oci.image.layer.v1.tar+gzip"], "application/vnd.oci.image.layer.v1.tar+gzip"),
        (["application/x-tar.gz"], "application/x-tar.gz"),
        (["application/vnd.example.tar"], "application/vnd.example.tar"),
        (["application/vnd.oci.image.layer.v1.tar+gzip", LAYER_TYPE], LAYER_TYPE),  # ours wins
    ],
)
def test_content_layer_picks_ours_else_the_only_tar(layers: list[str], picked: str) -> None:
    doc = {"mediaType": MANIFEST, "layers": [layer(t) for t in layers]}
    assert content_layer(doc).media_type == picked


@pytest.mark.parametrize(
    "doc",
    [
        {"mediaType": MANIFEST, "layers": []},
        {"mediaType": MANIFEST, "layers": [layer("application/json")]},
        {"mediaType": MANIFEST, "layers": [layer("a.tar"), layer("b.tar+gzip")]},
        {"mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []},
        {"layers": [{"mediaType": LAYER_TYPE}]},  # no digest
        ["not", "a", "manifest"],
    ],
)
def test_content_layer_refuses_what_is_not_one_extension(doc) -> None:
    with pytest.raises(ValueError):
        content_layer(doc)


def test_manifest_problems_is_the_schema() -> None:
    good = extension_manifest("redis", "7.0.0")
    assert manifest_problems(good, "redis") == []
    assert manifest_problems({**good, "dependencies": ["postgres"]}, "redis")
    assert manifest_problems({**good, "dependencies": {"postgres": "^^1"}}, "redis")
    assert manifest_problems({**good, "type": "plugin"}, "redis")
    assert manifest_problems("redis", "redis")


def test_resolve_refuses_a_manifest_the_schema_refuses(tmp_path: Path, home: Path, capsys) -> None:
    """A list of dependency names was accepted by the resolver alone; now resolve says what validation says."""
    store = LayoutStorage(tmp_path / "store")
    push(store, extension_manifest("postgres", "15.0.0"))
    push(store, {**extension_manifest("redis", "7.0.0"), "dependencies": ["postgres"]})
    ws = make_workspace(
        tmp_path / "ws",
        "dependencies:\n"
        "  extensions:\n"
        "    source_type: oci\n"
        "    oci: {registry: ../store}\n"
        "    modules:\n"
        "      taskservs: [redis]\n",
    )
    capsys.readouterr()
    assert main(["dep", "resolve", "-w", str(ws)]) == 1
    err = capsys.readouterr().err
    assert "redis:7.0.0 is not a valid extension manifest" in err and "dependencies" in err
    assert "Traceback" not in err
    assert not (ws / "extensions").exists()
