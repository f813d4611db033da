"""Semantic versions and npm-compatible ranges.

Extension authors write dependency ranges the way npm (and Helm) users do, and they expect the
answers they already know from ``npm``. So this module is a faithful port of npm's ``semver``
package (default options: not loose, prereleases excluded) rather than a fresh design: ranges
are desugared by the same text rewrites, in the same order, with the same regular expressions,
so corner cases (partial hyphen ranges, ``0.x`` carets, ``* || ...`` collapsing, prerelease
rules) answer exactly as ``semver.satisfies`` does. ``tests/test_versions.py`` checks that
against the real npm package.

One extension: commas join comparators with AND inside one ``||`` alternative, as Helm users
write (``>=1.2, <2.0``). npm rejects every comma, so this adds meaning without changing any.

Where npm quietly answers ``false`` for unparseable input, we raise :class:`VersionError` with a
message naming the bad part, because a typo in a dependency must not look like "no match".
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from provisioning.errors import VersionError

__all__ = [
    "Comparator",
    "Range",
    "Version",
    "is_valid_version",
    "max_satisfying",
    "parse_constraint",
    "parse_version",
    "satisfies",
    "sort_versions",
]

# npm's limits (semver/internal/constants.js); matching them keeps validity identical.
MAX_LENGTH = 256
MAX_SAFE_INTEGER = 2**53 - 1
_MAX_SAFE_BUILD_LENGTH = MAX_LENGTH - 6

# ECMAScript's \s (and what String.prototype.trim removes); Python's \s and str.strip differ.
_WS_CHARS = "\t\n\x0b\x0c\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a" + (
    "\u2028\u2029\u202f\u205f\u3000\ufeff"
)
_WS_CLASS = f"[{_WS_CHARS}]"


# --- regular expressions, built exactly as semver/internal/re.js builds them -------------------


def _safe(src: str) -> str:
    """Bound greedy tokens the way npm's ``makeSafeRegex`` does (inputs are whitespace-normalised)."""
    for token, limit in (("\\s", 1), ("\\d", MAX_LENGTH), ("[a-zA-Z0-9-]", _MAX_SAFE_BUILD_LENGTH)):
        src = src.replace(f"{token}*", f"{token}{{0,{limit}}}").replace(f"{token}+", f"{token}{{1,{limit}}}")
    return src


def _py(src: str) -> str:
    """Translate JavaScript regex syntax to Python's: JS whitespace, ASCII digits, true end anchor."""
    src = src.replace("[v=\\s]", f"[v={_WS_CHARS}]").replace("\\s", _WS_CLASS).replace("\\d", "[0-9]")
    return src.replace("$", r"\Z")


_LDN = "[a-zA-Z0-9-]"
_NUMERIC = "0|[1-9]\\d*"
_NUMERIC_LOOSE = "\\d+"
_NON_NUMERIC = f"\\d*[a-zA-Z-]{_LDN}*"
_MAIN = f"({_NUMERIC})\\.({_NUMERIC})\\.({_NUMERIC})"
_MAIN_LOOSE = f"({_NUMERIC_LOOSE})\\.({_NUMERIC_LOOSE})\\.({_NUMERIC_LOOSE})"
_PRE_ID = f"(?:{_NON_NUMERIC}|{_NUMERIC})"
_PRE_ID_LOOSE = f"(?:{_NON_NUMERIC}|{_NUMERIC_LOOSE})"
_PRERELEASE = f"(?:-({_PRE_ID}(?:\\.{_PRE_ID})*))"
_PRERELEASE_LOOSE = f"(?:-?({_PRE_ID_LOOSE}(?:\\.{_PRE_ID_LOOSE})*))"
_BUILD_ID = f"{_LDN}+"
_BUILD_SRC = f"(?:\\+({_BUILD_ID}(?:\\.{_BUILD_ID})*))"
_FULL_PLAIN = f"v?{_MAIN}{_PRERELEASE}?{_BUILD_SRC}?"
_LOOSE_PLAIN = f"[v=\\s]*{_MAIN_LOOSE}{_PRERELEASE_LOOSE}?{_BUILD_SRC}?"
_GTLT = "((?:<|>)?=?)"
_XID = f"{_NUMERIC}|x|X|\\*"
_XRANGE_PLAIN = f"[v=\\s]*({_XID})(?:\\.({_XID})(?:\\.({_XID})(?:{_PRERELEASE})?{_BUILD_SRC}?)?)?"


def _compile(src: str) -> re.Pattern[str]:
    return re.compile(_py(_safe(src)))


_FULL = _compile(f"^{_FULL_PLAIN}$")
_BUILD = _compile(_BUILD_SRC)
_BUILD_STRIP = re.compile(_py(_BUILD_SRC))  # npm strips build metadata with the unbounded form
_XRANGE = _compile(f"^{_GTLT}\\s*{_XRANGE_PLAIN}$")
_TILDE_TRIM = _compile("(\\s*)(?:~>?)\\s+")
_TILDE = _compile(f"^(?:~>?){_XRANGE_PLAIN}$")
_CARET_TRIM = _compile("(\\s*)(?:\\^)\\s+")
_CARET = _compile(f"^(?:\\^){_XRANGE_PLAIN}$")
_COMPARATOR = _compile(f"^{_GTLT}\\s*({_FULL_PLAIN})$|^$")
_COMPARATOR_TRIM = _compile(f"(\\s*){_GTLT}\\s*({_LOOSE_PLAIN}|{_XRANGE_PLAIN})")
_HYPHEN = _compile(f"^\\s*({_XRANGE_PLAIN})\\s+-\\s+({_XRANGE_PLAIN})\\s*$")
_STAR = _compile("(<|>)?=?\\s*\\*")
_GTE0 = _compile("^\\s*>=\\s*0\\.0\\.0\\s*$")
_WS_RUN = re.compile(f"{_WS_CLASS}+")
_DIGITS = re.compile(r"[0-9]+\Z")
_IDENTIFIER = re.compile(r"[0-9A-Za-z-]+\Z")
_OPERATOR = re.compile(r"(<=|>=|<|>|=|~>|~|\^)?(.*)\Z", re.DOTALL)


def _trim(text: str) -> str:
    return text.strip(_WS_CHARS)


# --- versions ----------------------------------------------------------------------------------


def _compare_identifiers(a: int | str, b: int | str) -> int:
    """npm's compareIdentifiers: numeric ids sort numerically and before alphanumeric ones."""
    if isinstance(a, int) and isinstance(b, int):
        return (a > b) - (a < b)
    a_num = isinstance(a, int) or bool(_DIGITS.match(a))
    b_num = isinstance(b, int) or bool(_DIGITS.match(b))
    if a_num and b_num:
        # JavaScript turns both into doubles here (ids past 2**53 lose precision); so do we.
        fa, fb = float(int(a)), float(int(b))
        return (fa > fb) - (fa < fb)
    if a_num:
        return -1
    if b_num:
        return 1
    return (a > b) - (a < b)  # type: ignore[operator]


def _compare_id_lists(a: tuple[int | str, ...], b: tuple[int | str, ...]) -> int:
    """The identifier-by-identifier loop shared by npm's comparePre and compareBuild."""
    for i in range(max(len(a), len(b))):
        if i >= len(b):
            return 1
        if i >= len(a):
            return -1
        x, y = a[i], b[i]
        if type(x) is type(y) and x == y:
            continue
        return _compare_identifiers(x, y)
    return 0


@functools.total_ordering
@dataclass(frozen=True, eq=False)
class Version:
    """A semver 2.0.0 version; ordering is precedence, so build metadata never affects it.

    Prerelease identifiers below 2**53 - 1 that are all digits are ints, the others strings
    (as in npm), so ``1.0.0-2 < 1.0.0-10``.
    """

    major: int
    minor: int
    patch: int
    prerelease: tuple[int | str, ...] = ()
    build: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Version:
        """Parse strictly as npm does (a leading ``v`` and surrounding whitespace are allowed)."""
        if not isinstance(text, str):
            raise VersionError(f"a version must be a string, got {type(text).__name__} {text!r}")
        return _parse_version_cached(text)

    @property
    def is_prerelease(self) -> bool:
        """Prereleases only match ranges that name them (see Range.contains)."""
        return bool(self.prerelease)

    @property
    def core(self) -> str:
        """``MAJOR.MINOR.PATCH[-PRERELEASE]``: npm's normalised form, without build metadata."""
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += "-" + ".".join(str(part) for part in self.prerelease)
        return text

    def __str__(self) -> str:
        return self.core + ("+" + ".".join(self.build) if self.build else "")

    def compare(self, other: Version) -> int:
        """-1, 0 or 1 by semver precedence (npm's ``compare``)."""
        main = (self.major, self.minor, self.patch)
        other_main = (other.major, other.minor, other.patch)
        if main != other_main:
            return -1 if main < other_main else 1
        if self.prerelease and not other.prerelease:
            return -1
        if other.prerelease and not self.prerelease:
            return 1
        return _compare_id_lists(self.prerelease, other.prerelease)

    def compare_build(self, other: Version) -> int:
        """Precedence, then build metadata as a tie-break (npm's ``compareBuild``, used by sort)."""
        return self.compare(other) or _compare_id_lists(tuple(self.build), tuple(other.build))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self.compare(other) == 0

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self.compare(other) < 0

    def __hash__(self) -> int:
        # Equal versions always share major.minor.patch and prerelease-ness; hash only that so the
        # hash stays consistent with npm's (float-based) equality of huge numeric identifiers.
        return hash((self.major, self.minor, self.patch, bool(self.prerelease)))


def _version_problem(text: str) -> str:
    """Say what is wrong with a version npm would refuse, as precisely as cheaply possible."""
    stripped = _trim(text)
    if not stripped:
        return "it is empty"
    if stripped[0] in "=<>~^":
        return f'a version cannot start with "{stripped[0]}" (that belongs in a constraint)'
    body = stripped[1:] if stripped.startswith("v") else stripped
    head, has_build, build = body.partition("+")
    core, has_pre, pre = head.partition("-")
    numbers = core.split(".")
    if len(numbers) != 3 or not all(_DIGITS.match(n) for n in numbers):
        return f'"{core}" is not MAJOR.MINOR.PATCH (three numbers, e.g. 1.2.0)'
    for n in numbers:
        if len(n) > 1 and n.startswith("0"):
            return f'"{n}" has a leading zero'
    for part in pre.split(".") if has_pre else []:
        if not _IDENTIFIER.match(part):
            return f'prerelease identifier "{part}" must be non-empty and use only [0-9A-Za-z-]'
        if _DIGITS.match(part) and len(part) > 1 and part.startswith("0"):
            return f'prerelease identifier "{part}" has a leading zero'
    for part in build.split(".") if has_build else []:
        if not _IDENTIFIER.match(part):
            return f'build identifier "{part}" must be non-empty and use only [0-9A-Za-z-]'
    return "expected MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]"


def _version_or_reason(text: str) -> Version | str:
    """The Version, or why npm's ``new SemVer(text)`` would throw."""
    if len(text) > MAX_LENGTH:
        return f"longer than {MAX_LENGTH} characters"
    match = _FULL.match(_trim(text))
    if not match:
        return _version_problem(text)
    numbers = [int(match.group(i)) for i in (1, 2, 3)]
    for name, number in zip(("major", "minor", "patch"), numbers, strict=True):
        if number > MAX_SAFE_INTEGER:
            return f"{name} version {number} is larger than {MAX_SAFE_INTEGER}"
    prerelease: tuple[int | str, ...] = ()
    if match.group(4):
        prerelease = tuple(
            int(part) if _DIGITS.match(part) and int(part) < MAX_SAFE_INTEGER else part
            for part in match.group(4).split(".")
        )
    build = tuple(match.group(5).split(".")) if match.group(5) else ()
    return Version(numbers[0], numbers[1], numbers[2], prerelease, build)


@functools.lru_cache(maxsize=16384)
def _parse_version_cached(text: str) -> Version:
    result = _version_or_reason(text)
    if isinstance(result, str):
        shown = text if len(text) <= 80 else text[:77] + "..."
        raise VersionError(f'invalid version "{shown}": {result}')
    return result


# --- comparators and ranges --------------------------------------------------------------------


class _BadComparator(Exception):
    """Internal: one comparator of a constraint is unusable; Range.parse adds the context."""


@dataclass(frozen=True)
class Comparator:
    """``OP VERSION``, OP one of ``<``, ``<=``, ``>``, ``>=`` or ``""`` (equal); ``version=None`` matches anything."""

    operator: str
    version: Version | None

    @property
    def value(self) -> str:
        return "" if self.version is None else self.operator + self.version.core

    @property
    def is_any(self) -> bool:
        return self.version is None

    @property
    def is_null(self) -> bool:
        """``<0.0.0-0``: npm's spelling of "nothing at all"."""
        return self.value == _NULL

    def test(self, version: Version) -> bool:
        if self.version is None:
            return True
        c = version.compare(self.version)
        op = self.operator
        if op == "":
            return c == 0
        if op == "<":
            return c < 0
        if op == "<=":
            return c <= 0
        if op == ">":
            return c > 0
        return c >= 0  # ">="

    def __str__(self) -> str:
        return self.value

    @classmethod
    def _parse(cls, comp: str) -> Comparator:
        comp = " ".join(_WS_RUN.split(_trim(comp)))
        match = _COMPARATOR.search(comp)
        if not match:
            op, rest = _OPERATOR.match(comp).groups()  # type: ignore[union-attr]
            if op and not rest:
                raise _BadComparator(f'"{op}" has no version after it')
            raise _BadComparator(f'"{rest}" is not a version')
        operator = match.group(1) or ""
        if operator == "=":
            operator = ""
        if not match.group(2):
            return cls("", None)
        result = _version_or_reason(match.group(2))
        if isinstance(result, str):
            raise _BadComparator(f'"{match.group(2)}": {result}')
        return cls(operator, result)


_NULL = "<0.0.0-0"


def _is_x(part: str | None) -> bool:
    return not part or part.lower() == "x" or part == "*"


def _hyphen_replace(m: re.Match[str]) -> str:
    """``1.2 - 3.4`` => ``>=1.2.0 <3.5.0-0``; a partial upper bound means "any of those"."""
    frm, f_major, f_minor, f_patch, f_pre, _, to, t_major, t_minor, t_patch, t_pre, _ = m.groups()
    if _is_x(f_major):
        frm = ""
    elif _is_x(f_minor):
        frm = f">={f_major}.0.0"
    elif _is_x(f_patch):
        frm = f">={f_major}.{f_minor}.0"
    else:
        frm = f">={frm}"
    if _is_x(t_major):
        to = ""
    elif _is_x(t_minor):
        to = f"<{int(t_major) + 1}.0.0-0"
    elif _is_x(t_patch):
        to = f"<{t_major}.{int(t_minor) + 1}.0-0"
    elif t_pre:
        to = f"<={t_major}.{t_minor}.{t_patch}-{t_pre}"
    else:
        to = f"<={to}"
    return _trim(f"{frm} {to}")


def _replace_caret(comp: str) -> str:
    """``^1.2.3`` => ``>=1.2.3 <2.0.0-0``; the first non-zero part is the one that may not change."""

    def repl(m: re.Match[str]) -> str:
        major, minor, patch, pre = m.group(1, 2, 3, 4)
        if _is_x(major):
            return ""
        if _is_x(minor):
            return f">={major}.0.0 <{int(major) + 1}.0.0-0"
        if _is_x(patch):
            if major == "0":
                return f">={major}.{minor}.0 <{major}.{int(minor) + 1}.0-0"
            return f">={major}.{minor}.0 <{int(major) + 1}.0.0-0"
        low = f">={major}.{minor}.{patch}" + (f"-{pre}" if pre else "")
        if major == "0":
            if minor == "0":
                return f"{low} <{major}.{minor}.{int(patch) + 1}-0"
            return f"{low} <{major}.{int(minor) + 1}.0-0"
        return f"{low} <{int(major) + 1}.0.0-0"

    return _CARET.sub(repl, comp, count=1)


def _replace_tilde(comp: str) -> str:
    """``~1.2.3`` => ``>=1.2.3 <1.3.0-0``: patch-level changes only (minor-level for ``~1``)."""

    def repl(m: re.Match[str]) -> str:
        major, minor, patch, pre = m.group(1, 2, 3, 4)
        if _is_x(major):
            return ""
        if _is_x(minor):
            return f">={major}.0.0 <{int(major) + 1}.0.0-0"
        if _is_x(patch):
            return f">={major}.{minor}.0 <{major}.{int(minor) + 1}.0-0"
        low = f">={major}.{minor}.{patch}" + (f"-{pre}" if pre else "")
        return f"{low} <{major}.{int(minor) + 1}.0-0"

    return _TILDE.sub(repl, comp, count=1)


def _replace_xrange(comp: str) -> str:
    """``1.2.x``, ``>1.2``, ``<=1`` and friends => plain comparators (npm's replaceXRange)."""
    comp = _trim(comp)

    def repl(m: re.Match[str]) -> str:
        gtlt, major, minor, patch = m.group(1, 2, 3, 4)
        if (_is_x(major) and not _is_x(minor)) or (_is_x(minor) and patch and not _is_x(patch)):
            return comp  # "x.1" or "1.x.2": left alone, so it fails as a comparator
        x_major = _is_x(major)
        x_minor = x_major or _is_x(minor)
        x_patch = x_minor or _is_x(patch)
        if gtlt == "=" and x_patch:
            gtlt = ""
        if x_major:
            return _NULL if gtlt in (">", "<") else "*"
        if gtlt and x_patch:
            ma: int | str = major
            mi: int | str = 0 if x_minor else minor
            if gtlt == ">":
                gtlt = ">="
                if x_minor:
                    ma, mi = int(major) + 1, 0
                else:
                    mi = int(minor) + 1
            elif gtlt == "<=":
                gtlt = "<"
                if x_minor:
                    ma = int(major) + 1
                else:
                    mi = int(minor) + 1
            return f"{gtlt}{ma}.{mi}.0" + ("-0" if gtlt == "<" else "")
        if x_minor:
            return f">={major}.0.0 <{int(major) + 1}.0.0-0"
        if x_patch:
            return f">={major}.{minor}.0 <{major}.{int(minor) + 1}.0-0"
        return m.group(0)

    return _XRANGE.sub(repl, comp, count=1)


def _each_word(comp: str, replace: Callable[[str], str], trim: bool = True) -> str:
    return " ".join(replace(word) for word in _WS_RUN.split(_trim(comp) if trim else comp))


def _desugar(comp: str) -> str:
    """One space-free token => space-separated plain comparators (npm's parseComparator)."""
    comp = _BUILD.sub("", comp, count=1)
    comp = _each_word(comp, _replace_caret)
    comp = _each_word(comp, _replace_tilde)
    comp = _each_word(comp, _replace_xrange, trim=False)
    return _STAR.sub("", _trim(comp), count=1)


def _finish_set(comparators: list[Comparator]) -> tuple[Comparator, ...]:
    """Null set wins; drop duplicates; drop "any" when something else is there (as npm does)."""
    seen: dict[str, Comparator] = {}
    for comp in comparators:
        if comp.is_null:
            return (comp,)
        seen.setdefault(comp.value, comp)
    if len(seen) > 1:
        seen.pop("", None)
    return tuple(seen.values())


def _npm_comparators(text: str) -> list[Comparator]:
    """One ``||`` alternative, exactly as npm's Range.parseRange reads it."""
    text = _BUILD_STRIP.sub("", text)
    text = _HYPHEN.sub(_hyphen_replace, text, count=1)
    text = _COMPARATOR_TRIM.sub(r"\1\2\3", text)
    text = _TILDE_TRIM.sub(r"\1~", text)
    text = _CARET_TRIM.sub(r"\1^", text)
    desugared = " ".join(_desugar(word) for word in text.split(" "))
    words = [_GTE0.sub("", _trim(word), count=1) for word in _WS_RUN.split(desugared)]
    return [Comparator._parse(word) for word in words]


def _parse_alternative(text: str) -> tuple[Comparator, ...]:
    if "," not in text:
        return _finish_set(_npm_comparators(text))
    comparators: list[Comparator] = []
    for part in text.split(","):
        part = _trim(part)
        if not part:
            raise _BadComparator("a comma must stand between two comparators (found an empty one)")
        comparators.extend(_npm_comparators(part))
    return _finish_set(comparators)


@dataclass(frozen=True)
class Range:
    """A constraint: any of ``sets`` matches when all comparators of that set match.

    ``str()`` gives npm's normalised form (what ``semver.validRange`` prints), which npm
    itself accepts, so it is safe to show users and to hand to other tools.
    """

    sets: tuple[tuple[Comparator, ...], ...]
    raw: str = field(default="", compare=False)

    @classmethod
    def parse(cls, text: str) -> Range:
        if not isinstance(text, str):
            raise VersionError(f"a constraint must be a string, got {type(text).__name__} {text!r}")
        return _parse_range_cached(text)

    def contains(self, version: Version | str) -> bool:
        """npm's ``Range.test``: a prerelease matches only where its own set names that M.m.p."""
        if isinstance(version, str):
            version = Version.parse(version)
        return any(_test_set(comparators, version) for comparators in self.sets)

    def __contains__(self, version: Version | str) -> bool:
        return self.contains(version)

    def __str__(self) -> str:
        return "||".join(" ".join(c.value for c in comparators) for comparators in self.sets) or "*"


def _test_set(comparators: tuple[Comparator, ...], version: Version) -> bool:
    for comp in comparators:
        if not comp.test(version):
            return False
    if not version.prerelease:
        return True
    for comp in comparators:
        allowed = comp.version
        if (
            allowed is not None
            and allowed.prerelease
            and (allowed.major, allowed.minor, allowed.patch) == (version.major, version.minor, version.patch)
        ):
            return True
    return False


@functools.lru_cache(maxsize=8192)
def _parse_range_cached(text: str) -> Range:
    raw = _WS_RUN.sub(" ", _trim(text))
    try:
        sets = [_parse_alternative(_trim(alternative)) for alternative in raw.split("||")]
    except _BadComparator as exc:
        shown = text if len(text) <= 120 else text[:117] + "..."
        raise VersionError(f'invalid constraint "{shown}": {exc}') from None
    sets = [s for s in sets if s]
    if len(sets) > 1:
        first = sets[0]
        sets = [s for s in sets if not s[0].is_null] or [first]
        for s in sets:
            if len(s) == 1 and s[0].is_any:
                sets = [s]
                break
    return Range(tuple(sets), text)


# --- the functions the rest of the tool calls ---------------------------------------------------


def parse_version(text: str) -> Version:
    """Parse a version or raise VersionError naming what is wrong."""
    return Version.parse(text)


def parse_constraint(text: str) -> Range:
    """Parse a constraint (npm range syntax plus Helm's commas) or raise VersionError."""
    return Range.parse(text)


def is_valid_version(text: object) -> bool:
    """True where npm's ``semver.valid`` gives a version (so ``v1.2.3`` counts, ``latest`` does not)."""
    if not isinstance(text, str):
        return False
    try:
        _parse_version_cached(text)  # a resolve asks this of every tag, and then parses it: once
    except VersionError:
        return False
    return True


def satisfies(version: Version | str, constraint: str) -> bool:
    """npm's ``semver.satisfies(version, constraint)``, but bad input raises instead of answering False."""
    return Range.parse(constraint).contains(version)


def max_satisfying(versions: Iterable[str], constraint: str) -> str | None:
    """The highest version (as given) that satisfies; non-versions such as ``latest`` are skipped.

    Like npm's ``maxSatisfying``, except that a bad constraint raises instead of giving None.
    """
    rng = Range.parse(constraint)
    best: str | None = None
    best_version: Version | None = None
    for text in versions:
        if not isinstance(text, str) or not is_valid_version(text):
            continue
        version = Version.parse(text)
        if rng.contains(version) and (best_version is None or best_version.compare(version) < 0):
            best, best_version = text, version
    return best


def sort_versions(versions: Iterable[str], reverse: bool = False) -> list[str]:
    """Valid versions (as given) in precedence order, build metadata breaking ties; others dropped.

    Same order as npm's ``semver.sort`` / ``semver.rsort`` (stable for equal versions).
    """
    parsed = [(text, Version.parse(text)) for text in versions if isinstance(text, str) and is_valid_version(text)]
    sign = -1 if reverse else 1
    parsed.sort(key=functools.cmp_to_key(lambda a, b: sign * a[1].compare_build(b[1])))
    return [text for text, _ in parsed]
