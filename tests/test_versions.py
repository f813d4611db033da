"""provisioning.versions answers what npm's own ``semver`` package answers.

Every expected value here comes from the real npm ``semver`` (``npm install -g semver``, which
.ci/run does), evaluated in ONE node process for the whole deterministic corpus. Missing node or
semver is a test failure, not a skip: without them these tests would prove nothing.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
from dataclasses import FrozenInstanceError
from itertools import product
from typing import Any

import pytest

from provisioning.errors import VersionError
from provisioning.versions import (
    Range,
    Version,
    is_valid_version,
    max_satisfying,
    parse_constraint,
    parse_version,
    satisfies,
    sort_versions,
)

# --- the corpus (deterministic: enumeration plus fixed seeds) ----------------------------------

PRERELEASES = ["alpha", "alpha.1", "beta.2", "rc.1", "0", "1", "alpha.beta", "x-y.10"]

# Every M.m.p in 0..3, a prerelease or two for each, and the spellings npm also accepts.
VERSIONS: list[str] = [f"{a}.{b}.{c}" for a, b, c in product(range(4), repeat=3)]
VERSIONS += [
    f"{a}.{b}.{c}-{PRERELEASES[(a * 16 + b * 4 + c) % len(PRERELEASES)]}" for a, b, c in product(range(4), repeat=3)
]
VERSIONS += [f"{a}.{b}.{c}-{pre}" for a, b, c in [(0, 0, 1), (1, 2, 3), (2, 0, 0), (1, 0, 0)] for pre in PRERELEASES]
VERSIONS += ["v1.2.3", " 1.2.3 ", "v0.0.1-alpha", "1.2.3+build.5", "1.2.3-beta.2+exp.sha.5114f85", "10.20.30", "3.5.0"]

# npm's README examples and the corners around them (some are invalid on purpose).
FIXED_RANGES = """
1.2.3;=1.2.3;v1.2.3;=v1.2.3;v=1.2.3;>1.2.3;<1.2.3;>=1.2.3;<=1.2.3;> 1.2.3;< = 1.2.3;>= v1.2.3;> =1.2.3
~1.2.3;~1.2;~1;~0.2.3;~0.2;~0;~1.2.3-beta.2;~>1.2;~ 1.2;~> 1.2.3;~v1.2.3;~=1.2.3;~0.0.1
^1.2.3;^0.2.3;^0.0.3;^1.2.3-beta.2;^0.0.3-beta;^0.1.2-rc.1;^1.2.x;^0.0.x;^0.0;^0;^1.x;^0.x;^ 1.2;^v1.2.3;^=1.2.3
^;~;*;x;X;x.x.x;1.x;1.2.x;1.X;1.*;1.2.*;*.*.*;>=*;<*;>*;<=*;=*;1.x.x;1.2.x-beta;1.2.3-beta.x
1.2.3 - 2.3.4;1.2 - 2.3.4;1.2.3 - 2.3;1.2.3 - 2;1 - 2;x - 2;1.2.3 - x;1.2.3-beta.1 - 2.0.0-rc.1;v1.2.3 - v2.0.0
0.0.1 - 0.0.3;1.2.3 - 2.3.4 >=2;1.2.3 - 2.3.4 || 3.x;1.2.3  -  2.3.4;=1.2.3 - 2;1.2 - 1.2;0 - 0;1.2.3 - 2.x
>1;>1.2;>=1;<1;<1.2;<=1;<=1.2;=1;=1.2;>1.x;<=1.x;<1.x;>=1.x;>0.x;<0.x;>=0.0;<=0.0.x
>=1.2.3 <2.0.0;>=1.2.3 <2.0.0 || >=3.0.0;1.2.7 || >=1.2.9 <2.0.0;>1.2.3-alpha.3;>=1.2.3-alpha.3 <1.2.4
* || >=1.0.0-beta;>=0.0.0;>=0.0.0 || 1.2.3-beta.1;<0.0.0-0;<0.0.0;<0.0.0-0 || 1.x;||;1.2.3 ||;|| 1.2.3;1.x || *
1.2.3+build;>=1.2.3+build <2;1.2.3-beta+build;>=1.2.3 <1.2.3; >=1.2.3   <2.0.0 ;>= 1.2.3 < 2;0.x || 1.x
>=1.0.0-rc.1 <1.0.0;>=1.2.3-beta <=1.2.3-beta.5;<=1.2.3-beta;>=1.2.3-0;^1.2.3-0;~1.2.3-0;1.2.3-0 - 1.2.3
>=1.x.y.z;latest;1.2.3.4;>=;a.b.c;1.2.3-;01.2.3;1.02;~1.2.3.4;>>1;=>1.2.3;1.2.3 -2.0.0;1.2.3-beta..1
x.1;1.x.2;1.2.3 - ;- 1.2.3;9007199254740991;9007199254740992;^9007199254740991;^9007199254740990
1.2.3 & 2;!=1.2.3;1.2.3 || foo;v;=;<=v1;>=1.2.3-01;1.2.3-alpha.-1;  ;1.2.3||2.0.0;1.2.3 || || 2.0.0
<1.2.3-beta || 1.2.3-rc.1 - 1.2.4;^1.2.3-beta.2 || ^0.0.1-alpha;~1.2.3-beta.2 >1.2.3-beta.3 <1.2.3-rc
""".replace("\n", ";").split(";")
FIXED_RANGES += ["", " ", ">=1.2.3\t<2.0.0", "1.2.3\n||\n2.0.0", "\u00a0^1.2.3\u3000", "~\t1.2", ">\u20091.2.3"]


def _random_partial(rng: random.Random) -> str:
    """A version as ranges write it: partial, wildcarded, prereleased, prefixed."""
    parts = [rng.choice(["0", "1", "2", "3", "x", "*", "X"] if rng.random() < 0.15 else ["0", "1", "2", "3"])]
    for _ in range(rng.choice([0, 1, 2, 2, 2])):
        parts.append(rng.choice(["0", "1", "2", "3", "3", "x", "*"]))
    text = ".".join(parts)
    if len(parts) == 3 and rng.random() < 0.3:
        text += "-" + rng.choice(PRERELEASES)
    if rng.random() < 0.05:
        text += "+b" + str(rng.randrange(9))
    if rng.random() < 0.05:
        text = rng.choice(["v", "=", "v ", "="]) + text
    return text


def _random_range(rng: random.Random) -> str:
    """One to three ``||`` alternatives of hyphen ranges or one to three operator comparators."""
    alternatives = []
    for _ in range(rng.choice([1, 1, 1, 2, 2, 3])):
        if rng.random() < 0.2:
            alternatives.append(f"{_random_partial(rng)} - {_random_partial(rng)}")
            continue
        words = []
        for _ in range(rng.choice([1, 1, 2, 2, 3])):
            op = rng.choice(["", "", "=", "<", "<=", ">", ">=", ">=", "~", "~>", "^", "^"])
            space = " " if op and rng.random() < 0.1 else ""
            words.append(op + space + _random_partial(rng))
        alternatives.append(" ".join(words))
    return rng.choice([" || ", "||"]).join(alternatives)


def _random_junk(rng: random.Random) -> str:
    """Strings from range characters: mostly invalid, some valid by accident; finds parser drift."""
    return "".join(rng.choice("0123.12.x*X-^~<>=|v +ab") for _ in range(rng.randrange(1, 14)))


_RNG = random.Random(20240601)
GENERATED_RANGES = [_random_range(_RNG) for _ in range(1500)]
JUNK_RANGES = [_random_junk(_RNG) for _ in range(1500)]
ALL_RANGES = list(dict.fromkeys(FIXED_RANGES + GENERATED_RANGES + JUNK_RANGES))

# Versions tried against each range: a fixed sample per range, and every version for the
# ranges that matter most (prereleases, 0.x carets, partial hyphens).
KEY_RANGES = [
    "^0.0.1",
    "^0.1.2",
    "^0.0",
    "^0.x",
    "~0.0.1",
    "^1.2.3-beta.2",
    "~1.2.3-beta.2",
    "1.2 - 2.3",
    "1.2.3 - 2",
    "x - 2",
    "1.x || >=2.1.0-alpha",
    "* || >=1.0.0-beta",
    ">=1.2.3-alpha.3 <1.2.4",
    "<1.2",
    ">1.2",
    "<=1.x",
    "1.2.3-beta.1 - 2.0.0-rc.1",
    ">=0.0.0",
    "",
    "*",
    "<2.0.0-rc.1",
    "0.0.1 - 0.0.3",
]


def _near(rng: random.Random, text: str, count: int) -> list[str]:
    """Versions at and just past the bounds a range names, where off-by-one answers would show."""
    found = re.findall(r"(\d+)(?:\.(\d+))?(?:\.(\d+))?", text) or [("1", "", "")]
    out = []
    for _ in range(count):
        major, minor, patch = (int(n or 0) for n in rng.choice(found))
        out.append(
            rng.choice(
                [
                    f"{major}.{minor}.{patch}",
                    f"{major}.{minor}.{patch + 1}",
                    f"{major}.{minor + 1}.0",
                    f"{major + 1}.0.0",
                    f"{major}.{minor}.{patch}-{rng.choice(PRERELEASES)}",
                    f"{major}.{minor}.{patch + 1}-0",
                    f"{major + 1}.0.0-rc.1",
                    f"{max(major - 1, 0)}.9.9",
                ]
            )
        )
    return out


PAIRS = [(v, r) for r in KEY_RANGES for v in VERSIONS]
PAIRS += [(v, r) for r in ALL_RANGES for v in _RNG.sample(VERSIONS, 4) + _near(_RNG, r, 4)]

INVALID_VERSIONS = [
    "",
    " ",
    "1.2",
    "1",
    "01.2.3",
    "1.02.3",
    "1.2.03",
    "1.2.3-01",
    "=1.2.3",
    ">1.2.3",
    "latest",
    "1.2.3.4",
    "1.2.3-",
    "1.2.3+",
    "1.2.3-beta..1",
    "1.2.3+a..b",
    "9007199254740992.0.0",
    "1.2.3-α",
    "v",
    "x.y.z",
    "1.2.x",
    "1.2.3 4",
    "1.2.3-beta_1",
    "a" * 300,
    "1.2.3-" + "a" * 300,
]

# Precedence: semver.org's own example chain plus identifier corner cases.
ORDERED = [
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
    "1.0.0+build",
    "1.0.0+001",
    "1.0.1-0",
    "1.0.1-1",
    "1.0.1-2",
    "1.0.1-10",
    "1.0.1-a",
    "1.0.1-1a",
    "1.0.1--",
    "1.0.1-A",
    "1.0.1-a.b.c",
    "1.0.1-a.1",
    "1.0.1-a.1.0",
    "1.2.3",
    "1.10.0",
    "2.0.0",
    "10.0.0",
    "v1.0.0",
    "1.0.1-9007199254740990",
    "1.0.1-9007199254740991",
    "1.0.1-9007199254740992",
    "1.0.1-9007199254740993",
    "1.0.1-9007199254740993.a",
    "1.0.1-9007199254740992.b",
]
COMPARE_PAIRS = [(a, b) for a in ORDERED for b in ORDERED]

SORT_LISTS = [
    ["2.0.0", "latest", "1.0.0-beta", "v3.5.0", "1.0.0", "1.0.0+b", "1.0.0+a", "0.9.0", "not-a-version", "1.0.0"],
    [v for v in reversed(ORDERED) if "90071992547409" not in v] + ["main", "1.2"],  # no float-tie quirks
    _RNG.sample(VERSIONS, 60),
]
MAX_QUERIES = [
    (VERSIONS + ["latest", "v3.5.0"], r) for r in ["^1.2.0", "~0.1", "<2.0.0-0", "*", "1.2.3-0 - 1.2.3", ">=3.4.0"]
]
MAX_QUERIES += [(["1.2.3+a", "1.2.3+b", "1.2.3"], "1.x"), (["v3.5.0", "3.4.9", "latest"], "^3")]


WIDE = [">=0.1", "<3", "*", "^1", "~2.1", "1.x", "1.2 - 3", ">0.0.1-0", "<=2.1", "0.x", ">=1.0.0-alpha"]


def _comma_cases() -> list[tuple[str, str, str, str | None]]:
    """(version, A, B, C): ``A, B`` (or ``A, B || C``) must mean npm's ``A B`` (``A B || C``)."""
    rng = random.Random(7)
    simple = [r for r in GENERATED_RANGES + FIXED_RANGES if "||" not in r and "," not in r and r.strip()]
    cases: list[tuple[str, str, str, str | None]] = []
    for _ in range(2000):
        a = rng.choice(simple)
        b = rng.choice(simple) if rng.random() < 0.5 else rng.choice(WIDE)
        c = rng.choice(GENERATED_RANGES) if rng.random() < 0.3 else None
        version = rng.choice(VERSIONS) if rng.random() < 0.3 else _near(rng, a + " " + b, 1)[0]
        cases.append((version, a, b, c))
    return cases


COMMA_CASES = _comma_cases()

# Reads the query from stdin, answers everything with npm's semver in this one process.
NODE_SCRIPT = r"""
const semver = require('semver');
let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', () => {
  const q = JSON.parse(input);
  const valid = (list) => list.filter((v) => semver.valid(v) !== null);
  const joined = (a, b, c) => {
    const ra = semver.validRange(a), rb = semver.validRange(b);
    if (ra === null || rb === null) return null;
    const and = ra + ' ' + rb;
    if (c === null) return and;
    const rc = semver.validRange(c);
    return rc === null ? null : and + ' || ' + rc;
  };
  process.stdout.write(JSON.stringify({
    semverVersion: require('semver/package.json').version,
    validRange: q.ranges.map((r) => semver.validRange(r)),
    satisfies: q.pairs.map(([v, r]) => semver.satisfies(v, r)),
    valid: q.versions.map((v) => semver.valid(v)),
    compare: q.compare.map(([a, b]) => semver.compare(a, b)),
    sort: q.sorts.map((list) => semver.sort(valid(list))),
    rsort: q.sorts.map((list) => semver.rsort(valid(list))),
    maxSatisfying: q.max.map(([list, r]) => semver.maxSatisfying(list, r)),
    comma: q.comma.map(([v, a, b, c]) => {
      const r = joined(a, b, c);
      return r === null ? null : semver.satisfies(v, r);
    }),
  }));
});
"""


@pytest.fixture(scope="session")
def npm() -> dict[str, Any]:
    """All of npm's answers for the corpus, from one node process."""
    node, npm_cli = shutil.which("node"), shutil.which("npm")
    if not node or not npm_cli:
        pytest.fail(
            "node and npm are needed to check versions against npm's semver; install them "
            "(Debian: apt-get install nodejs npm) and run `npm install -g semver` (.ci/run does both)",
            pytrace=False,
        )
    root = subprocess.run([npm_cli, "root", "-g"], capture_output=True, text=True, check=True).stdout.strip()
    query = {
        "ranges": ALL_RANGES,
        "pairs": PAIRS,
        "versions": VERSIONS + INVALID_VERSIONS + ORDERED,
        "compare": COMPARE_PAIRS,
        "sorts": SORT_LISTS,
        "max": MAX_QUERIES,
        "comma": COMMA_CASES,
    }
    env = {**os.environ, "NODE_PATH": root}
    proc = subprocess.run(
        [node, "-e", NODE_SCRIPT], input=json.dumps(query), capture_output=True, text=True, env=env, timeout=300
    )
    if proc.returncode != 0:
        hint = " npm's semver is not installed: run `npm install -g semver`." if "semver" in proc.stderr else ""
        pytest.fail(f"node could not evaluate the corpus.{hint}\n{proc.stderr[-2000:]}", pytrace=False)
    return json.loads(proc.stdout)


def _report(mismatches: list[str], total: int) -> str:
    return f"{len(mismatches)} of {total} differ from npm semver; first ones:\n" + "\n".join(mismatches[:25])


# --- agreement with npm ------------------------------------------------------------------------


def test_corpus_is_big_and_covers_the_forms(npm: dict[str, Any]) -> None:
    valid = [r for r, v in zip(ALL_RANGES, npm["validRange"], strict=True) if v is not None]
    assert len(PAIRS) > 5000 and len(valid) > 1000
    for marker in ("^0.0", "^0.", "~", " - ", "||", "x", "*", ">=", "<", "-alpha", "v"):
        assert any(marker in r for r in valid), marker
    assert npm["semverVersion"].split(".")[0] == "7"


def test_satisfies_matches_npm_for_every_pair(npm: dict[str, Any]) -> None:
    valid_range = dict(zip(ALL_RANGES, npm["validRange"], strict=True))
    for r in KEY_RANGES:
        valid_range.setdefault(r, "ok")
    mismatches, checked = [], 0
    for (version, rng), expected in zip(PAIRS, npm["satisfies"], strict=True):
        if valid_range[rng] is None:
            assert expected is False
            continue
        checked += 1
        got = satisfies(version, rng)
        if got != expected:
            mismatches.append(f"  satisfies({version!r}, {rng!r}) = {got}, npm says {expected}")
    assert not mismatches, _report(mismatches, checked)
    assert checked > 5000


def test_range_validity_and_normal_form_match_npm_valid_range(npm: dict[str, Any]) -> None:
    """A range raises exactly when ``semver.validRange`` is null; otherwise str() is npm's form."""
    mismatches = []
    for text, expected in zip(ALL_RANGES, npm["validRange"], strict=True):
        if "," in text:
            continue
        try:
            got: str | None = str(parse_constraint(text))
        except VersionError:
            got = None
        if got != expected:
            mismatches.append(f"  {text!r}: ours {got!r}, npm validRange {expected!r}")
    assert not mismatches, _report(mismatches, len(ALL_RANGES))
    assert sum(v is None for v in npm["validRange"]) > 300, "the corpus should hold many invalid ranges too"


def test_version_validity_matches_npm_valid(npm: dict[str, Any]) -> None:
    mismatches = []
    for text, expected in zip(VERSIONS + INVALID_VERSIONS + ORDERED, npm["valid"], strict=True):
        try:
            got: str | None = parse_version(text).core
        except VersionError:
            got = None
        if got != expected or is_valid_version(text) != (expected is not None):
            mismatches.append(f"  {text!r}: ours {got!r}, npm valid {expected!r}")
    assert not mismatches, _report(mismatches, len(npm["valid"]))
    for text in INVALID_VERSIONS:
        with pytest.raises(VersionError):
            satisfies(text, "*")


def test_ordering_matches_npm_compare(npm: dict[str, Any]) -> None:
    mismatches = []
    for (a, b), expected in zip(COMPARE_PAIRS, npm["compare"], strict=True):
        va, vb = Version.parse(a), Version.parse(b)
        got = va.compare(vb)
        if got != expected or (va < vb) != (expected < 0) or (va == vb) != (expected == 0):
            mismatches.append(f"  compare({a!r}, {b!r}) = {got}, npm says {expected}")
    assert not mismatches, _report(mismatches, len(COMPARE_PAIRS))


def test_sort_and_max_satisfying_match_npm(npm: dict[str, Any]) -> None:
    for versions, expected, expected_reverse in zip(SORT_LISTS, npm["sort"], npm["rsort"], strict=True):
        assert sort_versions(versions) == expected
        assert sort_versions(versions, reverse=True) == expected_reverse
    for (versions, rng), expected in zip(MAX_QUERIES, npm["maxSatisfying"], strict=True):
        assert max_satisfying(versions, rng) == expected, rng


def test_comma_form_means_and_within_one_alternative(npm: dict[str, Any]) -> None:
    """``A, B || C`` answers as npm answers ``validRange(A) validRange(B) || validRange(C)``."""
    mismatches, checked = [], 0
    for (version, a, b, c), expected in zip(COMMA_CASES, npm["comma"], strict=True):
        text = f"{a}, {b}" + (f" || {c}" if c is not None else "")
        if expected is None:
            with pytest.raises(VersionError):
                satisfies(version, text)
            continue
        checked += 1
        got = satisfies(version, text)
        if got != expected:
            mismatches.append(f"  satisfies({version!r}, {text!r}) = {got}, npm says {expected} for the space form")
    assert not mismatches, _report(mismatches, checked)
    assert checked > 500


# --- the comma form and messages, spelled out ---------------------------------------------------


@pytest.mark.parametrize(
    ("version", "constraint", "expected"),
    [
        ("1.2.0", ">=1.2, <2.0", True),
        ("1.9.9", ">=1.2,<2.0", True),
        ("2.0.0", ">=1.2, <2.0", False),
        ("1.1.9", ">= 1.2 , < 2.0", False),
        ("2.0.0-rc.1", ">=1.2, <2.0", False),
        ("3.1.0", ">=1.2, <2.0 || >=3", True),
        ("1.5.0", "1.2 - 1.4, >=1.0", False),
        ("1.4.7", "1.2 - 1.4, >=1.0", True),
        # the prerelease exception looks at the whole comma-joined set, as for spaces
        ("1.2.3-beta.4", ">=1.2.3-beta.1, <1.3", True),
        ("1.2.4-beta.4", ">=1.2.3-beta.1, <1.3", False),
        ("1.2.3", "^1.2, ~1.2.1", True),
    ],
)
def test_comma_examples(version: str, constraint: str, expected: bool) -> None:
    assert satisfies(version, constraint) is expected


def test_comma_form_normalises_to_an_npm_range() -> None:
    assert str(Range.parse(">=1.2, <2.0")) == str(Range.parse(">=1.2 <2.0")) == ">=1.2.0 <2.0.0-0"
    assert str(Range.parse("1.2 - 1.4, >=1.0 || 3.x")) == ">=1.2.0 <1.5.0-0 >=1.0.0||>=3.0.0 <4.0.0-0"


@pytest.mark.parametrize(
    ("constraint", "bad_part"),
    [
        (">=1.x.y.z", '"1.x.y.z" is not a version'),
        ("latest", '"latest" is not a version'),
        ("^1.2.3 || ~foo", '"foo" is not a version'),
        (">=1.2.0 <", '"<" has no version after it'),
        (">=1.2,", "comma"),
        (">=1.2,, <2", "comma"),
        ("!=1.2.3", '"!=1.2.3" is not a version'),
        ("^9007199254740991", "larger than 9007199254740991"),
    ],
)
def test_invalid_constraints_name_the_bad_part(constraint: str, bad_part: str) -> None:
    with pytest.raises(VersionError) as info:
        satisfies("1.2.3", constraint)
    assert str(info.value).startswith(f'invalid constraint "{constraint}": ')
    assert bad_part in str(info.value)
    assert isinstance(info.value, ValueError)


def test_exact_message_for_the_documented_example() -> None:
    with pytest.raises(VersionError, match=r'^invalid constraint ">=1\.x\.y\.z": "1\.x\.y\.z" is not a version$'):
        satisfies("1.0.0", ">=1.x.y.z")


@pytest.mark.parametrize(
    ("version", "bad_part"),
    [
        ("1.2", '"1.2" is not MAJOR.MINOR.PATCH'),
        ("01.2.3", '"01" has a leading zero'),
        ("1.2.3-01", 'prerelease identifier "01"'),
        ("=1.2.3", '"="'),
        ("1.2.3-beta..1", 'prerelease identifier ""'),
        ("9007199254740992.0.0", "major version 9007199254740992"),
        ("", "empty"),
    ],
)
def test_invalid_versions_name_the_bad_part(version: str, bad_part: str) -> None:
    with pytest.raises(VersionError) as info:
        satisfies(version, "*")
    assert str(info.value).startswith(f'invalid version "{version}": ')
    assert bad_part in str(info.value)


def test_non_strings_are_version_errors() -> None:
    with pytest.raises(VersionError):
        satisfies("1.0.0", None)  # type: ignore[arg-type]
    with pytest.raises(VersionError):
        parse_version(1.2)  # type: ignore[arg-type]
    assert not is_valid_version(None)


# --- the Version and Range objects --------------------------------------------------------------


def test_version_object() -> None:
    v = Version.parse("v1.2.3-beta.11+sha.5")
    assert (v.major, v.minor, v.patch, v.prerelease, v.build) == (1, 2, 3, ("beta", 11), ("sha", "5"))
    assert str(v) == "1.2.3-beta.11+sha.5" and v.core == "1.2.3-beta.11"
    assert v.is_prerelease and not Version.parse("1.2.3").is_prerelease
    for text in ["0.0.0", "1.2.3-0", "1.2.3-x.7.z.92+b.0011", "10.20.30-rc.1"]:
        assert str(Version.parse(text)) == text and Version.parse(str(Version.parse(text))) == Version.parse(text)
    assert Version.parse("1.0.0+a") == Version.parse("1.0.0+b")  # build metadata is not precedence
    assert len({Version.parse("1.0.0+a"), Version.parse("1.0.0")}) == 1
    assert Version(1, 0, 0, ("beta", 2)) < Version(1, 0, 0, ("beta", 11)) < Version(1, 0, 0) <= Version(1, 0, 0)
    assert max(map(Version.parse, ["1.0.0-rc.1", "0.9.9", "1.0.0-beta"])) == Version.parse("1.0.0-rc.1")
    with pytest.raises(FrozenInstanceError):
        v.major = 2  # type: ignore[misc]


def test_range_object_and_cache() -> None:
    r = Range.parse(" ^1.2.3 ||  ~0.1 ")
    assert str(r) == ">=1.2.3 <2.0.0-0||>=0.1.0 <0.2.0-0"
    assert r.contains("1.9.0") and r.contains(Version.parse("0.1.5")) and not r.contains("0.2.0")
    assert "1.2.3" in r
    assert Range.parse(" ^1.2.3 ||  ~0.1 ") is r  # parsed once: the resolver asks thousands of times
    assert str(Range.parse("")) == "*" and str(parse_constraint("x.x")) == "*"
    with pytest.raises(VersionError):
        r.contains("latest")


def test_max_satisfying_and_sort_skip_non_versions() -> None:
    tags = ["latest", "1.0.0", "v1.4.0", "1.5.0-rc.1", "main", "2.0.0", "1.2"]
    assert max_satisfying(tags, "^1.0") == "v1.4.0"
    assert max_satisfying(tags, ">=3") is None
    assert sort_versions(tags) == ["1.0.0", "v1.4.0", "1.5.0-rc.1", "2.0.0"]
    assert sort_versions(tags, reverse=True) == ["2.0.0", "1.5.0-rc.1", "v1.4.0", "1.0.0"]
    with pytest.raises(VersionError):
        max_satisfying(tags, "^^1")
