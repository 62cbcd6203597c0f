"""Measure API latency under a fixed request rate while the paper replay loop runs.

Starts ``quantum-trader serve`` on 127.0.0.1 as a subprocess (1h candles of BTC/USDT and
ETH/USDT, the AI Trading Engine off so no model is trained), waits for /health, then sends
GET /api/v1/ai/status and GET /api/v1/signals/BTC%2FUSDT in alternation at a fixed total rate.
The schedule is open-loop: request i is due at start + i / rate whatever happened to earlier
requests, and its latency runs from that due time to the end of the response. A server stall
therefore shows as latency of every request due during it, not as fewer requests sent. The
latency includes this client's own delays, and both processes share the machine's cores.

Usage: python benchmarks/bench_api.py [--duration 20] [--rate 200] [--speed 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
ENDPOINTS = ("/api/v1/ai/status", "/api/v1/signals/BTC%2FUSDT")
CONFIG_TOML = """\
[data]
timeframe = "1h"
symbols = ["BTC/USDT", "ETH/USDT"]

[model]
mode = "off"
"""
REQUEST_TIMEOUT_S = 5.0
# Requests still outstanding this long after the last one was due count as errors.
DRAIN_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 15.0
# NOTE: one asyncio process with httpx spends about 2 ms of CPU per request (measured on a
# 2-core AMD EPYC VM), so it fell seconds behind at 300 requests per second. Above this share
# of a core the latencies are mostly the client's own backlog, not the server's.
CLIENT_SATURATED_CORES = 0.75


@dataclass
class EndpointStats:
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    sent: int = 0
    first_error: str | None = None


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


async def _one_request(
    client: httpx.AsyncClient, path: str, due: float, stats: EndpointStats
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


async def _drive_load(
    base_url: str, rate: float, duration_s: float
) -> tuple[dict[str, EndpointStats], float, float]:
    """Send the open-loop schedule and return the stats, wall time and maximum send lag."""
    stats = {path: EndpointStats() for path in ENDPOINTS}
    total = int(rate * duration_s)
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    tasks: list[asyncio.Task[None]] = []
    max_send_lag = 0.0
    async with httpx.AsyncClient(
        base_url=base_url, timeout=REQUEST_TIMEOUT_S, limits=limits
    ) as client:
        start = time.perf_counter()
        for index in range(total):
            due = start + index / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            max_send_lag = max(max_send_lag, time.perf_counter() - due)
            path = ENDPOINTS[index % len(ENDPOINTS)]
            stats[path].sent += 1
            tasks.append(asyncio.create_task(_one_request(client, path, due, stats[path])))
        _done, pending = await asyncio.wait(tasks, timeout=DRAIN_TIMEOUT_S)
        for task in pending:
            task.cancel()
        if pending:
            print(  # noqa: T201
                f"{len(pending)} requests were still open {DRAIN_TIMEOUT_S:g} s after the last "
                "one was due; they were cancelled and count as errors"
            )
        await asyncio.gather(*pending, return_exceptions=True)
        elapsed = time.perf_counter() - start
    for endpoint in stats.values():
        # Cancelled requests neither finished nor failed, so count them as errors here.
        endpoint.errors = endpoint.sent - len(endpoint.latencies_ms)
    return stats, elapsed, max_send_lag


def _percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, int(-(-fraction * len(sorted_values) // 1)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def _replay_step(base_url: str) -> tuple[int, int, bool]:
    """Return the replay's step, its number of steps and whether it has finished."""
    body = httpx.get(f"{base_url}/api/v1/ai/status", timeout=REQUEST_TIMEOUT_S).json()
    return int(body["step"]), int(body["steps"]), bool(body["finished"])


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


def _print_report(
    stats: dict[str, EndpointStats], elapsed: float, send_lag: float, server: dict[str, float]
) -> None:
    print(f"date: {datetime.now(UTC).isoformat(timespec='seconds')}")  # noqa: T201
    print(f"machine: {_cpu_model()}, {os.cpu_count()} cores, {platform.platform()}")  # noqa: T201
    print(f"python: {platform.python_version()}")  # noqa: T201
    print(f"command: {' '.join([sys.executable, *sys.argv])}")  # noqa: T201
    print(f"load wall time: {elapsed:.2f} s, max client send lag: {send_lag * 1000:.1f} ms")  # noqa: T201
    header = "| endpoint | sent | errors | achieved req/s | p50 ms | p90 ms | p99 ms | max ms |"
    print(header)  # noqa: T201
    print("|---|---|---|---|---|---|---|---|")  # noqa: T201
    for path, endpoint in stats.items():
        ordered = sorted(endpoint.latencies_ms)
        achieved = len(ordered) / elapsed
        if ordered:
            cells = [_percentile(ordered, q) for q in (0.5, 0.9, 0.99)] + [ordered[-1]]
            figures = " | ".join(f"{value:.1f}" for value in cells)
        else:
            figures = "- | - | - | -"
        row = f"| GET {path} | {endpoint.sent} | {endpoint.errors} | {achieved:.1f} | {figures} |"
        print(row)  # noqa: T201
        if endpoint.first_error:
            print(f"  first error: {endpoint.first_error}")  # noqa: T201
    print("server-side metrics after the run:")  # noqa: T201
    for name, value in server.items():
        print(f"  {name} {value:g}")  # noqa: T201


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=20.0, help="Load duration in seconds.")
    parser.add_argument(
        "--rate", type=float, default=200.0, help="Total requests per second, all endpoints."
    )
    parser.add_argument("--speed", type=float, default=5.0, help="Replay candle times per second.")
    parser.add_argument(
        "--startup-timeout", type=float, default=120.0, help="Seconds to wait for /health."
    )
    args = parser.parse_args()
    if not 0 < args.duration <= 600:
        parser.error(f"--duration must be in (0, 600] seconds, got {args.duration}")
    if not 0 < args.rate <= 5000:
        parser.error(f"--rate must be in (0, 5000] requests per second, got {args.rate}")
    return args


def _measure(args: argparse.Namespace, base_url: str, server: subprocess.Popen[bytes]) -> None:
    waited = _wait_for_health(base_url, server, args.startup_timeout)
    print(f"server ready after {waited:.1f} s on {base_url}")  # noqa: T201
    step_before, steps, _finished = _replay_step(base_url)
    server_cpu = _cpu_seconds(server.pid)
    client_cpu = time.process_time()
    stats, elapsed, send_lag = asyncio.run(_drive_load(base_url, args.rate, args.duration))
    server_cpu = _cpu_seconds(server.pid) - server_cpu
    client_cpu = time.process_time() - client_cpu
    if server.poll() is not None:
        raise RuntimeError(f"the server exited with code {server.returncode} under load")
    step_after, _steps, finished = _replay_step(base_url)
    # The replay must run during the whole load, or the figures omit its cost.
    print(  # noqa: T201
        f"replay: step {step_before} -> {step_after} of {steps} during the load "
        f"({(step_after - step_before) / elapsed:.2f} steps/s), finished={finished}"
    )
    print(  # noqa: T201
        f"CPU during the load: server {server_cpu / elapsed:.2f} cores, "
        f"client {client_cpu / elapsed:.2f} cores"
    )
    if client_cpu / elapsed > CLIENT_SATURATED_CORES:
        print(  # noqa: T201
            "WARNING: the client used most of one core, so its own queueing is in the latencies; "
            "lower --rate or run the client on another machine"
        )
    _print_report(stats, elapsed, send_lag, _server_metrics(base_url))


def main() -> None:
    args = _parse_args()
    port = _free_port()
    base_url = f"http://{HOST}:{port}"
    with tempfile.TemporaryDirectory(prefix="bench_api_") as folder:
        config = Path(folder) / "bench.toml"
        config.write_text(CONFIG_TOML, encoding="utf-8")
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
