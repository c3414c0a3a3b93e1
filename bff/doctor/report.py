"""What doctor found: one :class:`Check` per question, and the two ways it is printed.

A check is ``ok``, ``problem`` or ``skipped``; its ``summary`` is one sentence, its
``details`` what was seen, its ``remedy`` what to do (empty when nothing is). The
JSON document's shape is stable: ``{"healthy": bool, "checks": [{"id", "status",
"summary", "details", "remedy"}]}``. The exit status is 0 when no check is a
problem, 1 otherwise (2, could not check at all, is decided before any check runs).
"""

from __future__ import annotations

import enum
import json
from collections.abc import Sequence
from dataclasses import dataclass, field


class Status(enum.StrEnum):
    OK = "ok"
    PROBLEM = "problem"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Check:
    id: str
    status: Status
    summary: str
    details: tuple[str, ...] = field(default=())
    remedy: str = ""

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "status": str(self.status),
            "summary": self.summary,
            "details": list(self.details),
            "remedy": self.remedy,
        }


def ok(id: str, summary: str, details: Sequence[str] = ()) -> Check:
    return Check(id, Status.OK, summary, tuple(details))


def problem(id: str, summary: str, remedy: str, details: Sequence[str] = ()) -> Check:
    return Check(id, Status.PROBLEM, summary, tuple(details), remedy)


def skipped(id: str, summary: str, details: Sequence[str] = ()) -> Check:
    return Check(id, Status.SKIPPED, summary, tuple(details))


def exit_status(checks: Sequence[Check]) -> int:
    return 1 if any(c.status is Status.PROBLEM for c in checks) else 0


def as_json(checks: Sequence[Check]) -> str:
    document = {
        "healthy": exit_status(checks) == 0,
        "checks": [c.as_json() for c in checks],
    }
    return json.dumps(document, indent=2)


_WIDTH = max(len(s.value) for s in Status)


def as_text(checks: Sequence[Check]) -> str:
    """One line per check (``ok      id: summary``), its remedy indented under a problem."""
    lines = []
    for c in checks:
        lines.append(f"{c.status.value:<{_WIDTH}}  {c.id}: {c.summary}")
        if c.status is Status.PROBLEM and c.remedy:
            lines.append(f"{'':<{_WIDTH}}  -> {c.remedy}")
    problems = sum(c.status is Status.PROBLEM for c in checks)
    lines.append(f"{problems} problem(s) found" if problems else "healthy: no problem found")
    return "\n".join(lines)
