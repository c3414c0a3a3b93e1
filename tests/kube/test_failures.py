"""bff.kube.failures: the client library's failures become the project's errors, and
nothing of an upstream answer but its Status message (and a numeric Retry-After)
goes further. The exceptions are the library's own, built as it builds them."""

from __future__ import annotations

import json

import aiohttp
import pytest
from kubernetes_asyncio import client as k8s
from multidict import CIMultiDict, CIMultiDictProxy

from bff import errors
from bff.kube import failures


def _answer(status: int, body: object, headers: dict[str, str] | None = None) -> Exception:
    failure = k8s.ApiException(status=status, reason="Reason Phrase")
    failure.body = body if isinstance(body, bytes) else json.dumps(body).encode()
    failure.headers = CIMultiDictProxy(CIMultiDict(headers or {}))
    return failure


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (401, errors.Unauthorized),
        (403, errors.Forbidden),
        (404, errors.NotFound),
        (409, errors.UpstreamConflict),
        (422, errors.Invalid),
        (429, errors.TooManyRequests),
    ],
)
def test_an_answer_the_client_may_see_keeps_its_status_message(
    status: int, kind: type[errors.BffError]
) -> None:
    body = {"kind": "Status", "message": "upgrades.harvesterhci.io \"x\" is what it is",
            "details": {"secret": "never passed on"}}  # fmt: skip
    error = failures.translate(_answer(status, body))
    assert type(error) is kind
    assert error.message == 'upgrades.harvesterhci.io "x" is what it is'
    assert error.upstream_status == status
    assert "never passed on" not in json.dumps(error.body())


@pytest.mark.parametrize(
    ("status", "http_status"), [(500, 502), (502, 502), (503, 503), (504, 504)]
)
def test_a_server_failure_is_upstream_unavailable_without_its_words(
    status: int, http_status: int
) -> None:
    error = failures.translate(_answer(status, {"message": "etcd leader changed at 10.0.0.7"}))
    assert isinstance(error, errors.UpstreamUnavailable)
    assert error.status == http_status
    assert error.message == f"the Kubernetes API answered {status}"


def test_only_a_numeric_retry_after_is_passed_on() -> None:
    numeric = failures.translate(_answer(429, {}, {"Retry-After": "7"}))
    dated = failures.translate(_answer(429, {}, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}))
    assert numeric.headers == {"Retry-After": "7"}
    assert dated.headers == {}


def test_a_body_that_is_not_a_status_falls_back_to_the_reason() -> None:
    assert failures.translate(_answer(404, b"<html>not json</html>")).message == "Reason Phrase"
    assert failures.translate(_answer(404, [1, 2])).message == "Reason Phrase"


def test_a_long_status_message_is_shortened() -> None:
    error = failures.translate(_answer(409, {"message": "x " * 1000}))
    assert len(error.message) == errors.MAX_UPSTREAM_MESSAGE


@pytest.mark.parametrize(
    ("exc", "status", "words"),
    [
        (TimeoutError(), 504, "did not answer in time"),
        (aiohttp.ClientConnectionError("refused 10.0.0.7"), 503, "unreachable"),
        (ConnectionRefusedError(111, "refused"), 503, "unreachable"),
        (ValueError("anything else"), 502, "request failed"),
    ],
)
def test_transport_failures_say_what_happened_not_where(
    exc: BaseException, status: int, words: str
) -> None:
    error = failures.translate(exc)
    assert isinstance(error, errors.UpstreamUnavailable)
    assert error.status == status
    assert words in error.message
    assert "10.0.0.7" not in error.message


def test_failed_builds_the_same_error_from_a_raw_answer() -> None:
    error = failures.failed(409, None, json.dumps({"message": "changed"}).encode())
    assert isinstance(error, errors.UpstreamConflict)
    assert error.message == "changed"
