"""An in-memory Kubernetes API (PyPI `kmock`) on 127.0.0.1 for reflow's API contract tests.

Prints `PORT <n>` once listening, then serves until stdin closes or SIGTERM. Pods, Secrets and
Events are declared up front, so listing them answers an empty list instead of 404.
"""

import asyncio
import signal
import sys

import kmock


async def main() -> None:
    async with kmock.KubernetesEmulator() as k8s, kmock.Server(k8s) as server:
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
