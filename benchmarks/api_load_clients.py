"""The client processes of benchmarks/bench_api.py: each sends its share of the schedule.

The parent process starts ``run_client`` in each client with ``multiprocessing`` and reads the
messages it puts on the results queue: ("ready", index), then ("report", index, ClientReport)
or ("failed", index, traceback text).
"""

from __future__ import annotations

import asyncio
import os
import time
import traceback
from dataclasses import dataclass, field
from multiprocessing.queues import Queue
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event
from typing import Any

import httpx

REQUEST_TIMEOUT_S = 5.0
# Requests still outstanding this long after the last one was due count as errors.
DRAIN_TIMEOUT_S = 10.0
# Seconds a ready client waits for the parent's start signal before it gives up.
START_WAIT_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class ClientSpec:
    """One client process's share of the load: every ``clients``-th request of each endpoint."""

    index: int
    clients: int
    base_url: str
    rates: tuple[tuple[str, float], ...]
    duration_s: float


@dataclass
class EndpointStats:
    """Latencies of one endpoint's successful requests and its counts, from one client or all."""

    latencies_ms: list[float] = field(default_factory=list)
    # When each successful request was due, in seconds after the start, parallel to latencies_ms.
    due_offsets_s: list[float] = field(default_factory=list)
    errors: int = 0
    sent: int = 0
    first_error: str | None = None


@dataclass
class ClientReport:
    """Measurements of one client. elapsed_s runs from the shared start to the end of the drain."""

    index: int
    pid: int
    stats: dict[str, EndpointStats]
    elapsed_s: float
    cpu_s: float
    max_send_lag_s: float


def _client_schedule(spec: ClientSpec) -> list[tuple[float, str]]:
    """Return this client's (seconds after the start, path) pairs in the order they are due."""
    schedule: list[tuple[float, str]] = []
    for path, rate in spec.rates:
        total = int(rate * spec.duration_s)
        schedule.extend((index / rate, path) for index in range(spec.index, total, spec.clients))
    schedule.sort()
    return schedule


async def _one_request(
    client: httpx.AsyncClient, path: str, due: float, offset: float, stats: EndpointStats
) -> None:
    try:
        response = await client.get(path)
        finished = time.perf_counter()
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}: {response.text[:200]}")
    except (httpx.HTTPError, RuntimeError) as error:
        stats.errors += 1
        stats.first_error = stats.first_error or f"{type(error).__name__}: {error}"
        return
    stats.latencies_ms.append((finished - due) * 1000.0)
    stats.due_offsets_s.append(offset)


async def _drive_load(
    spec: ClientSpec,
    start_event: Event,
    start_wall: Synchronized[float],
    results: Queue[tuple[Any, ...]],
) -> ClientReport:
    """Send this client's share of the open-loop schedule once the parent gives the start."""
    schedule = _client_schedule(spec)
    stats = {path: EndpointStats() for path, _rate in spec.rates}
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    tasks: list[asyncio.Task[None]] = []
    max_send_lag = 0.0
    async with httpx.AsyncClient(
        base_url=spec.base_url, timeout=REQUEST_TIMEOUT_S, limits=limits
    ) as client:
        # The first request of a fresh process loads httpx's transport code and opens a
        # connection. That one-time cost stays out of the measured schedule.
        (await client.get("/health")).raise_for_status()
        results.put(("ready", spec.index))
        if not start_event.wait(START_WAIT_TIMEOUT_S):
            raise TimeoutError("the parent process gave no start signal")
        # time.time() is the clock all processes share. The loop below runs on this process's
        # perf_counter, which is monotonic and finer.
        start = time.perf_counter() + (start_wall.value - time.time())
        cpu_before = time.process_time()
        for offset, path in schedule:
            due = start + offset
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            max_send_lag = max(max_send_lag, time.perf_counter() - due)
            stats[path].sent += 1
            tasks.append(asyncio.create_task(_one_request(client, path, due, offset, stats[path])))
        pending: set[asyncio.Task[None]] = set()
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=DRAIN_TIMEOUT_S)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu_before
    for endpoint in stats.values():
        # Cancelled requests neither finished nor failed, so count them as errors here.
        endpoint.errors = endpoint.sent - len(endpoint.latencies_ms)
        if pending and endpoint.first_error is None and endpoint.errors:
            endpoint.first_error = f"still open {DRAIN_TIMEOUT_S:g} s after the last was due"
    return ClientReport(spec.index, os.getpid(), stats, elapsed, cpu, max_send_lag)


def run_client(
    spec: ClientSpec,
    start_event: Event,
    start_wall: Synchronized[float],
    results: Queue[tuple[Any, ...]],
) -> None:
    """Run one client and put its report, or the traceback of its failure, on ``results``."""
    try:
        report = asyncio.run(_drive_load(spec, start_event, start_wall, results))
    except Exception:
        results.put(("failed", spec.index, traceback.format_exc()))
        return
    results.put(("report", spec.index, report))
