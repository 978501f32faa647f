"""INT8 with NNCF: post-training quantization (PTQ) and quantization-aware training (QAT).

Both start the same way:

1. the FP32 checkpoint is folded into its deploy form (:func:`~edge_fgic.models.fuse.fuse_for_deploy`:
   BatchNorm and layer scale disappear into the convs, so every conv can run in integer);
2. ``nncf.quantize`` places symmetric INT8 quantizers (weights per output channel, activations
   per tensor) and calibrates them on a fixed, seeded subset of the *training* split
   (eval preprocessing, >= 300 images where the split has them);
3. with ``signed_activations`` every activation quantizer is made signed (int8, zero-point 0):
   the only form TensorRT's explicit quantization accepts. NNCF otherwise puts unsigned (uint8)
   quantizers after ReLU, which CPU runtimes prefer (onnxruntime drops the ReLU into the conv).

PTQ stops there. QAT then fine-tunes the quantized model with the ordinary training loop
(straight-through gradients; optionally still distilling from the FP32 model), with the
same checkpoints and exact ``--resume`` as ``train``.

A quantized checkpoint is our ordinary checkpoint plus a ``quantization`` record: NNCF's
serialisable quantizer config (``nncf.torch.get_config``), the scheme, the calibration set's
size and hash, the source checkpoint's hash, and FP32 vs INT8 accuracy on val.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..data.datasets import FGDataset, checkpoint_data, open_split
from ..data.transforms import eval_transform
from ..errors import UserError
from ..fileio import write_json
from ..metrics import agreement
from ..models import FGClassifier, load_model, save_checkpoint
from ..models.checkpoint import Checkpoint
from ..models.quantized import is_weight_quantizer, quantize_model, quantizers, rebuild_quantized
from ..progress import console, progress_enabled
from ..targets import QUANT_MODES
from ..training.distill import DistillHooks
from ..utils import resolve_device

DEFAULT_CALIB = 300
CALIB_BATCH = 32


@dataclass
class QuantConfig:
    model: str  # FP32 checkpoint (best.pt of train/distill)
    mode: str = "qat"  # qat | ptq
    data: str = ""  # default: the dataset recorded in the checkpoint
    out: str = ""  # default: <checkpoint folder>/../<name>-int8-<mode>
    calib_size: int = 0  # 0 = min(300, train split size); an explicit size must exist in the split
    signed_activations: bool = False  # TensorRT-legal: every activation int8 with zero-point 0
    # NNCF's OverflowFix: "enable" keeps weights to 7 bits so x86 CPUs without VNNI cannot saturate their
    # 16-bit pair sums (u8 x s8 -> int16: 2 * 255 * 127 > 32767, 2 * 255 * 64 is not). It is the default
    # because an artifact must give the same answer on every CPU: with "first_layer" (NNCF's default) the
    # Oxford 17 INT8 IR agreed 86 % with NNCF on an AVX2 EPYC, and onnxruntime's AVX2 kernel clipped the
    # tiny test model's sums under an emulated Haswell (benchmarks/portability.md).
    overflow_fix: str = "enable"
    # QAT fine-tuning
    epochs: int = 3
    # Defaults measured on Oxford 17 (benchmarks/quantization.md): with labels in the loss (kd_weight 0.5,
    # lr 1e-4) QAT kept top-1 but agreed with its FP32 model on only 92.6 % of val; pure distillation
    # from the FP32 model at lr 2e-5 agreed on 98.9 % (PTQ: 98.5 %).
    lr: float = 2e-5
    batch_size: int = 0  # 0 = the checkpoint's training batch size
    distill: bool = True  # keep distilling from the FP32 model during QAT
    kd_weight: float = 1.0
    kd_temperature: float = 2.0
    # run
    device: str = "auto"
    workers: int = -1  # -1 = as in the checkpoint's training
    seed: int = 0
    skip_bad_images: bool = False

    def validate(self) -> None:
        checks = [
            (self.mode in QUANT_MODES, f"mode must be {' or '.join(QUANT_MODES)}"),
            (self.calib_size >= 0, "calib_size must be >= 0"),
            (self.epochs >= 1, "epochs must be >= 1"),
            (self.lr > 0, "lr must be > 0"),
            (0 <= self.kd_weight <= 1, "kd_weight must be in [0, 1]"),
            (self.overflow_fix in ("first_layer", "enable", "disable"),
             "overflow_fix must be first_layer, enable or disable"),
        ]
        for ok, msg in checks:
            if not ok:
                raise UserError(f"quantize: {msg}")


# ---------------------------------------------------------------- building blocks


def calibration_subset(dataset: FGDataset, size: int, seed: int, asked: bool,
                       where: str) -> tuple[list[int], dict[str, Any]]:
    """A seeded, class-stratified subset of ``dataset`` and a record (size, hash of the file list)."""
    n = len(dataset)
    if asked and size > n:
        raise UserError(f"{where}: calibration set of {size} images asked but the train split has only {n}; "
                        f"pass --calib-size {n} or fewer")
    size = size if asked else min(DEFAULT_CALIB, n)
    rng = random.Random(seed)
    by_class: dict[int, list[int]] = {}
    for i, y in enumerate(dataset.targets):
        by_class.setdefault(y, []).append(i)
    for idx in by_class.values():
        rng.shuffle(idx)
    picked: list[int] = []
    k = 0
    while len(picked) < size:  # round-robin over classes: stratified
        for idx in by_class.values():
            if k < len(idx) and len(picked) < size:
                picked.append(idx[k])
        k += 1
    picked.sort()
    files = [str(dataset.samples[i][0]) for i in picked]
    root = str(Path(files[0]).parent.parent) if files else ""
    rel = [f[len(root):] if f.startswith(root) else f for f in files]
    digest = hashlib.sha256("\n".join(rel).encode()).hexdigest()
    return picked, {"split": "train", "images": len(picked), "seed": seed, "sha256": digest,
                    "note": "" if asked or size == DEFAULT_CALIB else f"the train split has only {n} images"}


def quant_record(q: nn.Module, *, mode: str, calibration: dict[str, Any], source: Checkpoint,
                 overflow_fix: str = "enable") -> dict[str, Any]:
    import nncf
    from nncf.torch import get_config

    from ..models.nncf_ext import kernels_record
    qs = quantizers(q)
    n_w = sum(is_weight_quantizer(n, m) for n, m in qs)
    unsigned = sum(1 for n, m in qs if not is_weight_quantizer(n, m) and not m.signed)
    return {
        "mode": mode,
        "framework": f"nncf {nncf.__version__}",
        "preset": "performance (symmetric)",
        "folded": True,
        "weights": "int8 symmetric per output channel (axis 0), narrow range [-127, 127]"
                   + {"enable": "; 7-bit range on every layer (overflow fix for x86 CPUs without VNNI)",
                      "first_layer": "; 7-bit range on the first layer (NNCF's overflow fix)",
                      "disable": ""}[overflow_fix],
        "overflow_fix": overflow_fix,
        "activations": ("int8 symmetric per tensor, zero-point 0 (TensorRT explicit-quantization rules)"
                        if unsigned == 0 else
                        f"int8 symmetric per tensor; {unsigned} unsigned (uint8, zero-point 0) after ReLU"),
        "signed_activations": unsigned == 0,
        "tensorrt_legal": unsigned == 0,
        "quantizers": {"weights": n_w, "activations": len(qs) - n_w, "unsigned_activations": unsigned},
        "calibration": calibration,
        "source": str(source.path),
        "source_sha256": source.sha256,
        "source_val_top1": source.metrics.get("val_top1"),
        "nncf_kernels": kernels_record(),  # NNCF's C++ extension, or its reference kernels and why
        "nncf_config": get_config(q),
    }


@torch.no_grad()
def compare(fp32: nn.Module, int8: nn.Module, dataset: FGDataset, device: str, batch_size: int = 64) -> dict[str, Any]:
    """Top-1 of both and their prediction agreement on the same images (val)."""
    from ..training.evaluate import predict_logits
    lf, y = predict_logits(fp32, dataset, device=device, batch_size=batch_size, progress=False)
    lq, _ = predict_logits(int8, dataset, device=device, batch_size=batch_size, progress=False)
    pf, pq = lf.argmax(1), lq.argmax(1)
    return {"images": int(len(y)), "fp32_top1": float(100 * (pf == y).mean()),
            "int8_top1": float(100 * (pq == y).mean()),
            "drop_top1": float(100 * ((pf == y).mean() - (pq == y).mean())),
            "agreement": agreement(pf, pq),
            "max_abs_logit_diff": float(np.abs(lf - lq).max()) if len(y) else 0.0}


# ---------------------------------------------------------------- the command


def _source(cfg: QuantConfig) -> tuple[FGClassifier, Checkpoint]:
    model, ckpt = load_model(cfg.model)
    if ckpt.quantization:
        raise UserError(f"{cfg.model}: is already quantized ({ckpt.quantization.get('mode')}); "
                        "pass the FP32 checkpoint")
    return model, ckpt


def default_out(cfg: QuantConfig) -> Path:
    src = Path(cfg.model).expanduser()
    return src.parent.parent / f"{src.parent.name}-int8-{cfg.mode}{'-signed' if cfg.signed_activations else ''}"


def _data_spec(cfg: QuantConfig, ckpt: Checkpoint):
    """Calibration and QAT images: --data, or the dataset the checkpoint records, with its classes."""
    return checkpoint_data(cfg.data or None, ckpt, cfg.model, "train")


def _calibration(cfg: QuantConfig, ckpt: Checkpoint, spec, progress: bool) -> tuple[list[torch.Tensor], dict[str, Any]]:
    train_ds = open_split(spec, "train", eval_transform(ckpt.preprocess), skip_bad_images=cfg.skip_bad_images,
                          progress=progress)
    picked, record = calibration_subset(train_ds, cfg.calib_size, cfg.seed, cfg.calib_size > 0, str(spec.path))
    images = [train_ds[i][0] for i in picked]
    # batches of CALIB_BATCH: NNCF's torch statistics pass costs ~0.3 s per call on 2 cores, image by image
    # it was 1 min 45 s for 300 images of 64 px; batched, ~20 s (min/max reduce over the batch too)
    return [torch.stack(images[i:i + CALIB_BATCH]) for i in range(0, len(images), CALIB_BATCH)], record


def run_quantize(cfg: QuantConfig, *, resume: bool = False, progress: bool = True) -> dict[str, Any]:
    """PTQ or QAT as ``cfg`` says; returns the report written to ``<out>/quantize.json``."""
    from ..fileio import out_lock
    cfg.validate()
    with out_lock(Path(cfg.out).expanduser() if cfg.out else default_out(cfg), "quantize"):
        return _run_quantize(cfg, resume=resume, progress=progress)


def _run_quantize(cfg: QuantConfig, *, resume: bool = False, progress: bool = True) -> dict[str, Any]:
    fp32, src = _source(cfg)
    out = Path(cfg.out).expanduser() if cfg.out else default_out(cfg)
    if out.resolve() == Path(cfg.model).expanduser().resolve().parent:
        raise UserError(f"{out}: is the FP32 checkpoint's own folder and would overwrite it; pass another --out")
    spec = _data_spec(cfg, src)
    progress = progress and progress_enabled()
    device = resolve_device(cfg.device)
    best = out / "best.pt"
    if cfg.mode == "ptq":
        if best.exists() and not resume:
            raise UserError(f"{best}: exists; pass --resume to keep it (re-reports) or choose another --out")
        if not (resume and best.exists()):
            calib, calib_rec = _calibration(cfg, src, spec, progress)
            console.print(f"PTQ: calibrating NNCF quantizers on {calib_rec['images']} training images")
            q = quantize_model(fp32, calib, cfg.signed_activations, cfg.model, cfg.overflow_fix)
            rec = quant_record(q, mode="ptq", calibration=calib_rec, source=src, overflow_fix=cfg.overflow_fix)
            save_checkpoint(best, q, classes=src.classes, preprocess=src.preprocess,
                            train_config={**src.train_config,
                                          "quantize": {"mode": "ptq", "source": cfg.model, **_qopts(cfg)}},
                            metrics=src.metrics, quantization=rec)
    else:
        _run_qat(cfg, src, spec, out, resume, progress)
    return _finish(cfg, fp32, src, spec, out, device, progress)


def _qopts(cfg: QuantConfig) -> dict[str, Any]:
    return {"calib_size": cfg.calib_size, "signed_activations": cfg.signed_activations, "seed": cfg.seed,
            "overflow_fix": cfg.overflow_fix}


def _run_qat(cfg: QuantConfig, src: Checkpoint, spec, out: Path, resume: bool, progress: bool) -> None:
    from ..training.config import TrainConfig
    from ..training.trainer import train

    names = {f.name for f in fields(TrainConfig)}
    base = {k: v for k, v in (src.train_config or {}).items() if k in names}
    base.update(
        data=str(spec), out=str(out), epochs=cfg.epochs, lr=cfg.lr, warmup_epochs=0, min_lr=cfg.lr * 0.01,
        sched="cosine",
        weight_decay=0.0,  # quantizer scales are parameters too: no decay on a short fine-tune
        ema=False, patience=0, compile=False, pretrained="", device=cfg.device, seed=cfg.seed, gradcam=0,
        channels_last=False,  # NNCF's fake-quant backward is 2.8x slower on NHWC tensors (1.62 vs 0.57 s/batch here)
        # fake quantization in float32: under bf16 autocast the quantizers round bf16 activations and QAT learns
        # for that grid, not for the int8 runtimes (Oxford 17 on an H100: benchmarks/pipeline.md)
        amp="off",
        teacher=cfg.model if cfg.distill else "", kd_weight=cfg.kd_weight, kd_temperature=cfg.kd_temperature,
        feature_kd=0.0,
        skip_bad_images=cfg.skip_bad_images,
        quantize={"mode": "qat", "source": str(cfg.model), "source_sha256": src.sha256, **_qopts(cfg)},
    )
    if cfg.batch_size:
        base["batch_size"] = cfg.batch_size
    if cfg.workers >= 0:
        base["workers"] = cfg.workers
    tcfg = TrainConfig.from_dict(base, f"{cfg.model} (train_config)")
    hooks = QATHooks(tcfg, out, cfg, src, spec, progress)
    train(tcfg, resume=resume, progress=progress, final_eval=False, hooks=hooks)


def _finish(cfg: QuantConfig, fp32: FGClassifier, src: Checkpoint, spec, out: Path, device: str,
            progress: bool) -> dict[str, Any]:
    """FP32 vs INT8 on val (same images), recorded in best.pt and quantize.json."""
    from ..training.evaluate import evaluate
    q, qck = load_model(out / "best.pt")
    val = open_split(spec, "val", eval_transform(src.preprocess), skip_bad_images=cfg.skip_bad_images,
                     progress=progress)
    cmp = compare(fp32, q, val, device)
    rec = dict(qck.quantization)
    rec["val"] = cmp
    # best.pt again, now with the comparison (atomic; the weights are the same tensors)
    save_checkpoint(out / "best.pt", q, classes=qck.classes, preprocess=qck.preprocess, train_config=qck.train_config,
                    metrics={**qck.metrics, "fp32_val_top1": cmp["fp32_top1"], "int8_val_top1": cmp["int8_top1"]},
                    state_dict=qck.state_dict, quantization=rec)
    evaluate(q, val, out / "eval-val", preprocess=src.preprocess, device=device, gradcam_images=0, progress=progress,
             split_name="val")
    report = {"mode": cfg.mode, "checkpoint": str(out / "best.pt"), "source": str(cfg.model), "config": asdict(cfg),
              **{k: v for k, v in rec.items() if k != "nncf_config"}}
    write_json(out / "quantize.json", report)
    return report


class QATHooks(DistillHooks):
    """QAT in the generic loop: the model is the NNCF-quantized, folded FP32 model."""

    def __init__(self, tcfg, out, qcfg: QuantConfig, src: Checkpoint, spec, progress: bool):
        super().__init__(tcfg, out)  # loads the FP32 model as teacher when qcfg.distill
        self.qcfg, self.src, self.spec, self.progress = qcfg, src, spec, progress
        self.calib_record: dict[str, Any] = {}

    def build_model(self, cfg, classes, pretrained, state):
        self.check_classes(classes)
        if state is not None:  # resume: same quantizer placement; last.pt's tensors are loaded next
            if not state.quantization:
                raise UserError(f"{Path(cfg.out) / 'last.pt'}: is not a QAT run; choose another --out")
            self.calib_record = state.quantization.get("calibration", {})
            return rebuild_quantized(FGClassifier(self.src.model), state.quantization, state.path)
        calib, self.calib_record = _calibration(self.qcfg, self.src, self.spec, self.progress)
        console.print(f"QAT: initialising NNCF quantizers on {self.calib_record['images']} training images, "
                      f"then {cfg.epochs} epoch(s) of fine-tuning"
                      + (" distilled from the FP32 model" if cfg.teacher else ""))
        return quantize_model(self.src.build_model(), calib, self.qcfg.signed_activations, self.qcfg.model,
                              self.qcfg.overflow_fix)

    def checkpoint_fields(self, model):
        return {"quantization": quant_record(model, mode="qat", calibration=self.calib_record, source=self.src,
                                             overflow_fix=self.qcfg.overflow_fix)}

    # QAT's job is to reproduce its FP32 model in INT8: best.pt is the epoch that agrees with it
    # most on val (ties: the earlier epoch); top-1 is still logged every epoch
    best_key = "val_agreement"

    @torch.no_grad()
    def val_metrics(self, model, loader, device):
        if getattr(self, "_ref_preds", None) is None:
            ref = (self.teacher if self.teacher is not None else self.src.build_model()).to(device).eval()
            self._ref_preds = torch.cat([ref(x.to(device)).argmax(1).cpu() for x, _ in loader])
        was = model.training
        model.eval()
        preds = torch.cat([model(x.to(device)).argmax(1).cpu() for x, _ in loader])
        model.train(was)
        return {"val_agreement": agreement(preds.numpy(), self._ref_preds.numpy())}
