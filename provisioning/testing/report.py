"""What a test run reports: one case per KCL test lambda or Nushell test file, and the cases of one extension."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class TestCase:
    """One test: a KCL test lambda or one Nushell test file."""

    __test__ = False  # not a pytest class

    name: str
    kind: str  # "kcl" or "nu"
    passed: bool
    output: str = ""
    duration_ms: float = 0.0


@dataclass
class TestReport:
    """Every test of one extension; ``ok`` when there were tests and none failed."""

    __test__ = False

    extension: Path
    cases: list[TestCase] = field(default_factory=list)

    @property
    def passed(self) -> list[TestCase]:
        return [c for c in self.cases if c.passed]

    @property
    def failed(self) -> list[TestCase]:
        return [c for c in self.cases if not c.passed]

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        """``<extension>: N passed, M failed``, then each failure with its output indented."""
        lines = [f"{self.extension}: {len(self.passed)} passed, {len(self.failed)} failed"]
        for case in self.failed:
            lines.append(f"  FAIL  {case.kind:<3}  {case.name}")
            lines.extend(f"        {line}" for line in case.output.splitlines())
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "extension": str(self.extension),
            "ok": self.ok,
            "passed": len(self.passed),
            "failed": len(self.failed),
            "cases": [asdict(c) for c in self.cases],
        }
