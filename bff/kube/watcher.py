"""The read cache's upstream: list the Upgrades, then watch them from a resourceVersion."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Callable

import aiohttp
import orjson

from bff.kube.calls import Calls, JSONObject
from bff.kube.failures import failed, read_ok, translate
from bff.upgrade_resource import GROUP, PLURAL, VERSION


class UpgradeWatcher(Calls):
    """The cache's upstream (BFF's own identity): list, then watch from a resourceVersion.

    Both answers are read as bytes and parsed once (orjson); nothing goes
    through the generated client's model deserialisation.
    """

    #: The server closes a watch after this long; the cache simply watches again.
    WATCH_SECONDS = 300

    async def list(self, namespace: str) -> JSONObject:
        response = await self._call(
            "list",
            self._objects.list_namespaced_custom_object,
            GROUP, VERSION, namespace, PLURAL,
            _preload_content=False,
        )  # fmt: skip
        listed: JSONObject = orjson.loads(await read_ok(response))
        return listed

    async def watch(
        self, namespace: str, resource_version: str, on_open: Callable[[], None]
    ) -> AsyncGenerator[JSONObject, None]:
        """The watch's events, parsed; ``on_open`` runs once the server has accepted it."""
        started = time.perf_counter()
        try:
            response = await self._objects.list_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL,
                watch=True,
                resource_version=resource_version,
                allow_watch_bookmarks=True,
                timeout_seconds=self.WATCH_SECONDS,
                _preload_content=False,
                _request_timeout=aiohttp.ClientTimeout(
                    connect=self._timeout[0], sock_connect=self._timeout[0],
                    sock_read=self.WATCH_SECONDS + 30,
                ),
            )  # fmt: skip
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            self._observe("watch", time.perf_counter() - started, 0)
            raise translate(exc) from None
        self._observe("watch", time.perf_counter() - started, response.status)
        async with response:
            if response.status != 200:
                body = await response.read()
                raise failed(response.status, response.reason, body)
            on_open()
            ended = False
            try:
                while line := await response.content.readline():
                    if line.strip():
                        yield orjson.loads(line)
                ended = True
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                raise translate(exc) from None
            finally:
                if not ended:  # given up on: cancelled, closed by the cache, or broken
                    self._api.rest_client.dropped.drop(response)
