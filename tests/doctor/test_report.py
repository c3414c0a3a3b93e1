"""bff.doctor.report: the exit status, and the JSON and text forms of what doctor found."""

from __future__ import annotations

import json

from bff.doctor import report

OK = report.ok("crds", "every guarded CRD is served", ["upgrades: no status subresource"])
SKIPPED = report.skipped("route", "skipped: no --url")
PROBLEM = report.problem("webhook.registered", "no webhook", "helm upgrade --set webhook.enabled")


def test_any_problem_is_exit_1_else_0() -> None:
    assert report.exit_status([OK, SKIPPED]) == 0
    assert report.exit_status([]) == 0
    assert report.exit_status([OK, PROBLEM, SKIPPED]) == 1


def test_the_json_document_keeps_its_shape() -> None:
    document = json.loads(report.as_json([OK, PROBLEM]))
    assert document == {
        "healthy": False,
        "checks": [
            {"id": "crds", "status": "ok", "summary": "every guarded CRD is served",
             "details": ["upgrades: no status subresource"], "remedy": ""},
            {"id": "webhook.registered", "status": "problem", "summary": "no webhook",
             "details": [], "remedy": "helm upgrade --set webhook.enabled"},
        ],
    }  # fmt: skip
    assert json.loads(report.as_json([OK]))["healthy"] is True


def test_the_text_is_a_line_per_check_and_a_remedy_under_a_problem() -> None:
    assert report.as_text([OK, SKIPPED, PROBLEM]).splitlines() == [
        "ok       crds: every guarded CRD is served",
        "skipped  route: skipped: no --url",
        "problem  webhook.registered: no webhook",
        "         -> helm upgrade --set webhook.enabled",
        "1 problem(s) found",
    ]
    assert report.as_text([OK]).splitlines()[-1] == "healthy: no problem found"
