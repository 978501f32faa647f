"""What every ``edge-fgic`` command shares: the error policy, the flag vocabulary and what ``--help`` says.

Error policy (for every command):

* :class:`~edge_fgic.errors.UserError` (bad path, bad dataset, bad checkpoint, bad option)
  -> ``error: <message>`` as ONE red line on stderr, exit code 2, no traceback.
* Ctrl-C -> one line (``interrupted``; plus ``rerun with --resume`` for resumable commands),
  exit code 130.
* A user's OS error (permissions, a full or read-only disk) -> one line, exit code 1.
* Anything else is a bug: one line naming the command, exit code 3; ``--debug`` shows its traceback.

The flag vocabulary: option types used by several commands, the enums behind choice flags, and the
parsers of flags whose value has a syntax of its own (``--set KEY=VALUE``, ``--mean R,G,B``).
What --help says: the app's overview and each command's description (the flags' own help stays with the
command in :mod:`edge_fgic.cli`). Only typer, click and rich are imported here: ``--help`` loads no torch.
"""

from __future__ import annotations

import errno
import os
import re
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text
from typer.core import TyperGroup

from .data.registry import SPLITS
from .errors import UserError, debug_enabled, exc_line
from .pipeline import STAGES
from .targets import BENCH_DEVICES, PRECISIONS, QUANT_MODES, TARGETS

try:  # typer >= 0.2x vendors its own click (typer._click): a separate click is there only if something else needs it
    import click
    _CLICK_ERRORS: tuple[type[BaseException], ...] = (click.exceptions.ClickException,)
except ImportError:
    _CLICK_ERRORS = ()

# Commands whose Ctrl-C message suggests --resume (the trainer writes last.pt for it).
RESUMABLE_COMMANDS = {"train", "distill", "quantize", "pipeline"}
INTERRUPTED_EXIT_CODE = 130
INTERNAL_EXIT_CODE = 3
# OS errors a user fixes (permissions, full or read-only disk): one line, not a traceback.
_USER_OS_ERRNOS = {errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EROFS, getattr(errno, "EDQUOT", -1)}


def print_error(message: object) -> None:
    """``error: <message>`` in red on stderr, always exactly one line (never wrapped)."""
    line = " ".join(part.strip() for part in str(message).splitlines() if part.strip())
    # A fresh Console: picks up the current sys.stderr (and whether it is a terminal).
    Console(stderr=True, highlight=False, soft_wrap=True).print(Text(f"error: {line}", style="red"))


def print_interrupted(command: str | None) -> None:
    Console(stderr=True, highlight=False, soft_wrap=True).print(Text(interrupted_message(command), style="yellow"))


def interrupted_message(command: str | None) -> str:
    if command == "pipeline":
        return "interrupted; rerun the same command to continue (finished stages are skipped, training resumes)"
    if command in RESUMABLE_COMMANDS:
        return "interrupted; rerun with --resume to continue"
    return "interrupted"


class ErrorPolicyGroup(TyperGroup):
    """Turns user errors and Ctrl-C inside any command into one line + exit code."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except UserError as exc:
            print_error(exc)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            print_interrupted(ctx.invoked_subcommand)
            raise typer.Exit(INTERRUPTED_EXIT_CODE) from None
        except ModuleNotFoundError as exc:  # a slim (deploy) install running a build command: name the extra
            line = missing_module_message(ctx.invoked_subcommand, exc)
            if line is None:
                return _internal(ctx, exc)
            print_error(line)
            raise typer.Exit(UserError.exit_code) from None
        except BrokenPipeError:  # `edge-fgic ... | head`: the reader left; click's main exits 1 quietly
            raise
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
        # a bad flag value (typer checks choices in the command's wrapper; its click is vendored, so
        # typer.TyperException, not click's class): click shows the usage error, exit code 2
        except (typer.Exit, typer.Abort, typer.TyperException, *_CLICK_ERRORS):
            raise
        # a bug, not the user's input: still one line, unless --debug asks for more
        except Exception as exc:  # noqa: BLE001
            return _internal(ctx, exc)


def missing_module_message(command: str | None, exc: ModuleNotFoundError) -> str | None:
    """``edge-fgic train: needs torch, which this install does not have: pip install "edge-fgic[train]"``; None
    when the module is edge-fgic's own or its package is installed after all (a bug, not the install)."""
    import importlib.util
    root = (exc.name or "").split(".")[0]
    if not root or root == "edge_fgic":
        return None
    try:
        if importlib.util.find_spec(root) is not None:
            return None
    except (ImportError, ValueError):
        pass
    from .targets import PACKAGES, extra_for_module
    extra = extra_for_module(root)
    name = next((p.dist or p.what for p in PACKAGES if p.module == root), root)
    where = f"edge-fgic {command}" if command else "edge-fgic"
    if extra:
        return f'{where}: needs {name}, which this install does not have: pip install "edge-fgic[{extra}]"'
    if extra == "":
        return f"{where}: needs {name}, a core dependency this install lacks: reinstall edge-fgic (pip install " \
               "edge-fgic)"
    return (f"{where}: needs the Python module {root}, which this install does not have and no edge-fgic extra "
            f'provides: pip install {root}, or install the build side (pip install "edge-fgic[all]")')


def installed_version() -> str:
    """The installed distribution's version (what ``edge-fgic --version`` prints; bench --remote compares it)."""
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("edge-fgic")
    except PackageNotFoundError:  # run from a source tree that is not installed
        from . import __version__
        return __version__


def print_version(value: bool) -> None:
    """``--version``: ``edge-fgic <version>`` on stdout, exit 0."""
    if value:
        print(f"edge-fgic {installed_version()}")
        raise typer.Exit()


def run(app: typer.Typer, args: list[str]) -> None:
    """The console script: ``--debug`` anywhere on the line, and the policy for errors raised outside a command."""
    if "--debug" in args:  # tracebacks of unexpected errors instead of one line
        args = [a for a in args if a != "--debug"]
        os.environ["EDGE_FGIC_DEBUG"] = "1"
    if args[:1] == ["bench-agent"]:  # bench --remote's device end (edge_fgic/bench/agent.py), not a user command
        from .bench.agent import main as agent_main
        sys.exit(agent_main(args[1:]))
    try:
        app(args=args, prog_name="edge-fgic")
    except UserError as exc:  # raised outside a command (the group catches those inside)
        print_error(exc)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print_interrupted(next((a for a in args if not a.startswith("-")), None))
        sys.exit(INTERRUPTED_EXIT_CODE)


def _internal(ctx: typer.Context, exc: BaseException):
    """An unexpected exception: one line naming the command and the error, exit 3; --debug re-raises."""
    if debug_enabled():
        raise exc
    first = exc_line(exc, 240, last=True)
    print_error(f"{ctx.invoked_subcommand or 'edge-fgic'}: unexpected {type(exc).__name__}: {first} -- this is a "
                "bug in edge-fgic, not your input; rerun with --debug (or EDGE_FGIC_DEBUG=1) for the traceback and "
                "report it")
    raise typer.Exit(INTERNAL_EXIT_CODE) from None


# ---------------------------------------------------------------- options shared by several commands


def opt(help: str, *names: str, **kwargs: Any) -> Any:
    """``typer.Option`` with its help first (the names default to ``--<parameter-name>``)."""
    return typer.Option(*names, help=help, **kwargs)


def unset(help: str, *names: str, **kwargs: Any) -> Any:
    """An option whose ``None`` default means "as the recipe / profile / checkpoint says": no default is shown."""
    return typer.Option(*names, help=help, show_default=False, **kwargs)


DataOption = Annotated[
    str | None,
    typer.Option(
        "--data",
        "-d",
        metavar="KIND=PATH",
        help="Dataset as KIND=PATH (e.g. cub200=~/data/CUB, synthetic=datasets/synthetic_fg) or an ImageFolder PATH.",
        show_default=False,
    ),
]
DeviceOption = Annotated[
    str, typer.Option("--device", help="auto (CUDA if available, else CPU), cpu, cuda, cuda:N or mps.")
]
SkipBadImagesOption = Annotated[
    bool, typer.Option("--skip-bad-images", help="Leave out images that cannot be decoded instead of stopping.")
]
# train and distill
EpochsOption = Annotated[int | None, unset("Number of epochs.")]
BatchSizeOption = Annotated[int | None, unset("Batch size per device.", "--batch-size", "-b")]
LrOption = Annotated[float | None, unset("Peak learning rate.")]
ResumeOption = Annotated[bool, typer.Option("--resume", help="Continue the run in --out from its last.pt.")]
WorkersOption = Annotated[int | None, unset("DataLoader worker processes.")]
SeedOption = Annotated[int | None, unset("Random seed.")]
# predict and camera
# bench --remote (edge_fgic/remote): the device, the ssh config, the device's edge-fgic and its work folder's place
RemoteOption = Annotated[str | None, unset(
    "Run every exported artifact on this device over SSH, in its own edge-fgic install (the reference and .pt "
    "checkpoints stay here); keys, host keys and ~/.ssh/config as OpenSSH does them, never a password.",
    metavar="ssh://USER@HOST:PORT")]
SshConfigOption = Annotated[Path | None, unset("With --remote: this ssh config file instead of ~/.ssh/config (ssh -F).",
                                               metavar="FILE")]
RemoteExeOption = Annotated[str, opt("With --remote: the device's edge-fgic command.", metavar="CMD")]
RemoteDirOption = Annotated[str | None, unset("With --remote: the device folder its temporary work folder goes in "
                                              "(default: its $TMPDIR or /tmp).", metavar="DIR")]
RunnerThreadsOption = Annotated[int, opt("Runtime threads (0 = every core this process may use).", min=0)]
RunnerDeviceOption = Annotated[str, opt("cpu, or cuda for TensorRT engines and .pt checkpoints.", "--device")]


def _choices(name: str, values) -> type[Enum]:
    """A typer choice type whose members are ``values`` (so the CLI offers exactly what the tables list)."""
    return Enum(name, {v: v for v in values}, type=str)


Split = _choices("Split", SPLITS)                                   # edge_fgic/data/registry.py
QuantMode = _choices("QuantMode", QUANT_MODES)                      # edge_fgic/quant/nncf_quant.py
ExportTargetName = _choices("ExportTargetName", [*TARGETS, "all"])  # edge_fgic/targets.py
Precision = _choices("Precision", PRECISIONS)                       # edge_fgic/targets.py
BenchTarget = _choices("BenchTarget", BENCH_DEVICES)                # edge_fgic/targets.py (where bench runs)


class ComputePrecision(str, Enum):
    bf16 = "bf16"
    f16 = "f16"


# oneDNN's names (edge_fgic.bench.harness.ISA_LEVELS; a test keeps the two equal)
IsaLevel = Enum("IsaLevel", {name: name for name in ("SSE41", "AVX2", "AVX512_CORE", "AVX512_CORE_VNNI",
                                                      "AVX512_CORE_BF16", "AVX512_CORE_AMX")}, type=str)


Stage = _choices("Stage", STAGES)  # edge_fgic/pipeline.py


# ---------------------------------------------------------------- flag parsers


def one_data(argument: str | None, option: str | None) -> str | None:
    """Accept the dataset as a positional argument or as --data (not two different ones)."""
    if argument and option and argument != option:
        raise UserError(f"got two datasets ({argument} and --data {option}); pass one")
    return argument or option


def parse_set(items: list[str]) -> dict[str, Any]:
    """``--set key=value`` overrides; values are parsed as YAML (numbers, lists, booleans)."""
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set {item}: expected KEY=VALUE, e.g. --set weight_decay=0.02")
        out[key.strip().replace("-", "_")] = yaml.safe_load(value)
    return out


def triple(option: str, text: str | None) -> tuple[float, float, float] | None:
    """``--mean 0.485,0.456,0.406``: three comma-separated numbers (None when not given)."""
    if not text:
        return None
    try:
        vals = tuple(float(v) for v in text.split(","))
    except ValueError:
        vals = ()
    if len(vals) != 3:
        raise UserError(f"{option} {text}: expected three comma-separated numbers, e.g. {option} 0.485,0.456,0.406")
    return vals  # type: ignore[return-value]


def not_none(**flags: Any) -> dict[str, Any]:
    """The flags a user gave (an unset flag is ``None``): what overrides a recipe."""
    return {k: v for k, v in flags.items() if v is not None}


# ---------------------------------------------------------------- what --help says

APP_HELP = """\
[bold]edge-fgic[/]: fine-grained image classification with timm ConvNeXt, from GPU training to edge devices.

Pipeline stages:
[bold]1. datasets[/]  inspect a dataset (or list the supported layouts)
[bold]2. train[/]     train a ConvNeXt classifier (writes best.pt / last.pt)
[bold]3. eval[/]      evaluate a checkpoint: metrics, confusion matrix, confused pairs, Grad-CAM
[bold]4. distill[/]   distil a small (INT8-friendly) student from a trained teacher
[bold]5. quantize[/]  INT8 with NNCF: quantization-aware training (qat) or post-training (ptq)
[bold]6. export[/]    ONNX / TensorRT / TFLite / OpenVINO artifacts with a manifest, each proved by a round trip
[bold]7. bench[/]     accuracy drop (paired bootstrap CI, McNemar, per-class drift) and latency of every artifact \
vs FP32
[bold]8. predict[/]   classify images with any artifact; [bold]camera[/]: live Jetson CSI / USB camera, video file \
or stream
[bold]pipeline[/]     all of it in one resumable command (teacher, student, QAT, export, bench); [bold]doctor[/]: \
what this machine can run

Datasets are given as [bold]--data KIND=PATH[/] (a plain PATH means an ImageFolder tree); run \
[bold]edge-fgic datasets[/] for the kinds.

[bold]--debug[/] (or EDGE_FGIC_DEBUG=1) shows the Python traceback of an unexpected error instead of its \
one-line summary.
"""

# each command's description: its first paragraph is also its line in the command list
COMMAND_HELP = {
    "datasets": (
        "List the dataset kinds, or inspect one dataset: classes, split sizes, class balance, image sizes.\n\n"
        "Image sizes and modes are read from the headers of at most 200 images per split (fast); a split the dataset "
        "does not have is shown as —. --verify decodes every image (what train's check does) and names each bad one."
    ),
    "train": (
        "Train a classifier (a ConvNeXt, or any timm model as a teacher); checkpoints every epoch (atomically) and "
        "evaluates the best one.\n\n"
        "Multi-GPU: [bold]torchrun --nproc_per_node=N -m edge_fgic train -c train/cub200.yaml ...[/]"
    ),
    "distill": (
        "Distil a small student from a trained teacher (KL on softened logits + label loss [+ features]).\n\n"
        "Without --config the student reuses the teacher's dataset, preprocessing and augmentation, so both see "
        "identical images (mixup/CutMix included). The student checkpoint records the teacher's SHA-256."
    ),
    "quantize": (
        "INT8 with NNCF: post-training quantization, or quantization-aware training initialised from it.\n\n"
        "BatchNorm and layer scale are folded into the convolutions first, so every conv can run in integer. Writes "
        "best.pt (an INT8 checkpoint that `export` reads), quantize.json and eval-val/; FP32 vs INT8 top-1 and "
        "agreement on val are printed and recorded."
    ),
    "export": (
        "Write a deployable artifact + its manifest, then prove it: load it back in its own runtime and compare with "
        "the source PyTorch model on real images.\n\n"
        "A mismatch beyond tolerance fails the export and leaves nothing that looks valid. Every artifact carries the "
        "manifest (classes, input size, mean/std, layout, quantization, source hash, round-trip figures) inside where "
        "the format allows and as <artifact>.json beside it. Without TensorRT, --target tensorrt writes the "
        "TensorRT-bound ONNX (Q/DQ rules checked, numerics proved in onnxruntime) and the trtexec command to build the "
        "engine on the device.\n\n"
        "Targets (edge_fgic/targets.py): "
        + "; ".join(f"{t.name} ({t.suffix}, {'/'.join(t.precisions)}, proved in {t.runtime})" for t in TARGETS.values())
        + "."
    ),
    "bench": (
        "Run every artifact on every image of a split in its own runtime, compare with the FP32 reference, time it, "
        "and write one report.\n\n"
        "Per artifact: top-1/top-5/macro-F1, drop vs the reference with a paired bootstrap 95 % CI, agreement, "
        "McNemar's test, per-class drift and the confusable pairs that grew; cold start, first inference, p50/p90/p99 "
        "latency, throughput, peak memory (each artifact runs in its own process, so one broken artifact never stops "
        "the others). Writes bench.json, bench.md, drift.csv and pareto.png. Exit code 1 when any artifact fails or "
        "breaks the --max-drop gate."
    ),
    "predict": (
        "Classify images with any artifact or checkpoint, preprocessed as its manifest says (the same runner bench "
        "measures).\n\n"
        "Images inside folders named after classes (an ImageFolder split) count as labelled: top-1 and top-k accuracy "
        "are printed too."
    ),
    "camera": (
        "Live classification from a Jetson CSI camera, a USB webcam, a video file or a stream, with an overlay and/or "
        "JSON lines.\n\n"
        "Ctrl-C stops cleanly: the video and JSON lines are finalised and the summary (frames, FPS, model latency) "
        "printed."
    ),
    "pipeline": (
        "Teacher training -> distillation -> INT8 QAT -> export to every target this machine can build -> bench, in "
        "one resumable command.\n\n"
        "Rerunning skips stages whose inputs (upstream checkpoints, artifacts, options) are unchanged and resumes an "
        "interrupted training stage from its last checkpoint. Ends with the bench table and the report's path."
    ),
    "doctor": (
        "What this machine can run: Python packages behind each export target and runtime, converters, accelerators, "
        "and the extra that adds what is missing."
    ),
    "eval": (
        "Evaluate a checkpoint: top-1/top-5, macro P/R/F1, per-class CSV, confused pairs, confusion matrix, "
        "Grad-CAM.\n\n"
        "The dataset defaults to the one recorded in the checkpoint and must have the checkpoint's classes; images are "
        "preprocessed exactly as recorded in the checkpoint. Default output folder: <checkpoint folder>/eval-<split>."
    ),
}
