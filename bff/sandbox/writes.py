"""The one path every Upgrade write takes: create, PUT, merge patch and JSON patch.

:func:`write` runs the steps in kube-apiserver's order:

1. ``new_body`` computes the request's object from the live one (a create and a PUT
   ignore it; a patch applies to it), and the decoder prunes and defaults it;
2. ``admission.mutate`` may change it (mutating admission);
3. the store checks it against the live object (``Store.prepare_create`` /
   ``Store.prepare_update``): BeforeCreate/BeforeUpdate, metadata and schema
   validation, the optimistic lock;
4. ``admission.validate`` may refuse it (validating admission), by raising a
   :class:`~bff.sandbox.status.StatusError`;
   (``fieldValidation=Strict`` refuses a body with unknown fields here, before admission);
5. unless the request is a dry run (``dryRun=All``), the store commits it. If the object
   changed during the awaits above, the steps run again on the new live object, as the
   registry's GuaranteedUpdate retries; a PUT then meets the optimistic lock (409).

The emulator consults the :class:`Admission` under its ``EMULATOR_ADMISSION`` key,
:class:`NoAdmission` unless another one is installed.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from bff.sandbox.resource import JSON, KIND, NAMESPACES, VERSION
from bff.sandbox.schema import decode
from bff.sandbox.status import StatusError, invalid
from bff.sandbox.store import ObjectChanged, PendingWrite, Store
from bff.sandbox.users import UserInfo

__all__ = ["Admission", "NoAdmission", "WriteRequest", "write"]

# How often a write is redone because the object changed while admission ran.
_ATTEMPTS = 5


@dataclass(frozen=True)
class WriteRequest:
    """Who writes what: the attributes an admission step sees."""

    operation: Literal["CREATE", "UPDATE"]
    namespace: str
    #: The object's name; empty for a create that asks for a generated name.
    name: str
    user: UserInfo
    dry_run: bool = False
    #: ``fieldValidation``: ``Strict`` refuses unknown fields, ``Warn`` (the default) warns,
    #: ``Ignore`` drops them silently.
    field_validation: Literal["Strict", "Warn", "Ignore"] = "Warn"
    #: A patch (its strict-decoding refusal is worded differently from a PUT's or POST's).
    patch: bool = False


class Admission(Protocol):
    """Admission control for Upgrade writes (``old`` is None for a create)."""

    async def mutate(
        self, request: WriteRequest, obj: JSON, old: JSON | None
    ) -> tuple[JSON, list[str]]:
        """The object to go on with, and warnings for the client."""
        ...

    async def validate(self, request: WriteRequest, obj: JSON, old: JSON | None) -> list[str]:
        """Warnings for the client; raise StatusError to refuse the write."""
        ...


class NoAdmission:
    """Admits everything unchanged: the emulator without admission webhooks."""

    async def mutate(
        self, request: WriteRequest, obj: JSON, old: JSON | None
    ) -> tuple[JSON, list[str]]:
        return obj, []

    async def validate(self, request: WriteRequest, obj: JSON, old: JSON | None) -> list[str]:
        return []


async def write(
    store: Store,
    admission: Admission,
    request: WriteRequest,
    new_body: Callable[[JSON | None], Any],
    *,
    uid_precondition: str | None = None,
) -> PendingWrite:
    """Run one write through decoding, admission and the store; return what was written
    (for a dry run, what would have been)."""
    for _ in range(_ATTEMPTS):
        old: JSON | None = None
        if request.operation == "UPDATE":
            old = store.live_for_update(
                request.namespace, request.name, uid_precondition=uid_precondition
            )
        body = new_body(copy.deepcopy(old) if old is not None else None)
        obj, warnings = decode(body)
        if request.field_validation == "Strict" and warnings:
            raise _strict_decoding_error(request, body, warnings)
        if request.field_validation == "Ignore":
            warnings = []
        if request.operation == "CREATE" and request.namespace not in NAMESPACES:
            # The NamespaceLifecycle admission plugin, first of the admission chain.
            raise StatusError.not_found(request.namespace, resource="namespaces", group="")
        obj, mutated = await admission.mutate(request, obj, old)
        if old is None:
            pending = store.prepare_create(request.namespace, obj)
        else:
            pending = store.prepare_update(request.namespace, old, obj)
        pending.warnings = warnings + mutated + pending.warnings
        pending.warnings += await admission.validate(request, pending.obj, old)
        if request.dry_run:
            return pending
        try:
            pending.obj = store.commit(pending)
        except ObjectChanged:
            if old is None:
                raise StatusError.already_exists(pending.name) from None
            continue
        return pending
    raise StatusError.conflict(request.name)


def _strict_decoding_error(request: WriteRequest, body: Any, unknown: list[str]) -> StatusError:
    reason = f"strict decoding error: {', '.join(unknown)}"
    if not request.patch:
        return StatusError.bad_request(
            f'{KIND} in version "{VERSION}" cannot be handled as a {KIND}: {reason}'
        )
    # The patcher reports the patched object, as Go encodes it, in a field error.
    patched = json.dumps(body, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    return StatusError.invalid("", [invalid("patch", patched, reason)], group="", kind="")
