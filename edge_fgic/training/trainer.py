"""The training loop: timm optimisers/schedulers/mixup/EMA, AMP on CUDA, DDP via torchrun,
atomic per-epoch checkpoints and an exact ``--resume``.

Exactness: every epoch re-seeds all RNGs (torch, numpy, random, the sampler and the
worker seeds) from ``(seed, epoch)``, so epoch ``e`` draws the same batches and the same
augmentations whether the run was interrupted before it or not.

Size: a little over 400 lines because the loop and everything its exact resume depends on (RNG state,
the sampler's epoch, the optimiser, scheduler and EMA state, the DDP setup) stay in one file, where one
reader can check that an interrupted run and an uninterrupted one take the same steps. What a stage
changes is in :mod:`.hooks`; the optional triplet term and its P x K batches in :mod:`.metric_loss` and
:mod:`.sampler`.
"""

from __future__ import annotations

import math
import os
import random
import time
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from ..data.datasets import FGDataset, check_same_classes, open_split, parse_data_spec
from ..data.transforms import AugmentConfig, PreprocessConfig, eval_transform, train_transform
from ..errors import UserError
from ..fileio import write_text
from ..models import load_checkpoint, save_checkpoint
from ..models.factory import FGClassifier
from ..progress import console, make_progress, progress_enabled
from ..utils import resolve_device
from .config import TrainConfig
from .distill import DistillHooks
from .history import plot_history, write_history
from .hooks import TrainHooks
from .metric_loss import TripletTerm, WithEmbedding
from .sampler import pk_sampler

# fields that may differ between the interrupted run and --resume (they don't change the maths)
_RESUME_FREE = {"epochs", "patience", "workers", "device", "out", "gradcam", "cache_images", "skip_bad_images"}


@dataclass
class TrainResult:
    out: Path
    best: Path
    last: Path
    best_metrics: dict[str, Any]
    epochs_run: int
    stopped_early: bool
    eval_metrics: dict[str, Any] | None = None


def default_hooks(cfg: TrainConfig, out: Path) -> TrainHooks:
    if cfg.teacher:
        return DistillHooks(cfg, out)
    return TrainHooks()


def freeze_stages(model: FGClassifier, n: int) -> list[nn.Module]:
    """Freeze the stem and the first ``n`` stages of ``model``'s backbone (timm's coarse parameter groups:
    0 = stem, 1..K = stages, then the head); returns the frozen modules, to be kept in eval mode so their
    BatchNorm statistics stay the pretrained ones. ``n = -1`` freezes nothing."""
    if n < 0:
        return []
    from timm.models import group_modules, group_parameters
    net = model.backbone
    matcher = getattr(net, "group_matcher", None)
    if matcher is None:
        raise UserError(f"{model.cfg.name}: timm gives no stage groups for this model; train it without freeze_stages")
    groups = group_parameters(net, matcher(coarse=True))
    ids = sorted(groups)
    stages = len(ids) - 2  # the first group is the stem, the last the head
    if n > stages:
        raise UserError(f"freeze_stages {n}: {model.cfg.name} has {stages} stages (freeze_stages 0 freezes the stem, "
                        f"{stages} everything but the classifier); choose 0..{stages}")
    frozen_ids = set(ids[: n + 1])
    for gid in frozen_ids:
        for name in groups[gid]:
            net.get_parameter(name).requires_grad_(False)
    mods = group_modules(net, matcher(coarse=True))
    return [net.get_submodule(m) for gid in frozen_ids for m in mods.get(gid, [])]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _rng_state() -> dict[str, Any]:
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [int(v) for v in np.random.get_state()[1]],
        "python": random.getstate(),
    }


def _dist_info() -> tuple[int, int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0")), world


def _setup_device(cfg: TrainConfig) -> tuple[torch.device, int, int]:
    rank, local_rank, world = _dist_info()
    device = torch.device(resolve_device(cfg.device))
    if world > 1:
        if device.type == "cuda":
            torch.cuda.set_device(local_rank)
            device = torch.device("cuda", local_rank)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device, rank, world


def _amp_dtype(cfg: TrainConfig, device: torch.device) -> torch.dtype | None:
    if device.type != "cuda" or cfg.amp == "off":
        return None
    if cfg.amp == "fp16":
        return torch.float16
    if cfg.amp == "bf16" or torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


def preprocess_from(cfg: TrainConfig) -> PreprocessConfig:
    return PreprocessConfig(cfg.input_size, tuple(cfg.mean), tuple(cfg.std), cfg.interpolation, cfg.crop_pct)


def _datasets(cfg: TrainConfig, pp: PreprocessConfig, progress: bool,
              train_size: int | None = None) -> tuple[FGDataset, FGDataset]:
    aug = AugmentConfig(tuple(cfg.scale), hflip=cfg.hflip, color_jitter=cfg.color_jitter,
                        auto_augment=cfg.auto_augment, random_erasing=cfg.random_erasing)
    spec = parse_data_spec(cfg.data)
    train_pp = pp if not train_size or train_size == pp.input_size else replace(pp, input_size=train_size)
    train = open_split(spec, "train", train_transform(train_pp, aug), skip_bad_images=cfg.skip_bad_images,
                       progress=progress)
    val = open_split(spec, "val", eval_transform(pp), skip_bad_images=cfg.skip_bad_images, progress=progress)
    check_same_classes(train, val, f"{spec.path} (val split)")
    if cfg.cache_images:
        train.cache_in_memory(progress), val.cache_in_memory(progress)
    return train, val


def _loader(ds: FGDataset, cfg: TrainConfig, train: bool, epoch: int, world: int, rank: int, device) -> DataLoader:
    g = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
    if train and cfg.uses_triplet():  # P classes x K images per batch, this rank's slice of the epoch's batches
        return DataLoader(ds, batch_sampler=pk_sampler(ds.targets, cfg.batch_size, cfg.pk_images, cfg.seed, epoch,
                                                       world, rank, f"{cfg.data} (train split)"),
                          generator=g, num_workers=cfg.workers, pin_memory=device.type == "cuda")
    sampler = None
    if world > 1 and train:
        sampler = DistributedSampler(ds, world, rank, shuffle=True, seed=cfg.seed, drop_last=True)
        sampler.set_epoch(epoch)
    bs = cfg.batch_size if train else max(cfg.batch_size, 64)
    return DataLoader(
        ds, batch_size=bs, shuffle=train and sampler is None, sampler=sampler, generator=g,
        num_workers=cfg.workers, drop_last=train and len(ds) >= 2 * bs, pin_memory=device.type == "cuda",
        persistent_workers=False,
    )


def _build_optim(cfg: TrainConfig, model: nn.Module, steps_per_epoch: int):
    from timm.optim import create_optimizer_v2
    import logging

    from timm.scheduler import CosineLRScheduler
    # "Cosine annealing scheduler will have no effect ..." on 1-step runs: noise on stderr, not a problem
    logging.getLogger("timm.scheduler.cosine_lr").setLevel(logging.ERROR)

    opt = create_optimizer_v2(model, cfg.optimizer, lr=cfg.lr, weight_decay=cfg.weight_decay,
                              **({"momentum": cfg.momentum} if cfg.optimizer == "sgd" else {}))
    total = cfg.epochs * steps_per_epoch
    warm = int(cfg.warmup_epochs * steps_per_epoch)
    if cfg.sched == "constant":
        sched = CosineLRScheduler(opt, t_initial=10**12, lr_min=cfg.lr, warmup_t=warm, warmup_lr_init=cfg.lr * 0.01,
                                  t_in_epochs=False)
    else:
        cycles = cfg.cycles if cfg.sched == "cyclic" else 1
        sched = CosineLRScheduler(opt, t_initial=max(1, (total - warm) // cycles), lr_min=cfg.min_lr,
                                  cycle_limit=cycles, warmup_t=warm, warmup_lr_init=cfg.lr * 0.01, warmup_prefix=True,
                                  t_in_epochs=False)
    return opt, sched


@torch.no_grad()
def validate(model: nn.Module, loader: DataLoader, device, amp_dtype, channels_last: bool = False) -> dict[str, float]:
    model.eval()
    n = correct1 = correct5 = 0
    loss_sum = 0.0
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=amp_dtype) if amp_dtype else nullcontext():
            out = model(x).float()
        loss_sum += nn.functional.cross_entropy(out, y, reduction="sum").item()
        k = min(5, out.shape[1])
        top = out.topk(k, dim=1).indices
        correct1 += (top[:, 0] == y).sum().item()
        correct5 += (top == y[:, None]).any(dim=1).sum().item()
        n += y.numel()
    return {"val_loss": loss_sum / max(n, 1), "val_top1": 100.0 * correct1 / max(n, 1),
            "val_top5": 100.0 * correct5 / max(n, 1)}


def train(cfg: TrainConfig, *, resume: bool = False, progress: bool = True, final_eval: bool = True,
          hooks: TrainHooks | None = None) -> TrainResult:
    """:func:`_train` with ``cfg.out`` locked: a second command writing the same run folder refuses."""
    from ..fileio import out_lock
    with out_lock(cfg.out, "train"):
        return _train(cfg, resume=resume, progress=progress, final_eval=final_eval, hooks=hooks)


def _train(cfg: TrainConfig, *, resume: bool = False, progress: bool = True, final_eval: bool = True,
           hooks: TrainHooks | None = None) -> TrainResult:
    """Train a classifier as ``cfg`` says; write last.pt / best.pt / metrics into ``cfg.out``.

    With ``cfg.teacher`` set this is knowledge distillation; ``hooks`` lets other stages
    (QAT) reuse the loop, its checkpoints and its exact resume."""
    cfg.validate()
    out = Path(cfg.out)
    last_path, best_path = out / "last.pt", out / "best.pt"
    hooks = hooks if hooks is not None else default_hooks(cfg, out)  # checks the teacher before anything is written
    state = _resume_state(cfg, last_path) if resume else None
    if not resume and last_path.exists():
        raise UserError(f"{last_path}: a run already exists in {out}; "
                        "pass --resume to continue it or choose another --out")

    device, rank, world = _setup_device(cfg)
    is_main = rank == 0
    progress = progress and is_main and progress_enabled()
    if cfg.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    seed_everything(cfg.seed)
    pp = preprocess_from(cfg)
    train_ds, val_ds = _datasets(cfg, pp, progress, hooks.train_input_size(cfg))
    classes = train_ds.classes

    if state is not None and classes != list(state.classes):
        raise UserError(f"{last_path}: was trained on other classes than {cfg.data} now holds; "
                        "restore the dataset or use another --out")
    pretrained: bool | str = True if cfg.pretrained == "hub" else (cfg.pretrained or False)
    if state is not None:
        pretrained = False  # the weights come from last.pt; a resume must work offline
    model = hooks.build_model(cfg, classes, pretrained, state)
    report = getattr(model, "weights_report", None)
    if report is not None and is_main:
        console.print(report.line())
    frozen = freeze_stages(model, cfg.freeze_stages)
    model.to(device)
    if cfg.channels_last:  # faster on CUDA and on CPU (oneDNN): 416 vs 287 img/s for the demo model, 2 cores
        model.to(memory_format=torch.channels_last)
    hooks.setup(model, device)
    train_module = hooks.training_module(model)
    steps_per_epoch = len(_loader(train_ds, cfg, True, 0, world, rank, device))
    opt, sched = _build_optim(cfg, train_module, steps_per_epoch)
    amp_dtype = _amp_dtype(cfg, device)
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    ema = None
    if cfg.ema:
        from timm.utils import ModelEmaV3
        ema = ModelEmaV3(model, decay=cfg.ema_decay)
    mixup_fn = None
    if cfg.mixup > 0 or cfg.cutmix > 0:
        from timm.data import Mixup
        mixup_fn = Mixup(mixup_alpha=cfg.mixup, cutmix_alpha=cfg.cutmix, prob=cfg.mixup_prob,
                         label_smoothing=cfg.label_smoothing, num_classes=len(classes))
    from timm.loss import SoftTargetCrossEntropy
    criterion = SoftTargetCrossEntropy() if mixup_fn else nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)

    start_epoch, best, bad_epochs, history = 0, {"val_top1": -1.0, hooks.best_key: -1.0}, 0, []
    if state is not None:
        model.load_state_dict(state.state_dict)
        ex = state.extra
        opt.load_state_dict(ex["optimizer"])
        sched.load_state_dict(ex["scheduler"])
        if ex.get("scaler"):
            scaler.load_state_dict(ex["scaler"])
        if ema is not None and ex.get("ema") is not None:
            ema.module.load_state_dict(ex["ema"])
        if ex.get("hooks") is not None:
            hooks.load_state_dict(ex["hooks"])
        start_epoch, best, bad_epochs, history = ex["epoch"] + 1, ex["best"], ex["bad_epochs"], list(ex["history"])
        if ex.get("stopped"):  # early stopping ended this run: resuming must not train past it
            start_epoch = max(start_epoch, cfg.epochs)
        if is_main and start_epoch >= cfg.epochs:
            console.print(f"{out} has finished (best val top-1 {best['val_top1']:.2f} at epoch {best.get('epoch')}); "
                          "nothing to train")
        elif is_main:
            console.print(f"resuming {out} at epoch {start_epoch + 1}/{cfg.epochs} "
                          f"(best val top-1 {best['val_top1']:.2f})")

    if world > 1 and device.type == "cuda":  # BatchNorm students: statistics over the global batch, not per GPU
        train_module = nn.SyncBatchNorm.convert_sync_batchnorm(train_module)
    triplet = TripletTerm(cfg.triplet_weight, cfg.triplet_margin) if cfg.uses_triplet() else None
    ddp_model = WithEmbedding(train_module) if triplet else train_module  # forward -> (outputs, embedding)
    if world > 1:
        ddp_model = nn.parallel.DistributedDataParallel(ddp_model,
                                                        device_ids=[device.index] if device.type == "cuda" else None)
    run_model = torch.compile(ddp_model) if cfg.compile else ddp_model
    meta = dict(classes=classes, preprocess=pp,
                train_config={**cfg.to_dict(), "num_train": len(train_ds), "num_val": len(val_ds),
                              "data_note": train_ds.note, **hooks.config_extra(),
                              **({"pretrained_weights": report.to_dict()} if report else {})})

    stopped_early = False
    epoch = start_epoch - 1
    with make_progress() if progress else nullcontext() as prog:
        task = prog.add_task("train", total=cfg.epochs * steps_per_epoch, completed=start_epoch * steps_per_epoch,
                             info="") if prog else None
        for epoch in range(start_epoch, cfg.epochs):
            seed_everything(cfg.seed * 1_000_003 + epoch)
            loader = _loader(train_ds, cfg, True, epoch, world, rank, device)
            run_model.train()
            for m in frozen:  # frozen stages keep their pretrained BatchNorm statistics
                m.eval()
            t0, loss_sum, seen = time.time(), 0.0, 0
            for step, (x, y) in enumerate(loader):
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                if cfg.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                target = y
                if mixup_fn is not None:
                    x, target = (mixup_fn(x, y) if len(x) % 2 == 0
                                 else (x, nn.functional.one_hot(y, len(classes)).float()))
                with torch.autocast(device.type, dtype=amp_dtype) if amp_dtype else nullcontext():
                    outputs = run_model(hooks.model_input(x))
                    if triplet:  # on the embedding of the (mixed) image, labelled by its dominant source
                        outputs, emb = outputs
                    loss = hooks.loss(outputs, x, target, criterion)
                    if triplet:
                        loss = loss + triplet(emb, y, target)
                if not math.isfinite(loss.item()):
                    raise UserError(f"{out}: loss became {loss.item()} at epoch {epoch + 1}; "
                                    "lower --lr or disable AMP (--amp off)")
                opt.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if cfg.grad_clip > 0:
                    scaler.unscale_(opt)
                    nn.utils.clip_grad_norm_(train_module.parameters(), cfg.grad_clip)
                scaler.step(opt)
                scaler.update()
                sched.step_update(epoch * steps_per_epoch + step + 1)
                if ema is not None:
                    ema.update(model)
                loss_sum += loss.item() * len(x)
                seen += len(x)
                if prog:
                    prog.update(task, advance=1, info=f"epoch {epoch + 1}/{cfg.epochs} loss {loss_sum / seen:.3f}")
            if not is_main:
                if _stop_flag(False, world):
                    break
                continue
            eval_model = ema.module if ema is not None else model
            row = {"epoch": epoch + 1, "train_loss": loss_sum / max(seen, 1),
                   **(triplet.epoch_metrics() if triplet else {}), "lr": opt.param_groups[0]["lr"],
                   **validate(eval_model, _loader(val_ds, cfg, False, epoch, 1, 0, device), device, amp_dtype,
                              cfg.channels_last),
                   "epoch_time_s": time.time() - t0}
            history.append(row)
            val_loader = _loader(val_ds, cfg, False, epoch, 1, 0, device)
            row.update(hooks.val_metrics(eval_model, val_loader, device))
            improved = row[hooks.best_key] > best.get(hooks.best_key, -1.0)
            if improved:
                best, bad_epochs = dict(row), 0
                save_checkpoint(best_path, eval_model, metrics=best, **meta, **hooks.checkpoint_fields(eval_model))
            else:
                bad_epochs += 1
            stop = cfg.patience > 0 and bad_epochs >= cfg.patience
            extra = {"optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "scaler": scaler.state_dict(),
                     "ema": ema.module.state_dict() if ema is not None else None, "epoch": epoch, "best": best,
                     "bad_epochs": bad_epochs, "history": history, "rng": _rng_state(), "stopped": stop,
                     "hooks": hooks.state_dict()}
            save_checkpoint(last_path, model, metrics=row, extra=extra, **meta, **hooks.checkpoint_fields(model))
            write_history(out, history)
            if epoch == start_epoch and (train_ds.skipped or val_ds.skipped):  # --skip-bad-images: which, and why
                write_text(out / "skipped-images.txt",
                           "".join(f"{split}\t{line}\n" for split, ds in (("train", train_ds), ("val", val_ds))
                                   for line in ds.skipped))
            if prog is None:
                agree = f"  agreement {row['val_agreement']:.2f} %" if "val_agreement" in row else ""
                trip = f" (triplet {row['train_triplet']:.3f})" if "train_triplet" in row else ""
                console.print(f"epoch {epoch + 1}/{cfg.epochs}  loss {row['train_loss']:.3f}{trip}  "
                              f"val top-1 {row['val_top1']:.2f}{agree}  ({row['epoch_time_s']:.1f}s)")
            stop = _stop_flag(stop, world)
            if stop:
                console.print(f"early stopping: val top-1 has not improved for {cfg.patience} epochs")
                stopped_early = True
                break
    if state is not None and state.extra.get("stopped"):
        stopped_early = True
    result = TrainResult(out, best_path, last_path, best, epoch + 1, stopped_early)
    if is_main:
        write_text(out / "config.yaml", _yaml(cfg.to_dict()))
        plot_history(out, history)
        if final_eval:
            from .evaluate import evaluate
            from ..models import load_model
            best_model, ckpt = load_model(best_path)
            result.eval_metrics = evaluate(best_model, val_ds_eval(val_ds, ckpt.preprocess), out / "eval-val",
                                           preprocess=ckpt.preprocess, device=str(device), gradcam_images=cfg.gradcam,
                                           progress=progress, split_name="val", batch_size=max(cfg.batch_size, 64))
    if world > 1:
        dist.destroy_process_group()
    return result


def _stop_flag(stop: bool, world: int) -> bool:
    """Rank 0 decides early stopping; every rank learns it (and waits for the checkpoint)."""
    if world <= 1:
        return stop
    flag = torch.tensor([int(stop)], device="cuda" if dist.get_backend() == "nccl" else "cpu")
    dist.broadcast(flag, src=0)
    return bool(flag.item())


def val_ds_eval(val_ds: FGDataset, pp: PreprocessConfig) -> FGDataset:
    val_ds.transform = eval_transform(pp)
    return val_ds


def _resume_state(cfg: TrainConfig, last_path: Path):
    if not last_path.exists():
        raise UserError(f"{last_path}: nothing to resume (no last.pt in {last_path.parent}); run without --resume")
    state = load_checkpoint(last_path)
    if "optimizer" not in state.extra:
        raise UserError(f"{last_path}: holds no training state; it cannot be resumed")
    saved = {k: v for k, v in state.train_config.items() if k in cfg.to_dict()}
    now = cfg.to_dict()
    diff = sorted(k for k in saved if k not in _RESUME_FREE and _norm(saved[k]) != _norm(now[k]))
    if diff:
        k = diff[0]
        raise UserError(f"{last_path}: --resume with changed option {k} ({saved[k]!r} -> {now[k]!r}); "
                        "use the original options or a new --out")
    return state


def _norm(v: Any) -> Any:
    return [_norm(x) for x in v] if isinstance(v, (list, tuple)) else v


def _yaml(d: dict[str, Any]) -> str:
    import yaml
    return yaml.safe_dump(d, sort_keys=False)
