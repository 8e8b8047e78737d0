"""An in-memory Kubernetes API (PyPI `kmock`) on 127.0.0.1 for reflow's API contract tests.

Prints `PORT <n>` once listening, then serves until stdin closes or SIGTERM. Pods, Secrets and
Events are declared up front, so listing them answers an empty list instead of 404.

kmock stores objects as they are sent; a real API server stamps `metadata.resourceVersion` (and a
uid and creationTimestamp on create) on every write, and kube-rs' watcher requires the version on
every watch event. The emulator here stamps them the same way, nothing else.
"""

import asyncio
import datetime
import itertools
import signal
import sys
import uuid

import kmock
from kmock._internal import enums

_versions = itertools.count(1)


class Emulator(kmock.KubernetesEmulator):
    async def _handle(self, request):
        if request.resource is not None and isinstance(request.data, dict):
            meta = request.data.setdefault('metadata', {})
            if request.action == enums.action.CREATE:
                meta['uid'] = str(uuid.uuid4())
                meta['creationTimestamp'] = datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%dT%H:%M:%SZ')
            if request.action in (enums.action.CREATE, enums.action.UPDATE):
                meta['resourceVersion'] = str(next(_versions))
        return await super()._handle(request)


async def main() -> None:
    async with Emulator() as k8s, kmock.Server(k8s) as server:
        for res in ('v1/pods', 'v1/secrets', 'v1/events'):
            k8s.resources[res] = kmock.ResourceInfo(namespaced=True)
        print(f"PORT {server.port}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        # The test harness holds our stdin: when it goes away, so do we.
        loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not sys.stdin.buffer.read1(4096) else None)
        await stop.wait()


if __name__ == '__main__':
    asyncio.run(main())
