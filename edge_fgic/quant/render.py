"""What ``edge-fgic quantize`` prints after it ran: FP32 vs INT8 on val, the scheme, and the files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text

from ..progress import console


def print_quantize(report: dict[str, Any]) -> None:
    """The report :func:`~edge_fgic.quant.nncf_quant.run_quantize` returns (and writes to quantize.json)."""
    v = report["val"]
    table = Table(box=box.SIMPLE_HEAD, title=f"{report['mode'].upper()} INT8 vs FP32 on val ({v['images']} images)",
                  title_justify="left")
    for col in ("FP32 top-1", "INT8 top-1", "drop (pt)", "agreement"):
        table.add_column(col, justify="right")
    table.add_row(f"{v['fp32_top1']:.2f}", f"{v['int8_top1']:.2f}", f"{v['drop_top1']:+.2f}", f"{v['agreement']:.2f} %")
    console.print(table)
    scheme = f"weights {report['weights']}; activations {report['activations']}"
    console.print(Text.assemble(("scheme  ", "bold"), scheme), soft_wrap=True)
    console.print(Text.assemble(("int8    ", "bold"), report["checkpoint"]), soft_wrap=True)
    console.print(Text.assemble(("report  ", "bold"), str(Path(report["checkpoint"]).parent / "quantize.json")),
                  soft_wrap=True)
