"""bench.md (the table a person reads), drift.csv (per class), pareto.png (accuracy vs latency)
and the terminal table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..fileio import atomic_path, write_text
from ..runtime.base import describe_execution

COLUMNS = ("Artifact", "Runtime", "Precision", "Status", "Size MB", "top-1", "Δ top-1 [95 % CI]", "agreement",
           "p50 ms", "p90 ms", "FPS", "Ran as (read back)")


def _neg(v: float) -> float:
    return 0.0 - v + 0.0  # a drop of 0 prints as +0.00, not -0.00


DETAILS = ("Artifact", "load ms", "first ms", "p99 ms", "batch", "FPS at batch", "peak RSS MB", "preprocess ms/img",
           "top-5", "macro F1", "McNemar p", "max |Δ logit|", "GMAC/s (% of GEMM peak)", "mJ/inference",
           "asked of the runtime")


def _details(r: dict[str, Any]) -> list[str]:
    if r.get("status") != "ok":
        return [r["name"], *[""] * (len(DETAILS) - 1)]
    lat, mc = r.get("latency_ms") or {}, r.get("mcnemar") or {}
    mj = (r.get("energy") or {}).get("mj_per_inference")
    return [r["name"], f"{r['load_ms']:.0f}", f"{r['first_inference_ms']:.1f}", f"{lat.get('p99', 0):.2f}",
            str(r.get("batch", "")), f"{r['fps_batch']:.0f}" + ("" if r.get("batched_natively") else " (1 by 1)"),
            f"{r['peak_rss_mb']:.0f}", f"{r.get('preprocess_ms', 0):.2f}", f"{r['top5']:.2f}", f"{r['macro_f1']:.2f}",
            f"{mc['p_value']:.3g}" if mc else "", f"{r['max_abs_logit_diff']:.3g}" if "max_abs_logit_diff" in r else "",
            roofline_cell(r.get("roofline")), f"{mj:.2f}" if mj is not None else "", _asked(r.get("execution"))]


def _asked(ex: dict[str, Any] | None) -> str:
    """What the runner asked its runtime for (the *Ran as* column says what it read back)."""
    req = (ex or {}).get("requested") or {}
    if not req:
        return ""
    extra = [f"{k}={v}" for k, v in req.items() if k in ("INFERENCE_PRECISION_HINT", "op_resolver", "fp32_precision")]
    return ", ".join([f"{req.get('precision')}", f"{req.get('threads')} thr", *extra])


def roofline_cell(roof: dict[str, Any] | None) -> str:
    """The "GMAC/s (% of peak)" cell; a row above the measured peak keeps its real percentage and is marked ⚠."""
    if not roof:
        return ""
    rate = f"{roof['achieved_macs_per_s'] / 1e9:.1f}"
    if roof.get("fraction_of_peak") is None:
        return f"{rate} (no peak)"
    return (f"{rate} ({100 * roof['fraction_of_peak']:.0f} %"
            + (" ⚠ above peak)" if roof["fraction_of_peak"] > 1 else ")"))


def _peak_text(peak: dict[str, Any]) -> str:
    """'207.0 GMAC/s by onnxruntime.MatMul (512³); others: torch.matmul 193.6, openvino.MatMul [ran f32] 155.9'."""
    def label(b: dict[str, Any]) -> str:
        # OpenVINO: read back from the compiled model
        ran, hint = b.get("exec_precision"), b.get("inference_precision")
        if not ran:
            return b["backend"]
        return b["backend"] + f" [ran {ran}" + (f", hint {hint}" if hint and hint != ran else "") + "]"
    if not peak.get("macs_per_s"):
        head = "not measured"
    else:
        best = (peak.get("backends") or {}).get(peak["backend"]) or peak
        head = (f"{peak['macs_per_s'] / 1e9:.1f} GMAC/s by {label(best)}"
                + (f" ({peak['size']}³)" if peak.get("size") else ""))
    others = [f"{label(b)} {b['macs_per_s'] / 1e9:.1f}" if b.get("macs_per_s")
              else f"{b['backend']} failed ({b.get('error', '')[:80]})"
              for name, b in (peak.get("backends") or {}).items() if name != peak.get("backend")]
    return head + (f"; others: {', '.join(others)}" if others else "")


def roofline_text(roof: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """The paragraph under the details table: each precision's peak and the kernel that set it."""
    p = roof["peaks"]
    threads = f"{roof['threads']} thread" + ("" if roof["threads"] == 1 else "s")
    text = (f"GEMM peaks measured in this run ({threads}), the best square GEMM of the runtimes' own kernels "
            f"(GMAC/s): fp32 {_peak_text(p['fp32'])}. int8 {_peak_text(p['int8'])}."
            + (f" bf16 {_peak_text(p['bf16'])}." if p.get("bf16") else "")
            + (f" Note: {p['int8']['note']}." if p["int8"].get("note") else "")
            + " An artifact's GMAC/s = its model's MACs per image / p50 latency; int8 rows are held against the int8 "
            "peak, " + ("rows that ran bf16 against the bf16 one, " if p.get("bf16") else "")
            + "all others (FP16 included) against the fp32 one.")
    above = [r["name"] for r in rows if ((r.get("roofline") or {}).get("fraction_of_peak") or 0) > 1]
    if above:
        text += (f" ⚠ {', '.join(above)}: above the measured GEMM peak: the peak is a lower bound (the runtime beat "
                 "square GEMM, e.g. with Winograd or a lower precision than the row's label); the percentage is the "
                 "real one, not clamped.")
    return text


def _cells(r: dict[str, Any]) -> list[str]:
    ok = r.get("status") == "ok"
    lat = r.get("latency_ms") or {}
    status = ("✓" if r.get("passed") else "✗ gate") if ok else f"✗ {r.get('reason', '')}"
    if ok and r.get("gated") is False and not r.get("reference"):
        status = "✓ info"  # a checkpoint listed for comparison: not gated
    drop = ""
    if r.get("reference"):
        drop = "ref"
    elif "drop" in r:
        drop = f"{_neg(r['drop']):+.2f} [{_neg(r['drop_ci'][1]):+.2f}, {_neg(r['drop_ci'][0]):+.2f}]"
    return [r["name"], (r.get("runtime") or "").strip(), r.get("precision") or "", status,
            f"{r.get('size_mb', 0):.2f}", f"{r['top1']:.2f}" if "top1" in r else "", drop,
            f"{r['agreement']:.2f} %" if "agreement" in r else "", f"{lat['p50']:.2f}" if lat else "",
            f"{lat['p90']:.2f}" if lat else "", f"{r['fps_batch1']:.0f}" if ok else "",
            describe_execution(r.get("execution"))]


def verdict(report: dict[str, Any]) -> str:
    """One line: did every gated artifact run and stay within the gate, and if not, which did not and why."""
    cfg = report["config"]
    gated = [r for r in report["rows"] if r.get("gated")]
    bad = [r for r in report["rows"] if not r.get("passed")]
    if not bad:
        return (f"**Verdict: pass.** All {len(gated)} exported artifacts ran and lost at most {cfg['max_drop']} pt "
                "of top-1 against the reference.")

    def why_failed(r: dict[str, Any]) -> str:
        if r.get("reason"):
            return r["reason"]
        return f"drop {r['drop']:.2f} pt" if r.get("status") == "ok" and r.get("drop") is not None else "failed"
    why = [f"{r['name']} ({why_failed(r)})" for r in bad]
    return f"**Verdict: FAIL.** {len(bad)} of {len(report['rows'])} rows: " + "; ".join(why) + "."


def reference_text(report: dict[str, Any]) -> str:
    """How the reference ran and why it is the one: "(PyTorch eager)" for a checkpoint, else its runtime."""
    ref = report.get("reference") or {}
    if ref.get("kind", "checkpoint") == "checkpoint":
        return "(PyTorch eager)"
    return f"(the FP32 artifact in {ref.get('runtime')}; {ref.get('why')})"


def machine_line(m: dict[str, Any]) -> str:
    """A machine record in one line: CPU (arch; ISA), cores, memory, Jetson release and power mode, OS."""
    cpu, jet = m.get("cpu") or {}, m.get("jetson") or {}
    mem = m.get("memory_mb") or (m.get("memory") or {}).get("total_mb")
    isa = f"; {', '.join(cpu['isa'])}" if cpu.get("isa") else ""
    parts = [f"{cpu.get('model', '?')} ({cpu.get('arch', '')}{isa})",
             f"{cpu.get('usable_cores') or cpu.get('logical_cores', '?')} cores"]
    parts += [f"{mem / 1024:.1f} GiB"] if mem else []
    if jet:
        mode = (jet.get("nvpmodel") or {}).get("mode")
        parts.append(f"{jet.get('model') or 'Jetson'}, L4T {jet.get('l4t')}"
                     + (f", JetPack {jet['jetpack']}" if jet.get("jetpack") else "")
                     + (f", nvpmodel {mode}" if mode else ""))
    return ", ".join(parts + ([m["os"]] if m.get("os") else []))


def device_lines(report: dict[str, Any]) -> list[str]:
    """bench --remote: the device each row whose *Ran on* names it ran on (the others ran on this machine)."""
    lines = []
    for url, d in (report.get("devices") or {}).items():
        lines += [f"Device {url}: {machine_line(d.get('machine') or {})}; edge-fgic {d.get('edge_fgic')} there. "
                  "The rows whose *Ran on* names it ran there, the others here.", ""]
    return lines


def _ran_on(report: dict[str, Any], cells: list[str], where: str | None) -> list[str]:
    """The *Ran on* column after the artifact's name, when some rows ran on a device."""
    return [cells[0], where or "here", *cells[1:]] if report.get("devices") else cells


def markdown(report: dict[str, Any]) -> str:
    cfg, m = report["config"], report.get("machine") or {}
    cpu = (m.get("cpu") or {})
    lines = [f"# edge-fgic bench — {report['images']} {cfg['split']} images of {cfg['data']}", "",
             f"Reference: `{cfg['reference']}` {reference_text(report)}. Target {cfg['target']}, threads "
             f"{cfg['threads'] or 'default'}, gate: drop ≤ {cfg['max_drop']} pt for exported artifacts (checkpoints "
             f"are listed, not gated). Machine: {cpu.get('model', m.get('os', ''))}"
             + (f" ({', '.join(cpu.get('isa', []))})" if cpu.get("isa") else "") + ".", "",
             *device_lines(report), verdict(report), "",
             "| " + " | ".join(_ran_on(report, list(COLUMNS), "Ran on")) + " |",
             "|" + "---|" * len(_ran_on(report, list(COLUMNS), ""))]
    for r in report["rows"]:
        lines.append("| " + " | ".join(c.replace("|", "/") for c in _ran_on(report, _cells(r), r.get("where"))) + " |")
    lines += ["", "Details:", "", "| " + " | ".join(DETAILS) + " |", "|" + "---|" * len(DETAILS)]
    lines += ["| " + " | ".join(_details(r)) + " |" for r in report["rows"]]
    if report.get("roofline"):
        lines += ["", roofline_text(report["roofline"], report["rows"])]
    for note in report.get("notes") or []:  # what was skipped in this install (the roofline, the plots)
        lines += ["", f"Note: {note}."]
    lines += ["", ("Δ top-1 is artifact minus reference in points, with a paired bootstrap 95 % interval over images; "
                   "agreement is top-1 agreement with the reference; latency is batch 1 after warm-up, preprocessing "
                   "excluded.")]
    worst = [(r["name"], p) for r in report["rows"] if not r.get("reference")
             for p in (r.get("confusable_pairs") or [])[:1]]
    if worst:
        lines += ["", "Most-grown confusion per artifact: "
                  + "; ".join(f"{n}: {p['a']} ↔ {p['b']} (+{p['delta']})" for n, p in worst)]
    return "\n".join(lines) + "\n"


def drift_csv(report: dict[str, Any]) -> str:
    from .stats import drift_csv_rows
    out_lines: list[str] = []
    for r in report["rows"]:
        if not r.get("drift") or r.get("reference"):
            continue
        header, rows = drift_csv_rows(r["drift"])
        if not out_lines:
            out_lines.append(",".join(["artifact", *header]))
        out_lines += [",".join([r["name"], *[f'"{v}"' if isinstance(v, str) and "," in v else str(v) for v in row]])
                      for row in rows]
    return "\n".join(out_lines) + ("\n" if out_lines else "")


RUNTIME_COLORS = {"torch": "#444444", "onnxruntime": "#1f77b4", "openvino": "#9467bd", "litert": "#2ca02c",
                  "tensorrt": "#d62728"}
PRECISION_MARKERS = {"fp32": "o", "fp16": "s", "int8": "^"}


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both latency (lower) and accuracy (higher)."""
    front = []
    for i, (lat, acc) in enumerate(points):
        if not any((l2 <= lat and a2 >= acc) and (l2 < lat or a2 > acc)
                   for j, (l2, a2) in enumerate(points) if j != i):
            front.append(i)
    return sorted(front, key=lambda i: points[i][0])


def have_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:  # the deploy install: the plot is skipped, with a note in the report
        return False
    return True


def pareto_png(report: dict[str, Any], path: Path) -> bool:
    """Accuracy vs latency: colour = runtime, marker = precision, the Pareto front joined and labelled."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    pts = [r for r in report["rows"] if r.get("status") == "ok" and r.get("latency_ms") and "top1" in r]
    if not pts:
        return False
    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    xy = [(r["latency_ms"]["p50"], r["top1"]) for r in pts]
    for r, (x, y) in zip(pts, xy):
        rt = (r.get("runtime") or "").split(" ")[0]
        ax.scatter(x, y, s=110 if r.get("reference") else 45, color=RUNTIME_COLORS.get(rt, "#7f7f7f"),
                   marker="*" if r.get("reference") else PRECISION_MARKERS.get(r.get("precision") or "", "o"),
                   edgecolors="black", linewidths=0.4, zorder=3)
    front = pareto_front(xy)
    ax.plot([xy[i][0] for i in front], [xy[i][1] for i in front], color="black", lw=0.8, ls="--", zorder=2)
    for i in front:
        ax.annotate(pts[i]["name"].replace("reference: ", "ref "), xy[i], fontsize=7, xytext=(5, 4),
                    textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("latency p50, batch 1 (ms, log scale)")
    ax.set_ylabel(f"top-1 on {report['config']['split']} (%)")
    ax.set_title("accuracy vs latency: dashed = Pareto front (labelled)")
    ax.grid(alpha=0.3, which="both")
    used_rt = sorted({(r.get("runtime") or "").split(" ")[0] for r in pts})
    used_pr = sorted({r.get("precision") for r in pts if r.get("precision")})
    handles = [Line2D([], [], marker="o", ls="", color=RUNTIME_COLORS.get(rt, "#7f7f7f"), label=rt) for rt in used_rt]
    handles += [Line2D([], [], marker=PRECISION_MARKERS.get(p, "o"), ls="", color="white", markeredgecolor="black",
                       label=p) for p in used_pr]
    handles.append(Line2D([], [], marker="*", ls="", color="white", markeredgecolor="black", markersize=10,
                          label="reference"))
    ax.legend(handles=handles, fontsize=7, loc="lower right", ncol=2)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return True


def write_reports(report: dict[str, Any], out: Path) -> dict[str, str]:
    files = {"bench.json": str(out / "bench.json")}
    plot = have_matplotlib()
    if not plot:
        report.setdefault("notes", []).append('pareto.png skipped: matplotlib is not installed '
                                              '(pip install "edge-fgic[train]")')
    write_text(out / "bench.md", markdown(report))
    files["bench.md"] = str(out / "bench.md")
    text = drift_csv(report)
    if text:
        write_text(out / "drift.csv", text)
        files["drift.csv"] = str(out / "drift.csv")
    if plot and pareto_png(report, out / "pareto.png"):
        files["pareto.png"] = str(out / "pareto.png")
    return files


SHORT = {"Precision": "prec", "Status": "ok", "Size MB": "MB", "Δ top-1 [95 % CI]": "Δ top-1", "agreement": "agree"}


def terminal_table(report: dict[str, Any], console_width: int = 200):
    """The terminal view, sized to the terminal: the CI and runtime columns go first when it is narrow
    (bench.md always has everything)."""
    from rich import box
    from rich.markup import escape
    from rich.table import Table
    names = [r["name"] for r in report["rows"]]
    name_w = max((len(n) for n in names), default=8)
    wide = console_width >= name_w + 100
    medium = console_width >= name_w + 66
    keep = ([0, 1, 2, 3, 4, 5, 6, 7, 8, 10] if wide else [0, 2, 3, 4, 5, 6, 7, 8, 10] if medium else [0, 2, 5, 6, 7, 8])
    t = Table(box=box.SIMPLE_HEAD, title=f"bench: {report['images']} {report['config']['split']} images"
              + ("" if wide else " (Δ without its CI here; see bench.md)"), title_justify="left", pad_edge=False)
    for i in keep:
        label = COLUMNS[i] if wide else SHORT.get(COLUMNS[i], COLUMNS[i])
        t.add_column(label, justify="left" if i < 4 else "right", no_wrap=True)
    for r in report["rows"]:
        cells = _cells(r)
        cells[1] = cells[1].split(" ")[0]  # runtime name only
        cells[3] = cells[3] if r.get("status") == "ok" else "✗ failed"  # the reason is printed below the table
        cells[6] = cells[6].replace(", ", ",") if wide else cells[6].split(" [")[0]
        t.add_row(*[escape(cells[i]) for i in keep], style=None if r.get("passed") else "red")  # names hold [bf16]
    return t


def print_bench(report: dict[str, Any]) -> None:
    """What ``edge-fgic bench`` prints: the table, why each failed artifact failed, and the report files."""
    from rich.text import Text

    from ..progress import console
    console.print(terminal_table(report, console.width))
    for url, d in (report.get("devices") or {}).items():
        ran = [r["name"] for r in report["rows"] if r.get("where") == url]
        console.print(Text(f"ran on {url} ({machine_line(d.get('machine') or {})}): {', '.join(ran) or 'nothing'}"),
                      soft_wrap=True)
    for r in report["rows"]:
        if r.get("status") != "ok":
            console.print(Text(f"✗ {r['name']}: {r.get('reason', '')}", style="red"), soft_wrap=True)
    ref = report.get("reference") or {}
    if ref.get("kind") == "artifact":
        console.print(Text(f"reference: {ref['path']} {reference_text(report)}"), soft_wrap=True)
    for note in report.get("notes") or []:
        console.print(Text(f"note: {note}", style="yellow"), soft_wrap=True)
    for name, path in report["files"].items():
        console.print(Text(f"  {name:<11} {path}"), soft_wrap=True)
