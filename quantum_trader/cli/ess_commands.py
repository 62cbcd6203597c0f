"""``quantum-trader ess``: inspect and reset a stored emergency stop."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from quantum_trader.config import load_settings
from quantum_trader.errors import QuantumTraderError
from quantum_trader.subsystems.emergency_stop import EmergencyStop, EssStateStore

ess_app = typer.Typer(help="Inspect or reset the emergency stop (ESS).", no_args_is_help=True)
console = Console()

StateFile = Annotated[Path, typer.Argument(help="The ESS state file (emergency_stop.state_file).")]


def _load(state_file: Path) -> EmergencyStop:
    if not state_file.exists():
        raise QuantumTraderError(
            f"ESS state file {state_file} not found; pass the emergency_stop.state_file path"
        )
    ess = EmergencyStop(load_settings().emergency_stop)
    ess.attach_store(EssStateStore(state_file))
    return ess


@ess_app.command("status")
def status(state_file: StateFile) -> None:
    """Print the stored state and, when tripped, the trip's reason and numbers."""
    try:
        ess = _load(state_file)
    except QuantumTraderError as exc:
        console.print(f"[bold red]Error:[/] {exc}")
        raise typer.Exit(code=2) from exc
    console.print(f"ESS state: {ess.state}")
    trip = ess.trip
    if trip is not None:
        console.print(f"Tripped on {trip.reason}: {trip.detail} {trip.numbers}")


@ess_app.command("reset")
def reset(
    state_file: StateFile,
    by: Annotated[str, typer.Option("--by", help="Who authorises the reset (recorded).")],
) -> None:
    """Lift a stored trip; the next run starts active. Needs the name of who authorised it."""
    try:
        ess = _load(state_file)
        was = ess.state
        ess.reset(time.time_ns(), authorised_by=by)
    except QuantumTraderError as exc:
        console.print(f"[bold red]Error:[/] {exc}")
        raise typer.Exit(code=2) from exc
    console.print(f"ESS state: {was} -> {ess.state} (reset authorised by {by})")
