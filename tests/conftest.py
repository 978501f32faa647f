"""Shared test fixtures: an isolated image-scan cache, no progress bars, tiny datasets/checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pytest
from PIL import Image

TINY_MODEL = dict(depths=(1, 1, 1, 1), dims=(8, 16, 32, 64))

# Test tiers: `make test-fast` (pytest -m "not slow") is the inner loop; `make test` runs everything (CI).
# A test that uses one of these fixtures is slow by nature (it trains, exports or compiles first) and is
# marked here; a test that is slow on its own (a training loop, subprocesses) carries @pytest.mark.slow.
SLOW_FIXTURES = {
    "tiny_bnrelu_run", "ptq_signed", "ptq_unsigned",  # a trained checkpoint and its INT8s, and all exported from them
    "done",       # test_pipeline.py: a whole tiny pipeline run
    "demo_dir",   # test_readme.py: the demo's folder, made by the real pipeline
    "jvm_build",  # test_android_demo.py: kotlinc compiles the Android demo's logic and its JVM tests
    "tiny_fp32_exports",  # the FP32 ONNX and TFLite exports of tiny_bnrelu_run (test_torch_free.py)
    "slim_venv",  # tests/slim_env.py: the wheel installed into a fresh torch-free venv
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def one_error_line(result) -> str:
    """A CLI result that failed the way users must see it: exit 2, one line on stderr, no traceback."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test gets its own image-scan cache (no leaks between tests) and no progress bars."""
    monkeypatch.setenv("EDGE_FGIC_CACHE", str(tmp_path_factory.mktemp("edge_fgic_cache")))
    monkeypatch.setenv("EDGE_FGIC_NO_PROGRESS", "1")


def write_imagefolder(
    root: Path,
    classes: Sequence[str] = ("ant", "bee", "cat"),
    splits: dict[str, int] | None = None,
    size: tuple[int, int] = (48, 40),
    seed: int = 0,
) -> Path:
    """ROOT/<split>/<class>/<i>.jpg with small random RGB images; ``splits`` = images per class."""
    rng = np.random.default_rng(seed)
    for split, per_class in (splits or {"train": 4, "val": 2}).items():
        for name in classes:
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                w, h = size
                arr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
                Image.fromarray(arr).save(folder / f"{i}.jpg", quality=90)
    return root


@pytest.fixture
def imagefolder(tmp_path: Path) -> Callable[..., Path]:
    """Factory: ``imagefolder(name="data", **write_imagefolder kwargs)`` under tmp_path."""

    def make(name: str = "data", **kwargs) -> Path:
        return write_imagefolder(tmp_path / name, **kwargs)

    return make


@pytest.fixture
def tiny_checkpoint(tmp_path: Path) -> Callable[..., Path]:
    """Factory: a tiny convnext_atto checkpoint (32 px input) for ``classes``; returns its path."""

    def make(
        classes: Sequence[str] = ("ant", "bee", "cat"),
        name: str = "run/best.pt",
        train_config: dict | None = None,
        state_dict: dict | None = None,
    ) -> Path:
        import torch

        from edge_fgic.data.transforms import PreprocessConfig
        from edge_fgic.models import create_model, save_checkpoint

        torch.manual_seed(0)
        model = create_model("convnext_atto", len(classes), **TINY_MODEL)
        return save_checkpoint(
            tmp_path / name,
            model,
            classes=list(classes),
            preprocess=PreprocessConfig(input_size=32, crop_pct=1.0),
            train_config=train_config,
            state_dict=state_dict,
        )

    return make


TINY_KW = dict(depths=[1, 1, 1, 1], dims=[8, 16, 32, 64])


@pytest.fixture(scope="session")
def tiny_synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 32 px synthetic dataset: 6 classes x (6 train, 3 val, 1 test) images."""
    from edge_fgic.data.synthetic import SyntheticConfig, generate

    root = tmp_path_factory.mktemp("synth") / "fg"
    return generate(
        root, SyntheticConfig(image_size=32, train_per_class=6, val_per_class=3, test_per_class=1), progress=False
    )


@pytest.fixture(scope="session")
def tiny_bnrelu_run(tiny_synth: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """best.pt of a tiny INT8-friendly (bn-relu) model trained 2 epochs on ``tiny_synth`` (real BN
    statistics); the teacher of the distillation tests and the FP32 source of the INT8 tests.
    Tests must not write into its folder."""
    from edge_fgic.training.config import TrainConfig
    from edge_fgic.training.trainer import train

    out = tmp_path_factory.mktemp("bnrelu") / "run"
    cfg = TrainConfig.from_dict(dict(data=f"synthetic={tiny_synth}", model="convnext_atto", variant="bn-relu",
                                     model_kwargs=TINY_KW, input_size=32, crop_pct=1.0, epochs=2, batch_size=8,
                                     workers=0, out=str(out), gradcam=0,
                                     auto_augment="none", mean=[0.5] * 3, std=[0.25] * 3, lr=3e-3))
    return train(cfg, progress=False, final_eval=False).best


@pytest.fixture(scope="session")
def tiny_fp32_exports(tiny_bnrelu_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with ``m-fp32.onnx`` and ``m-fp32.tflite`` (and their manifests) exported from ``tiny_bnrelu_run``;
    their manifests record ``tiny_synth`` as the dataset. Tests must not write into it."""
    from edge_fgic.export.exporter import ExportConfig, export

    out = tmp_path_factory.mktemp("fp32-exports")
    for target in ("onnx", "tflite"):
        export(ExportConfig(model=str(tiny_bnrelu_run), target=target, precision="fp32", out=str(out), name="m",
                            split="train", check_images=0), progress=False)
    return out


def _ptq(tiny_bnrelu_run: Path, tmp_path_factory: pytest.TempPathFactory, signed: bool) -> Path:
    from edge_fgic.quant.nncf_quant import QuantConfig, run_quantize

    out = tmp_path_factory.mktemp("ptq") / ("signed" if signed else "unsigned")
    run_quantize(QuantConfig(model=str(tiny_bnrelu_run), mode="ptq", out=str(out), calib_size=20,
                             signed_activations=signed), progress=False)
    return out


@pytest.fixture(scope="session")
def ptq_signed(tiny_bnrelu_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder of a PTQ INT8 checkpoint of ``tiny_bnrelu_run`` with every activation int8 (TensorRT-legal)."""
    return _ptq(tiny_bnrelu_run, tmp_path_factory, signed=True)


@pytest.fixture(scope="session")
def ptq_unsigned(tiny_bnrelu_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder of a PTQ INT8 checkpoint with NNCF's unsigned (uint8) quantizers after ReLU."""
    return _ptq(tiny_bnrelu_run, tmp_path_factory, signed=False)


@pytest.fixture(scope="session")
def slim_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv (no torch) with the wheel of this checkout and ``[litert,camera]``; returns the venv's path.
    Run its ``bin/edge-fgic`` with ``slim_env.slim_run(slim_venv, "edge-fgic", ...)`` (tests/slim_env.py)."""
    from slim_env import build_slim_venv

    return build_slim_venv(tmp_path_factory.mktemp("slim") / "venv", extras=("litert", "camera"))
