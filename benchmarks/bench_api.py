"""Measure API latency at fixed request rates while the paper replay loop runs.

Starts ``quantum-trader serve`` on 127.0.0.1 as a subprocess (1h candles of BTC/USDT and
ETH/USDT, the AI Trading Engine off so no model is trained, the journal in a temporary SQLite
file), waits for /health, then starts ``--clients`` client processes. Together they send
GET /api/v1/ai/status at ``--status-rate`` and GET /api/v1/signals/BTC%2FUSDT at
``--signal-rate`` requests per second, both at the same time.

Each endpoint's schedule is open-loop: its request i is due at start + i / rate whatever
happened to earlier requests, and its latency runs from that due time to the end of the
response. Client k of n sends the requests whose i % n == k, so every client carries the same
share of both endpoints. A server stall therefore shows as latency of every request due during
it, not as fewer requests sent. The latency includes the clients' own delays, and the server,
the clients and this parent process share the machine's cores.

During the load this parent process reads the replay step from /api/v1/ai/status once a
second, to show whether the replay loop kept advancing.

Usage: python benchmarks/bench_api.py [--duration 20] [--status-rate 200] [--signal-rate 50]
    [--clients 2] [--speed 5]
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import os
import platform
import queue
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import httpx
from api_load_clients import (
    DRAIN_TIMEOUT_S,
    REQUEST_TIMEOUT_S,
    ClientReport,
    ClientSpec,
    EndpointStats,
    run_client,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
STATUS_PATH = "/api/v1/ai/status"
SIGNAL_PATH = "/api/v1/signals/BTC%2FUSDT"
STOP_TIMEOUT_S = 15.0
# Seconds for every spawned client to import httpx, send its warm-up request and report ready.
CLIENT_READY_TIMEOUT_S = 30.0
# The shared start lies this far after the last client reported ready, so every client is
# waiting for it when it comes.
START_MARGIN_S = 0.5
# Seconds after the drain for the last client report to arrive before the run fails.
REPORT_GRACE_S = 30.0
REPLAY_POLL_INTERVAL_S = 1.0
# NOTE: an asyncio client process with httpx used about 1.3 ms of CPU per request at 125
# requests per second, and more per request once requests queued (2-core AMD EPYC VM). Above
# this share of a core a client's latencies are mostly its own backlog, not the server's.
CLIENT_SATURATED_CORES = 0.75
# Above this share of all cores the processes wait for a core, and that wait is in the latencies.
MACHINE_SATURATED_SHARE = 0.9
# Other work on the machine (other processes, interrupt handling) above this many cores during
# the load disturbs the measurement.
OTHER_LOAD_CORES = 0.1
# The acceptance target: p99 of the status endpoint under 50 ms at 200 requests per second.
TARGET_P99_MS = 50.0


@dataclass
class ReplaySample:
    offset_s: float
    step: int
    finished: bool
    # The parent's own request, one at a time on one connection, is a control for the clients.
    latency_ms: float


@dataclass
class LoadResult:
    """The client reports, the replay samples and the parent's own measurements of one load."""

    reports: list[ClientReport]
    samples: list[ReplaySample]
    failed_samples: int
    wall_s: float
    server_cpu_s: float
    parent_cpu_s: float
    machine_busy_s: float
    machine_steal_s: float


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _cpu_seconds(pid: int) -> float:
    """Return the user plus system CPU seconds a process has used, from /proc (Linux only)."""
    fields = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8").rpartition(")")[2].split()
    # After the command name, utime and stime are the 12th and 13th fields, in clock ticks.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_cpu_seconds() -> tuple[float, float]:
    """Return the busy and the stolen CPU seconds of all cores since boot, from /proc/stat."""
    first_line = Path("/proc/stat").read_text(encoding="utf-8").splitlines()[0]
    # The "cpu" line counts clock ticks: user nice system idle iowait irq softirq steal ...
    user, nice, system, _idle, _iowait, irq, softirq, steal = (
        int(value) for value in first_line.split()[1:9]
    )
    tick = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq) / tick, steal / tick


# The server.


def _server_config(folder: Path) -> str:
    """Return the TOML settings of the served replay, journaling to SQLite inside ``folder``."""
    datadir = json.dumps(str(REPO_ROOT / "data" / "binance"))
    journal = json.dumps(f"sqlite:///{folder / 'journal.db'}")
    return (
        f'[data]\ndatadir = {datadir}\ntimeframe = "1h"\nsymbols = ["BTC/USDT", "ETH/USDT"]\n\n'
        f'[model]\nmode = "off"\n\n'
        f"[service]\ndatabase_url = {journal}\n"
    )


def _start_server(port: int, speed: float, config: Path, log: Path) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-c",
        "from quantum_trader.cli.main import app; app()",
        "serve",
        "--host",
        HOST,
        "--port",
        str(port),
        "--speed",
        str(speed),
        "--config",
        str(config),
    ]
    with log.open("wb") as output:
        return subprocess.Popen(command, cwd=REPO_ROOT, stdout=output, stderr=subprocess.STDOUT)


def _stop_server(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is not None:
        return
    server.terminate()
    try:
        server.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=STOP_TIMEOUT_S)


def _wait_for_health(base_url: str, server: subprocess.Popen[bytes], timeout_s: float) -> float:
    """Poll /health until it returns 200 and return the seconds waited."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with code {server.returncode} before /health")
        try:
            if httpx.get(f"{base_url}/health", timeout=2.0).status_code == 200:
                return time.monotonic() - start
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise TimeoutError(f"/health did not return 200 within {timeout_s:g} s")


def _server_metrics(base_url: str) -> dict[str, float]:
    """Read the server's own mean handler time per route and its replay loop lag."""
    text = httpx.get(f"{base_url}/metrics", timeout=REQUEST_TIMEOUT_S).text
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(("qt_http_request_duration_seconds_sum", "qt_loop_lag_seconds")) or (
            line.startswith("qt_http_request_duration_seconds_count")
        ):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


# The parent process: start the clients, watch the replay, collect the reports.


def _start_clients(
    specs: list[ClientSpec],
) -> tuple[
    list[BaseProcess],
    Event,
    Synchronized[float],
    Queue[tuple[Any, ...]],
]:
    # spawn gives each client a fresh interpreter, with no copy of this process's state.
    context = multiprocessing.get_context("spawn")
    start_event = context.Event()
    start_wall: Synchronized[float] = context.Value("d", 0.0)
    results: Queue[tuple[Any, ...]] = context.Queue()
    processes: list[BaseProcess] = [
        context.Process(
            target=run_client,
            args=(spec, start_event, start_wall, results),
            name=f"bench-client-{spec.index}",
        )
        for spec in specs
    ]
    for process in processes:
        process.start()
    return processes, start_event, start_wall, results


def _next_message(results: Queue[tuple[Any, ...]], deadline: float) -> tuple[Any, ...]:
    try:
        message = results.get(timeout=max(0.0, deadline - time.monotonic()))
    except queue.Empty:
        raise TimeoutError("a client process neither reported nor failed in time") from None
    if message[0] == "failed":
        raise RuntimeError(f"client {message[1]} failed:\n{message[2]}")
    return message


def _read_replay(poller: httpx.Client, started: float) -> ReplaySample | None:
    sent = time.perf_counter()
    try:
        body = poller.get(STATUS_PATH).json()
    except (httpx.HTTPError, ValueError):
        return None
    latency_ms = (time.perf_counter() - sent) * 1000.0
    offset = time.time() - started
    return ReplaySample(offset, int(body["step"]), bool(body["finished"]), latency_ms)


def _wait_until(wall_time: float) -> None:
    remaining = wall_time - time.time()
    if remaining > 0:
        time.sleep(remaining)


def _collect_reports(
    specs: list[ClientSpec],
    results: Queue[tuple[Any, ...]],
    poller: httpx.Client,
    started: float,
) -> tuple[list[ClientReport], list[ReplaySample], int]:
    """Wait for every client's report and sample the replay step once a second meanwhile."""
    deadline = time.monotonic() + specs[0].duration_s + DRAIN_TIMEOUT_S + REPORT_GRACE_S
    reports: list[ClientReport] = []
    samples: list[ReplaySample] = []
    failed_samples = 0
    next_poll = started
    while len(reports) < len(specs):
        if time.time() >= next_poll:
            sample = _read_replay(poller, started)
            if sample is None:
                failed_samples += 1
            else:
                samples.append(sample)
            next_poll += REPLAY_POLL_INTERVAL_S
        try:
            message = _next_message(results, min(deadline, time.monotonic() + 0.05))
        except TimeoutError:
            if time.monotonic() >= deadline:
                raise
            continue
        reports.append(message[2])
    return reports, samples, failed_samples


def _run_load(specs: list[ClientSpec], base_url: str, server_pid: int) -> LoadResult:
    """Start the clients together, run them to the end and measure the server meanwhile."""
    processes, start_event, start_wall, results = _start_clients(specs)
    try:
        deadline = time.monotonic() + CLIENT_READY_TIMEOUT_S
        for _ in specs:
            _next_message(results, deadline)
        started = time.time() + START_MARGIN_S
        start_wall.value = started
        start_event.set()
        with httpx.Client(base_url=base_url, timeout=REQUEST_TIMEOUT_S) as poller:
            _wait_until(started)
            server_cpu = _cpu_seconds(server_pid)
            parent_cpu = time.process_time()
            machine_busy, machine_steal = _machine_cpu_seconds()
            reports, samples, failed_samples = _collect_reports(specs, results, poller, started)
            wall = time.time() - started
            server_cpu = _cpu_seconds(server_pid) - server_cpu
            parent_cpu = time.process_time() - parent_cpu
            busy_after, steal_after = _machine_cpu_seconds()
            final = _read_replay(poller, started)
        # A final sample taken right after the last poll would show a short interval as a stall.
        last_offset = samples[-1].offset_s if samples else float("-inf")
        if final is not None and final.offset_s - last_offset >= 0.5 * REPLAY_POLL_INTERVAL_S:
            samples.append(final)
    finally:
        for process in processes:
            process.join(timeout=STOP_TIMEOUT_S)
            if process.is_alive():
                process.terminate()
                process.join(timeout=STOP_TIMEOUT_S)
    reports.sort(key=lambda report: report.index)
    return LoadResult(
        reports,
        samples,
        failed_samples,
        wall,
        server_cpu,
        parent_cpu,
        busy_after - machine_busy,
        steal_after - machine_steal,
    )


# The report.


def _percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, int(-(-fraction * len(sorted_values) // 1)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def _merge_endpoint(reports: list[ClientReport], path: str) -> EndpointStats:
    merged = EndpointStats()
    for report in reports:
        stats = report.stats[path]
        merged.latencies_ms.extend(stats.latencies_ms)
        merged.due_offsets_s.extend(stats.due_offsets_s)
        merged.sent += stats.sent
        merged.errors += stats.errors
        merged.first_error = merged.first_error or stats.first_error
    return merged


def _print_latency_table(
    reports: list[ClientReport], rates: tuple[tuple[str, float], ...]
) -> dict[str, list[float]]:
    """Print one row per endpoint and return each endpoint's latencies in ascending order."""
    elapsed = max(report.elapsed_s for report in reports)
    print(  # noqa: T201
        "| endpoint | target req/s | sent | errors | achieved req/s | p50 ms | p90 ms | p99 ms "
        "| max ms |"
    )
    print("|---|---|---|---|---|---|---|---|---|")  # noqa: T201
    ordered_by_path: dict[str, list[float]] = {}
    notes: list[str] = []
    for path, rate in rates:
        endpoint = _merge_endpoint(reports, path)
        ordered = sorted(endpoint.latencies_ms)
        ordered_by_path[path] = ordered
        achieved = len(ordered) / elapsed
        if ordered:
            cells = [_percentile(ordered, q) for q in (0.5, 0.9, 0.99)] + [ordered[-1]]
            figures = " | ".join(f"{value:.1f}" for value in cells)
        else:
            figures = "- | - | - | -"
        print(  # noqa: T201
            f"| GET {path} | {rate:g} | {endpoint.sent} | {endpoint.errors} | {achieved:.1f} "
            f"| {figures} |"
        )
        if endpoint.first_error:
            notes.append(f"GET {path}: first error: {endpoint.first_error}")
        slow = [
            offset
            for offset, latency in zip(endpoint.due_offsets_s, endpoint.latencies_ms, strict=True)
            if latency > TARGET_P99_MS
        ]
        if slow:
            notes.append(
                f"GET {path}: {len(slow)} requests over {TARGET_P99_MS:g} ms, due from "
                f"{min(slow):.1f} s to {max(slow):.1f} s after the start"
            )
    for note in notes:
        print(note)  # noqa: T201
    return ordered_by_path


def _print_replay(samples: list[ReplaySample], failed_samples: int) -> None:
    """Print how far the replay advanced during the load and its slowest poll interval."""
    if len(samples) < 2:
        print(f"replay: only {len(samples)} step samples, {failed_samples} failed")  # noqa: T201
        return
    first, last = samples[0], samples[-1]
    advances = [later.step - earlier.step for earlier, later in itertools.pairwise(samples)]
    rate = (last.step - first.step) / (last.offset_s - first.offset_s)
    print(  # noqa: T201
        f"replay: step {first.step} -> {last.step} from {first.offset_s:.1f} s to "
        f"{last.offset_s:.1f} s after the start ({rate:.2f} steps/s), finished={last.finished}; "
        f"{len(samples)} samples about {REPLAY_POLL_INTERVAL_S:g} s apart, steps per interval "
        f"min {min(advances)} max {max(advances)}, intervals without a step: "
        f"{advances.count(0)}, failed samples: {failed_samples}"
    )
    latencies = sorted(sample.latency_ms for sample in samples)
    median = _percentile(latencies, 0.5)
    print(  # noqa: T201
        f"the parent's step samples (one request at a time): median {median:.1f} ms, "
        f"max {latencies[-1]:.1f} ms"
    )


def _print_cpu(result: LoadResult) -> None:
    """Print each process's CPU share and warn where a share makes the latencies suspect."""
    cores = os.cpu_count() or 1
    wall = result.wall_s
    for report in result.reports:
        share = report.cpu_s / report.elapsed_s
        print(  # noqa: T201
            f"client {report.index} (pid {report.pid}): {share:.2f} cores, "
            f"max send lag {report.max_send_lag_s * 1000:.1f} ms"
        )
        if share > CLIENT_SATURATED_CORES:
            print(  # noqa: T201
                f"WARNING: client {report.index} used {share:.2f} of a core, so its own queueing "
                "is in the latencies; add --clients or lower the rates"
            )

    server = result.server_cpu_s / wall
    clients = sum(report.cpu_s for report in result.reports) / wall
    parent = result.parent_cpu_s / wall
    ours = server + clients + parent
    busy = result.machine_busy_s / wall
    steal = result.machine_steal_s / wall
    # /proc/stat and the per-process counters tick separately, so the difference can dip below 0.
    others = max(0.0, busy - ours)
    print(  # noqa: T201
        f"CPU during the load: server {server:.2f} cores, clients {clients:.2f} cores, "
        f"this parent {parent:.2f} cores; the whole machine {busy:.2f} of {cores} cores busy "
        f"(other processes and interrupts {others:.2f}), {steal:.2f} cores stolen by the "
        "hypervisor"
    )

    if busy + steal > MACHINE_SATURATED_SHARE * cores:
        print(  # noqa: T201
            f"WARNING: {busy + steal:.2f} of {cores} cores were busy or stolen, so the latencies "
            "include waiting for a core; run the clients on another machine"
        )
    if others > OTHER_LOAD_CORES:
        print(  # noqa: T201
            f"WARNING: other processes and interrupts used {others:.2f} cores during the load, "
            "so the latencies include their contention; rerun on an idle machine"
        )


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=20.0, help="Load duration in seconds.")
    parser.add_argument(
        "--status-rate",
        type=float,
        default=200.0,
        help=f"Requests per second to GET {STATUS_PATH}.",
    )
    parser.add_argument(
        "--signal-rate",
        type=float,
        default=50.0,
        help=f"Requests per second to GET {SIGNAL_PATH}, sent at the same time. 0 sends none.",
    )
    parser.add_argument(
        "--clients", type=int, default=2, help="Client processes that share the load evenly."
    )
    parser.add_argument("--speed", type=float, default=5.0, help="Replay candle times per second.")
    parser.add_argument(
        "--startup-timeout", type=float, default=120.0, help="Seconds to wait for /health."
    )
    args = parser.parse_args()
    if not 0 < args.duration <= 600:
        parser.error(f"--duration must be in (0, 600] seconds, got {args.duration}")
    if not 0 < args.status_rate <= 5000:
        parser.error(
            f"--status-rate must be in (0, 5000] requests per second, got {args.status_rate}"
        )
    if not 0 <= args.signal_rate <= 5000:
        parser.error(
            f"--signal-rate must be in [0, 5000] requests per second, got {args.signal_rate}"
        )
    if not 1 <= args.clients <= 32:
        parser.error(f"--clients must be from 1 to 32 processes, got {args.clients}")
    return args


def _measure(args: argparse.Namespace, base_url: str, server: subprocess.Popen[bytes]) -> None:
    waited = _wait_for_health(base_url, server, args.startup_timeout)
    print(f"server ready after {waited:.1f} s on {base_url}")  # noqa: T201
    rates: tuple[tuple[str, float], ...] = ((STATUS_PATH, args.status_rate),)
    if args.signal_rate > 0:
        rates += ((SIGNAL_PATH, args.signal_rate),)
    specs = [
        ClientSpec(index, args.clients, base_url, rates, args.duration)
        for index in range(args.clients)
    ]
    result = _run_load(specs, base_url, server.pid)
    if server.poll() is not None:
        raise RuntimeError(f"the server exited with code {server.returncode} under load")

    print(f"date: {datetime.now(UTC).isoformat(timespec='seconds')}")  # noqa: T201
    print(f"machine: {_cpu_model()}, {os.cpu_count()} cores, {platform.platform()}")  # noqa: T201
    print(f"python: {platform.python_version()}")  # noqa: T201
    print(f"command: {' '.join([sys.executable, *sys.argv])}")  # noqa: T201
    print(  # noqa: T201
        f"load wall time: {result.wall_s:.2f} s with {args.clients} client processes"
    )
    _print_replay(result.samples, result.failed_samples)
    _print_cpu(result)
    ordered = _print_latency_table(result.reports, rates)
    status = ordered[STATUS_PATH]
    if status:
        p99 = _percentile(status, 0.99)
        verdict = "met" if p99 < TARGET_P99_MS else "missed"
        print(  # noqa: T201
            f"status p99 {p99:.1f} ms at {args.status_rate:g} req/s against the "
            f"{TARGET_P99_MS:g} ms target: {verdict}"
        )
    print("server-side metrics after the run:")  # noqa: T201
    for name, value in _server_metrics(base_url).items():
        print(f"  {name} {value:g}")  # noqa: T201


def main() -> None:
    args = _parse_args()
    port = _free_port()
    base_url = f"http://{HOST}:{port}"
    with tempfile.TemporaryDirectory(prefix="bench_api_") as folder:
        config = Path(folder) / "bench.toml"
        config.write_text(_server_config(Path(folder)), encoding="utf-8")
        log = Path(folder) / "server.log"
        server = _start_server(port, args.speed, config, log)
        try:
            _measure(args, base_url, server)
        except Exception:
            # The server's own output usually names the cause of a failed start or run.
            print(log.read_text(encoding="utf-8", errors="replace")[-4000:])  # noqa: T201
            raise
        finally:
            _stop_server(server)


if __name__ == "__main__":
    main()
