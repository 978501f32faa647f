"""What ``edge-fgic export`` prints after it ran: one line per artifact (status, size, round-trip figures,
what the runtime ran), then notes, companion files and the output folder."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich.text import Text

from ..progress import console
from ..runtime.base import describe_execution
from .exporter import ExportResult

STYLES = {"ok": "green", "failed": "red", "skipped": "yellow"}


def print_export(precision: str, results: Sequence[ExportResult]) -> None:
    checked = next((r.round_trip for r in results if r.round_trip), None)
    console.print(Text(f"export {precision}" + (f": round trip on {checked['images']} {checked['split']} images "
                                                "(agreement with the source model, max |Δ logit|)" if checked else ""),
                       style="bold"), soft_wrap=True)
    for r in results:  # one line per artifact: readable in an 80-column terminal and in CI logs
        rt = r.round_trip or {}
        if r.artifact:
            line = (f"{r.status:<7} {r.target:<9} {r.size_bytes / 1e6:6.2f} MB  agree {rt.get('agreement', 0):6.2f} %  "
                    f"max|Δ| {rt.get('max_abs_diff', 0):<8.2g} {rt.get('runtime', '').split(' ')[0]:<12} "
                    f"{Path(r.artifact).name}"
                    + (f"  ran {describe_execution(rt['execution'])}" if rt.get("execution") else ""))
        else:
            line = f"{r.status:<7} {r.target:<9} {r.message}"
        console.print(Text(line, style=STYLES.get(r.status, "")), soft_wrap=True)
    for r in results:
        if r.message and r.artifact:
            console.print(Text(f"{r.target}: {r.message}", style="yellow"), soft_wrap=True)
        for e in r.extras:
            console.print(Text(f"{r.target}: wrote {e}"), soft_wrap=True)
    if results and results[0].artifact:
        console.print(Text.assemble(("out  ", "bold"), str(Path(results[0].artifact).parent)), soft_wrap=True)
