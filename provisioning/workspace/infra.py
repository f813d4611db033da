"""Infras: ``WORKSPACE/infra/ENV/settings.yaml`` and the values it gives each extension.

An infra names its provider, its servers, shared ``settings``, extra template ``vars`` and, per
taskserv, cluster and provider, the values to install it with. The values are held to the
extension's own KCL schema (the one that extends ``provisioning.TaskServ``, ``Cluster`` or
``ProviderConfig``), evaluated in-process with kcl-lib: types, unknown keys, required fields
and ``check:`` rules, each error named by file, line and field of settings.yaml. What comes
back (the values with the schema's defaults filled in) is what the templates see.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import yamlfile
from ..checks import KclDiagnostic, kcl_api, kcl_external_pkgs, kcl_sources, parse_kcl_diagnostics
from ..errors import NotFound, ValidationError
from ..yamlfile import field_path
from .config import CONFIG_RELPATH, PLURALS, TYPES, display_path, load_yaml

INFRA_DIR = "infra"
SETTINGS = "settings.yaml"
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# the base schema an extension's main schema extends, per type
_BASES = {"taskserv": "TaskServ", "cluster": "Cluster", "provider": "ProviderConfig"}
_KCL_KINDS: dict[str, type] = {"int": int, "float": float, "str": str, "bool": bool, "list": list, "dict": dict}
_SCHEMA_LINE = re.compile(r"^schema\s+(\w+)\s*\(\s*provisioning\.(\w+)\s*\)\s*:", re.M)


def check_infra_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise ValidationError(
            f"infra name {name!r}: use lowercase letters, digits, '.', '_' and '-' (it is a folder under infra/)"
        )
    return name


# --------------------------------------------------------------------------- finding things


def is_workspace(path: Path) -> bool:
    return (path / CONFIG_RELPATH).is_file()


def find_workspace(workspace: str | os.PathLike[str] | None, infra: str) -> Path:
    """The workspace: ``--workspace``, else $PROVISIONING_WORKSPACE, else the current folder or a parent.

    In a folder that is not a workspace, the one workspace directly below it that holds
    ``infra/ENV`` is used (the seed runs ``taskserv create`` beside ``module load … WORKSPACE``).
    """
    named = workspace or os.environ.get("PROVISIONING_WORKSPACE")
    if named:
        root = Path(named).expanduser().absolute()
        if not is_workspace(root):
            raise NotFound(
                f"{display_path(root)} is not a workspace ({display_path(root / CONFIG_RELPATH)} does not exist); "
                "create one with `provisioning workspace init PATH`"
            )
        return root
    here = Path.cwd()
    for folder in (here, *here.parents):
        if is_workspace(folder):
            return folder
    below = sorted(p for p in here.iterdir() if p.is_dir() and is_workspace(p) and (p / INFRA_DIR / infra).is_dir())
    if len(below) == 1:
        return below[0]
    if below:
        names = ", ".join(display_path(p) for p in below)
        raise ValidationError(f"infra {infra} exists in several workspaces here ({names}): pass --workspace PATH")
    raise NotFound(
        "no workspace here: run inside one, pass --workspace PATH or set PROVISIONING_WORKSPACE "
        "(`provisioning workspace init PATH` creates one)"
    )


def find_extension(root: Path, type_: str, name: str, *, source: str | None, path: str | None) -> Path:
    """The installed extension (``WORKSPACE/extensions/TYPEs/NAME``), or with ``--source local`` the local folder."""
    from . import find_local_extension

    installed = root / "extensions" / f"{type_}s" / name
    if source != "local" and not path and (installed / "manifest.yaml").is_file():
        return installed
    if source == "oci":
        known = sorted(p.name for p in (root / "extensions" / f"{type_}s").glob("*") if (p / "manifest.yaml").is_file())
        close = difflib.get_close_matches(name, known, n=3)
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        raise NotFound(
            f"{type_} {name} is not installed in {display_path(root)}{hint}: add it to the config's modules and run "
            "`provisioning dep resolve`, or use --source local"
        )
    try:
        return find_local_extension(type_, name, path, root)
    except NotFound as exc:
        known = sorted(
            {p.name for base in (root / "extensions", Path.cwd() / "extensions") for p in base.glob(f"{type_}s/*")}
        )
        close = difflib.get_close_matches(name, known, n=3)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise NotFound(f"unknown {type_} {name}: not installed in {display_path(root)} and {exc}{hint}") from None


def main_schemas(ext_dir: Path) -> dict[str, str]:
    """{base: schema} for the extension's schemas that extend a base schema (``Redis`` for ``TaskServ``)."""
    found: dict[str, str] = {}
    for source in kcl_sources(ext_dir):
        for m in _SCHEMA_LINE.finditer(source.read_text(encoding="utf-8")):
            found.setdefault(m.group(2), m.group(1))
    return found


# --------------------------------------------------------------------------- the infra file


@dataclass(frozen=True)
class Infra:
    """One ``infra/ENV/settings.yaml``, schema-checked."""

    name: str
    root: Path  # the workspace
    folder: Path
    file: Path
    doc: dict[str, Any]

    @property
    def provider(self) -> str:
        return str(self.doc.get("provider") or "local")

    @property
    def servers(self) -> list[dict[str, Any]]:
        return [dict(s) for s in self.doc.get("servers") or []]

    @property
    def settings(self) -> dict[str, Any]:
        return dict(self.doc.get("settings") or {})

    @property
    def vars(self) -> dict[str, Any]:
        return dict(self.doc.get("vars") or {})

    def values(self, type_: str, name: str) -> dict[str, Any]:
        return dict((self.doc.get(f"{type_}s") or {}).get(name) or {})

    def where(self, path: list[Any]) -> str:
        line = yamlfile.line_of(self.doc, path)
        return f"{display_path(self.file)}:{line}" if line else display_path(self.file)


def load_infra(root: Path, name: str) -> Infra:
    check_infra_name(name)
    folder = root / INFRA_DIR / name
    file = folder / SETTINGS
    if not file.is_file():
        known = sorted(p.parent.name for p in (root / INFRA_DIR).glob(f"*/{SETTINGS}"))
        close = difflib.get_close_matches(name, known, n=3)
        hint = f" (did you mean {' or '.join(close)}?)" if close else (f"; infras: {', '.join(known)}" if known else "")
        raise NotFound(
            f"no infra {name} in {display_path(root)}: {display_path(file)} does not exist{hint}. Create it with a "
            "provider and values per taskserv (see docs/infra.md)"
        )
    doc = load_yaml(file)
    if doc is None:
        doc = yamlfile.LineDict()
    errors = yamlfile.schema_errors(doc, "infra.schema.json", display_path(file))
    if errors:
        raise ValidationError("\n".join(errors[:10]))
    return Infra(name=name, root=root, folder=folder, file=file, doc=doc)


# --------------------------------------------------------------------------- KCL evaluation


@dataclass
class _Item:
    """One schema instance to evaluate: which schema, the values, where they sit in settings.yaml."""

    out: str
    schema: str
    values: dict[str, Any]
    at: list[Any]
    label: str
    lines: dict[int, str] = field(default_factory=dict)  # generated line -> key


def kcl_literal(value: Any, where: str) -> str:
    """A YAML value as KCL source (strings escaped, ``${`` kept literal)."""
    if value is None:
        return "None"
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationError(f"{where}: {value!r} is not a finite number")
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value).replace("$", "\\$")
    if isinstance(value, list):
        return "[" + ", ".join(kcl_literal(v, where) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{kcl_literal(str(k), where)}: {kcl_literal(v, where)}" for k, v in value.items()) + "}"
    raise ValidationError(f"{where}: {value!r} is a {type(value).__name__}; write a string, number, list or mapping")


def _program(package: str, items: list[_Item], infra: Infra) -> str:
    lines = [f"import {package} as _ext", ""]
    for item in items:
        lines.append(f"{item.out} = _ext.{item.schema} {{")
        item.lines[len(lines)] = ""
        for key, value in item.values.items():
            where = f"{infra.where([*item.at, key])}: {item.label}.{key}"
            if not isinstance(key, str) or not _IDENT.match(key):
                raise ValidationError(f"{where}: {key!r} is not a setting name (letters, digits and '_')")
            lines.append(f"    {json.dumps(key)} = {kcl_literal(value, where)}")
            item.lines[len(lines)] = key
        lines.append("}")
        item.lines[len(lines)] = ""
    return "\n".join(lines) + "\n"


def evaluate(ext_dir: Path, items: list[_Item], infra: Infra) -> dict[str, Any]:
    """Instantiate each item's schema from the extension's KCL package; {out: values with defaults}."""
    from ..testing import package_name

    api = kcl_api()
    package = package_name(ext_dir)
    source = _program(package, items, infra)
    with tempfile.TemporaryDirectory(prefix="provisioning-infra-") as tmp:
        main = Path(tmp) / "infra_values.k"
        main.write_text(source, encoding="utf-8")
        args = api.ExecProgramArgs(
            work_dir=tmp,
            k_filename_list=[str(main)],
            external_pkgs=kcl_external_pkgs({package: (ext_dir / "kcl").resolve()}),
        )
        try:
            result = api.API().exec_program(args)
            err = result.err_message
        except Exception as exc:  # kcl-lib raises a bare Exception carrying the diagnostics
            result, err = None, str(exc)
        if err:
            raise ValidationError(_explain(parse_kcl_diagnostics(err), items, infra, main, ext_dir))
        assert result is not None
        values = json.loads(result.json_result or "{}")
        # optional attributes left unset are absent from the result; templates see them as None (KCL's meaning)
        types = api.API().get_schema_type_mapping(api.GetSchemaTypeMappingArgs(exec_args=args)).schema_type_mapping
    for item in items:
        if item.out in types and isinstance(values.get(item.out), dict):
            _fill_optional(values[item.out], types[item.out])
    return values


def _fill_optional(value: dict[str, Any], kcl_type: Any) -> None:
    for name, prop in kcl_type.properties.items():
        if name not in value:
            value[name] = None
        elif prop.type == "schema" and isinstance(value[name], dict):
            _fill_optional(value[name], prop)
        elif prop.type == "list" and prop.item.type == "schema" and isinstance(value[name], list):
            for element in value[name]:
                if isinstance(element, dict):
                    _fill_optional(element, prop.item)


def _explain(diagnostics: list[KclDiagnostic], items: list[_Item], infra: Infra, main: Path, ext_dir: Path) -> str:
    """KCL's errors in the user's terms: settings.yaml line and field, the schema's rule or type."""
    messages: list[str] = []
    broken: list[str] = []
    for diag in diagnostics:
        ours = [p for p in diag.places if p.file.name == main.name]
        theirs = [p for p in diag.places if p.file.name != main.name]
        item, key = None, ""
        for place in ours:
            for it in items:
                if place.line in it.lines:
                    item, key = it, it.lines[place.line] or key
        reason = next((p.label for p in diag.places if p.label and p.label != "Instance check failed"), "")
        reason = reason.removeprefix("Check failed on the condition: ")
        reason = reason.replace("_ext.", "") or diag.text or diag.kind
        rule = next((p for p in theirs), None)
        rule_text = ""
        if rule is not None:
            try:
                rel = rule.file.resolve().relative_to(ext_dir.resolve())
                rule_text = f" ({ext_dir.name}/{rel.as_posix()}:{rule.line})"
            except ValueError:
                rule_text = f" ({rule.file.name}:{rule.line})"
        if item is None and not ours:  # the extension's own KCL fails, whatever the infra says
            broken.append(f"{reason}{rule_text}")
            continue
        if item is None:
            msg = f"{display_path(infra.file)}: {reason}{rule_text}"
        else:
            path = [*item.at, key] if key else list(item.at)
            if key and rule is not None:  # a nested value: the attribute the schema line declares
                got = re.search(r"got (\w+)", reason)
                wrong = _KCL_KINDS.get(got.group(1)) if got else None
                path += _inner_path(item.values.get(key), _declared_attribute(rule.file, rule.line), wrong)
            label = field_path(path)
            msg = f"{infra.where(path)}: {label}: {reason}{rule_text}"
        where_key = msg.split(": ", 2)[:2]
        if not any(m.split(": ", 2)[:2] == where_key for m in messages):  # one message per field
            messages.append(msg)
    if broken and not messages:
        return (
            f"{display_path(ext_dir)}: the extension's KCL does not evaluate: "
            + "; ".join(dict.fromkeys(broken))
            + f"; fix the extension (`provisioning test extension {display_path(ext_dir)}`), nothing was written"
        )
    if not messages:
        messages.append(f"{display_path(infra.file)}: the values do not fit the extension's schema")
    return "\n".join(messages) + f"\nfix {display_path(infra.file)} (nothing was written)"


def _declared_attribute(file: Path, line: int) -> str | None:
    """``ip`` for a schema line ``    ip: str``."""
    try:
        text = file.read_text(encoding="utf-8").splitlines()[line - 1]
    except (OSError, IndexError, UnicodeDecodeError):
        return None
    m = re.match(r"^\s+(\w+)\??\s*:", text)
    return m.group(1) if m else None


def _inner_path(value: Any, attr: str | None, kind: type | None = None) -> list[Any]:
    """Where ``attr`` sits inside a nested value (first match of that ``kind``, depth first); [] if nowhere."""
    if attr is None:
        return []
    if isinstance(value, dict):
        if attr in value and (kind is None or _is_kind(value[attr], kind)):
            return [attr]
        for k, v in value.items():
            if found := _inner_path(v, attr, kind):
                return [k, *found]
    elif isinstance(value, list):
        for i, v in enumerate(value):
            if found := _inner_path(v, attr, kind):
                return [i, *found]
    return []


def _is_kind(value: Any, kind: type) -> bool:
    return isinstance(value, kind) and not (kind is int and isinstance(value, bool))


def schema_of(ext_dir: Path, type_: str, name: str) -> str:
    schemas = main_schemas(ext_dir)
    base = _BASES[type_]
    if base not in schemas:
        raise ValidationError(
            f"{display_path(ext_dir)}: no schema extends provisioning.{base} in kcl/*.k, so the infra's values for "
            f"{name} cannot be checked; declare `schema {name.title().replace('-', '')}(provisioning.{base})`"
        )
    return schemas[base]


def check_values(infra: Infra, ext_dir: Path, type_: str, name: str) -> dict[str, Any]:
    """The template context: the extension's values (checked, defaults filled in) and the infra's data.

    For a provider, its servers and server defaults are checked against its ``Server*`` schemas too.
    """
    type_ = PLURALS.get(type_, type_)
    if type_ not in TYPES:
        raise ValidationError(f"unknown extension type {type_!r}: expected one of {', '.join(TYPES)}")
    plural = f"{type_}s"
    values = infra.values(type_, name)
    items = [_Item("item_values", schema_of(ext_dir, type_, name), values, [plural, name], f"{plural}.{name}")]
    servers = infra.servers
    mine: list[int] = []
    if type_ == "provider":
        schemas = main_schemas(ext_dir)
        defaults_doc = dict((infra.doc.get("defaults") or {}).get(name) or {})
        if "ServerDefaults" in schemas:
            at = ["defaults", name]
            items.append(_Item("item_defaults", schemas["ServerDefaults"], defaults_doc, at, f"defaults.{name}"))
        if "Server" in schemas:
            for i, server in enumerate(servers):
                if str(server.get("provider") or infra.provider) == name:
                    items.append(_Item(f"item_server_{i}", schemas["Server"], server, ["servers", i], f"servers[{i}]"))
                    mine.append(i)
    results = evaluate(ext_dir, items, infra)
    context: dict[str, Any] = dict(infra.vars)
    for i in mine:
        servers[i] = results[f"item_server_{i}"]
    targets = (
        [s for s in servers if str(s.get("provider") or infra.provider) == name] if type_ == "provider" else servers
    )
    context.update(
        {
            type_: results["item_values"],
            "infra": {"name": infra.name, "provider": infra.provider},
            "settings": infra.settings,
            "servers": servers,
        }
    )
    if type_ == "provider":
        context["defaults"] = results.get("item_defaults", {})
    if targets:
        context["server"] = targets[0]
    return context
