"""``taskserv|cluster|provider create NAME --infra ENV [--check]``: what installing an extension would do.

The check loads the extension (installed in the workspace, or a local folder), holds the
infra's values to its KCL schema (``infra.check_values``), renders its ``templates/`` with
jinja2 (an undefined variable is an error, never an empty string) and runs its
``scripts/install.nu --dry-run`` with the real ``nu``. The plan is the steps the script
prints (``would run: …``). Rendered files land in ``infra/ENV/.check/NAME/`` only when every
part passed; nothing else is written and nothing on the host changes.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..checks import strip_ansi
from ..errors import ProvisioningError, ValidationError
from .config import PLURALS, display_path
from .infra import Infra, check_values, find_extension, find_workspace, load_infra, schema_of

CHECK_DIR = ".check"
WORK_DIR = ".work"
NU_TIMEOUT = 300
_STEP = "would run: "
_EXT_NAME = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")
_FLAG = re.compile(r"(?:^|[\s,])--([a-z0-9][a-z0-9-]*)(?:\s*\(-\w\))?\s*(?::\s*([a-z]+))?")


@dataclass
class Plan:
    """What ``create`` found and did; ``to_dict`` is the ``--output json`` form."""

    type: str
    name: str
    version: str
    extension: Path
    workspace: Path
    infra: str
    provider: str
    schema: str
    values: dict[str, Any]
    rendered: list[str] = field(default_factory=list)  # paths relative to the workspace
    steps: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    script_args: list[str] = field(default_factory=list)
    check: bool = True
    installed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "name": self.name,
            "version": self.version,
            "extension": str(self.extension),
            "workspace": str(self.workspace),
            "infra": self.infra,
            "provider": self.provider,
            "schema": self.schema,
            "values": self.values,
            "rendered": self.rendered,
            "steps": self.steps,
            "notes": self.notes,
            "script_args": self.script_args,
            "check": self.check,
            "installed": self.installed,
            "changed_host": self.installed,
        }


# --------------------------------------------------------------------------- templates


def output_name(template: Path) -> str:
    return template.name.removesuffix(".j2")


def template_ident(name: str) -> str:
    """How other templates refer to a rendered file: ``buildkitd.toml`` -> ``buildkitd_toml``."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def render_templates(ext_dir: Path, context: dict[str, Any], infra: Infra) -> dict[str, str]:
    """{relative output path: text} for every file of ``templates/``; ``*.j2`` rendered strictly.

    A template may use another's rendered text by name (``{{ corefile | indent(4) }}`` for
    ``Corefile.j2``): those are rendered first.
    """
    import jinja2
    import jinja2.meta

    folder = ext_dir / "templates"
    if not folder.is_dir():
        return {}
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701 - configuration files, not HTML
    )
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    out: dict[str, str] = {}
    pending: dict[str, tuple[Path, set[str]]] = {}
    idents = {template_ident(output_name(p)): p for p in files if p.suffix == ".j2"}
    for path in files:
        rel = path.relative_to(folder).as_posix()
        if path.suffix != ".j2":
            out[rel] = path.read_text(encoding="utf-8", errors="replace")
            continue
        try:
            source = path.read_text(encoding="utf-8")
            ast = env.parse(source, name=rel, filename=str(path))
        except (OSError, UnicodeDecodeError) as exc:
            raise ValidationError(f"{display_path(path)}: cannot read: {exc}") from None
        except jinja2.TemplateSyntaxError as exc:
            raise ValidationError(f"{display_path(path)}:{exc.lineno}: {exc.message}") from None
        needs = {n for n in jinja2.meta.find_undeclared_variables(ast) if n in idents and n not in context}
        needs.discard(template_ident(output_name(path)))
        pending[rel] = (path, needs)
    rendered: dict[str, str] = {}  # ident -> text
    while pending:
        ready = [rel for rel, (_, needs) in pending.items() if needs <= set(rendered)]
        if not ready:
            raise ValidationError(
                f"{display_path(folder)}: templates use each other's output in a circle: {', '.join(sorted(pending))}"
            )
        for rel in ready:
            path, _ = pending.pop(rel)
            text = _render_one(env, rel, path, {**rendered, **context}, infra)
            out[rel.removesuffix(".j2")] = text
            rendered[template_ident(output_name(path))] = text
    return dict(sorted(out.items()))


def _render_one(env: Any, rel: str, path: Path, context: dict[str, Any], infra: Infra) -> str:
    import jinja2

    try:
        return env.get_template(rel).render(context)
    except jinja2.UndefinedError as exc:
        line = _template_line(exc, str(path))
        where = f"{display_path(path)}:{line}" if line else display_path(path)
        raise ValidationError(
            f"{where}: {exc.message}: the template needs a value the infra does not give. Set it in "
            f"{display_path(infra.file)} (the extension's values, or `vars:` for other template variables), or "
            "make the template tolerate its absence (`{% if x is defined %}`, `x | default(...)`); nothing was written"
        ) from None
    except jinja2.TemplateError as exc:
        line = _template_line(exc, str(path))
        where = f"{display_path(path)}:{line}" if line else display_path(path)
        raise ValidationError(f"{where}: {exc}; nothing was written") from None
    except (TypeError, ValueError, ArithmeticError) as exc:
        line = _template_line(exc, str(path))
        where = f"{display_path(path)}:{line}" if line else display_path(path)
        raise ValidationError(f"{where}: rendering failed: {exc}; nothing was written") from None


def _template_line(exc: BaseException, filename: str) -> int:
    """The template line jinja2 put in the traceback (its frames carry the template's file name)."""
    line = 0
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


# --------------------------------------------------------------------------- install.nu


def script_flags(script: Path) -> dict[str, str]:
    """{flag: type} of the script's ``def main [...]`` (type ``switch`` for flags without one)."""
    text = script.read_text(encoding="utf-8", errors="replace")
    m = re.search(r"^def\s+(?:--[\w-]+\s+)*main\s*\[", text, re.M)
    if not m:
        return {}
    depth, end = 1, m.end()
    while end < len(text) and depth:
        depth += {"[": 1, "]": -1}.get(text[end], 0)
        end += 1
    signature = "\n".join(line.split("#", 1)[0] for line in text[m.end() : end - 1].splitlines())
    return {f.group(1): f.group(2) or "switch" for f in _FLAG.finditer(signature)}


def script_args(flags: dict[str, str], values: dict[str, Any], work_dir: Path) -> list[str]:
    """Values the script takes as flags (``data_dir`` -> ``--data-dir``), where types agree."""
    args: list[str] = []
    for key, value in values.items():
        flag = key.replace("_", "-")
        kind = flags.get(flag)
        if kind is None or flag in ("dry-run", "work-dir"):
            continue
        if kind == "switch" and isinstance(value, bool):
            args += [f"--{flag}"] if value else []
        elif kind == "int" and isinstance(value, int) and not isinstance(value, bool):
            args += [f"--{flag}", str(value)]
        elif kind in ("string", "path") and isinstance(value, str):
            args += [f"--{flag}", value]
    if "work-dir" in flags:
        args += ["--work-dir", str(work_dir)]
    return args


def run_install(script: Path, args: list[str], *, dry_run: bool, cwd: Path, env: dict[str, str]) -> list[str]:
    """Run ``nu scripts/install.nu ARGS [--dry-run]``; its output lines (a failure raises, with its output)."""
    from ..checks import _nu, _nu_env

    cmd = [_nu(), "--no-config-file", str(script), *args, *(["--dry-run"] if dry_run else [])]
    try:
        proc = subprocess.run(
            cmd, cwd=cwd, capture_output=True, text=True, timeout=NU_TIMEOUT, env={**_nu_env(), **env}
        )
    except subprocess.TimeoutExpired:
        raise ProvisioningError(f"{display_path(script)} did not finish in {NU_TIMEOUT} s") from None
    output = strip_ansi(proc.stdout + proc.stderr).strip()
    if proc.returncode != 0:
        what = "--dry-run " if dry_run else ""
        raise ProvisioningError(
            f"{display_path(script)} {what}failed (exit {proc.returncode}): " + (output[-2000:] or "no output")
        )
    return strip_ansi(proc.stdout).splitlines()


# --------------------------------------------------------------------------- create


def _swap_in(staging: Path, final: Path) -> Path | None:
    """Move ``staging`` to ``final``; the folder it replaces is kept aside (returned) until confirmed."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.replace(final, old)
    os.replace(staging, final)
    return old


def create(
    type_: str,
    name: str,
    infra_name: str,
    *,
    workspace: str | os.PathLike[str] | None = None,
    check: bool = True,
    source: str | None = None,
    path: str | None = None,
) -> Plan:
    """Check (and, for a ``local`` provider without ``check``, run) the install of one extension."""
    from ..extension import load_extension

    type_ = PLURALS.get(type_, type_)
    if not _EXT_NAME.match(name):
        raise ValidationError(f"{name!r} is not an extension name: lowercase letters, digits and '-' (nginx-ingress)")
    root = find_workspace(workspace, infra_name)
    infra = load_infra(root, infra_name)
    ext_dir = find_extension(root, type_, name, source=source, path=path)
    ext = load_extension(ext_dir)
    if ext.type != type_:
        raise ValidationError(f"{display_path(ext_dir / 'manifest.yaml')} says type {ext.type!r}, not {type_!r}")
    if not check and infra.provider != "local":
        raise ProvisioningError(
            f"infra {infra.name} uses provider {infra.provider}: installing on its servers needs that provider's "
            "remote runner, which this tool does not drive; only a `local` provider installs here. Nothing was run: "
            f"`provisioning {type_} create {name} --infra {infra.name} --check` shows the plan"
        )
    context = check_values(infra, ext_dir, type_, name)
    values = context[type_]
    files = render_templates(ext_dir, context, infra)  # all in memory: a failure writes nothing
    final = infra.folder / (CHECK_DIR if check else WORK_DIR) / name
    made_parent = not final.parent.exists()
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = final.with_name(f".{name}.new-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    for rel, text in files.items():
        target = staging / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    plan = Plan(
        type=type_,
        name=name,
        version=ext.version,
        extension=ext_dir,
        workspace=root,
        infra=infra.name,
        provider=infra.provider,
        schema=schema_of(ext_dir, type_, name),
        values=values,
        rendered=[os.path.relpath(final / rel, root) for rel in files],
        check=check,
    )
    old = _swap_in(staging, final)
    try:
        script = ext_dir / "scripts" / "install.nu"
        if script.is_file():
            plan.script_args = script_args(script_flags(script), values, final)
            env = {"PROVISIONING_INFRA": infra.name, "PROVISIONING_WORKSPACE": str(root)}
            lines = run_install(script, plan.script_args, dry_run=check, cwd=final, env=env)
            plan.steps = [line[len(_STEP) :] for line in lines if line.startswith(_STEP)]
            plan.notes = [line for line in lines if line.strip() and not line.startswith(_STEP)]
            plan.installed = not check
        else:
            plan.notes = ["the extension has no scripts/install.nu: nothing to run"]
    except BaseException:
        shutil.rmtree(final, ignore_errors=True)
        if old is not None:
            os.replace(old, final)
        elif made_parent:
            shutil.rmtree(final.parent, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return plan
