"""What the native readers share: the carved validation split, layout checks, .mat and id-table parsing,
and the torchvision dataset classes they build with ``download=False``."""

from __future__ import annotations

import os
import random
from collections import defaultdict
from pathlib import Path
from typing import Callable, Iterable, NoReturn, Sequence

from ...errors import UserError

VAL_FRACTION = 0.10


VAL_SEED = 0


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _abs(root: str | os.PathLike) -> Path:
    return Path(os.path.abspath(os.path.expanduser(os.fspath(root))))


def carve_val(
    samples: Sequence[tuple[str, int]], split: str, *, fraction: float = VAL_FRACTION, seed: int = VAL_SEED
) -> list[tuple[str, int]]:
    """Split an official train list into ``train`` / ``val`` (stratified, deterministic).

    Per class, ``round(fraction * n)`` images (at least 1 when the class has >= 2, never all of
    them) are drawn from the *sorted* paths with a per-class RNG seeded by ``seed`` and the label,
    so the result depends only on the set of files, not on list order or other classes.
    Returned samples keep the order of ``samples``.
    """
    by_class: dict[int, list[str]] = defaultdict(list)
    for path, label in samples:
        by_class[label].append(path)
    val: set[str] = set()
    for label in sorted(by_class):
        paths = sorted(set(by_class[label]))
        n = len(paths)
        k = 0 if n < 2 else min(n - 1, max(1, int(n * fraction + 0.5)))
        rng = random.Random(seed * 1_000_003 + label)
        val.update(rng.sample(paths, k))
    if split == "val":
        return [(p, y) for p, y in samples if p in val]
    return [(p, y) for p, y in samples if p not in val]


def _carved_note(official_train: str = "train") -> str:
    return (
        f"val = stratified {VAL_FRACTION:.0%} of the official {official_train} split (per class, seed {VAL_SEED}, "
        f">=1 image per class kept in train); train = the rest; test = the official test split"
    )


_OFFICIAL_NOTE = "official train/val/test splits"


def _select(samples: list[tuple[str, int]], split: str,
            official_train: str = "train") -> tuple[list[tuple[str, int]], str]:
    """``samples`` is the official train (for train/val) or test split; carve val when asked."""
    if split == "test":
        return samples, _carved_note(official_train)
    return carve_val(samples, split), _carved_note(official_train)


def _unique_names(names: Iterable[str]) -> list[str]:
    """Keep order; make duplicates unique by suffixing `` (2)``, `` (3)``..."""
    seen: dict[str, int] = {}
    out: list[str] = []
    for name in names:
        name = _one_line(name)
        if name in seen:
            seen[name] += 1
            name = f"{name} ({seen[name]})"
        else:
            seen[name] = 1
        out.append(name)
    return out


def _readable(name: str) -> str:
    return _one_line(name.replace("_", " "))


def _wrong_root(root: Path, kind: str, layout: str, dataset_dirs: Callable[[Path], list[Path]]) -> NoReturn:
    """Raise a one-line error; point at the right level when the data is just above or below ``root``.

    ``dataset_dirs(p)`` lists the existing dataset folders that make ``p`` a valid root.
    """
    if not root.exists():
        raise UserError(f"{root}: {kind} root does not exist; expected {layout}")
    for parent in list(root.parents)[:3]:
        if any(root.is_relative_to(d) for d in dataset_dirs(parent)):
            raise UserError(f"{root}: points inside the {kind} dataset; use --data {kind}={parent} (layout: {layout})")
    try:
        children = sorted(c for c in root.iterdir() if c.is_dir() and not c.name.startswith("."))
    except OSError:
        children = []
    for child in children:
        if dataset_dirs(child):
            raise UserError(f"{root}: the {kind} dataset is one level down; use --data {kind}={child} "
                            f"(layout: {layout})")
    raise UserError(f"{root}: not a {kind} dataset root; expected {layout}")


def _dirs(*candidates: Path) -> list[Path]:
    return [c for c in candidates if c.is_dir()]


def _require(base: Path, relpaths: Iterable[str], kind: str, layout: str) -> None:
    """Raise naming the first missing metadata file / folder (``rel/`` means a folder)."""
    for rel in relpaths:
        path = base / rel.rstrip("/")
        ok = path.is_dir() if rel.endswith("/") else path.is_file()
        if not ok:
            what = "folder" if rel.endswith("/") else "metadata file"
            raise UserError(f"{path}: missing {kind} {what}; expected {layout} (re-extract the official archive)")


def _check_images(samples: Sequence[tuple[str, int]], listed_in: Path | str, kind: str) -> None:
    missing = [p for p, _ in samples if not os.path.isfile(p)]
    if missing:
        raise UserError(
            f"{listed_in}: {len(missing)} {kind} image file(s) listed here are missing, first: {missing[0]} "
            "-- re-extract the images archive or fix the root"
        )


def _loadmat(path: Path, kind: str, variables: Sequence[str]) -> dict:
    import scipy.io

    try:
        mat = scipy.io.loadmat(str(path))
    except Exception as exc:  # scipy raises ValueError/TypeError/OSError/MatReadError on bad files
        raise UserError(f"{path}: cannot read {kind} .mat file ({_one_line(exc)}); re-download it") from None
    for var in variables:
        if var not in mat:
            raise UserError(f"{path}: {kind} .mat file has no variable {var!r}; re-download the official file")
    return mat


def _mat_strings(arr) -> list[str]:
    """A MATLAB cell array of strings (any shape, nested 1x1 cells) as a flat list of str."""
    import numpy as np

    out = []
    for item in np.asarray(arr, dtype=object).ravel():
        while isinstance(item, np.ndarray):
            item = item.ravel()[0] if item.size else ""
        out.append(str(item))
    return out


def _mat_ints(arr) -> list[int]:
    import numpy as np

    return [int(v) for v in np.asarray(arr).ravel()]


def _read_id_table(path: Path, kind: str) -> dict[int, str]:
    """``<int id> <rest>`` per line (CUB's .txt metadata)."""
    table: dict[int, str] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            key, _, rest = line.partition(" ")
            try:
                table[int(key)] = rest.strip()
            except ValueError:
                raise UserError(f"{path}:{lineno}: expected '<id> <value>', got {line[:60]!r}; "
                                f"re-extract the {kind} archive") from None
            if not rest.strip():
                raise UserError(f"{path}:{lineno}: expected '<id> <value>', got {line[:60]!r}; "
                                f"re-extract the {kind} archive")
    return table


def _int_field(value: str, path: Path, key: int) -> int:
    try:
        return int(value.split()[0])
    except (ValueError, IndexError):
        raise UserError(f"{path}: entry {key} has non-integer value {value!r}; re-extract the cub200 archive") from None


def _tv_root(root: Path, folder: str, kind: str, layout: str) -> Path:
    """The directory that holds ``folder`` (what torchvision calls ``root``); ROOT/folder itself is accepted."""
    if (root / folder).is_dir():
        return root
    if root.name == folder and root.is_dir():
        return root.parent
    _wrong_root(root, kind, layout, lambda p: _dirs(p / folder, *([p] if p.name == folder else [])))


def _tv_build(factory: Callable[[], object], base: Path, kind: str, layout: str):
    try:
        return factory()
    except RuntimeError as exc:
        raise UserError(f"{base}: {kind} dataset not found or corrupted (torchvision: {_one_line(exc)}); "
                        f"expected {layout}") from None
    except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise UserError(
            f"{base}: cannot parse the {kind} metadata ({type(exc).__name__}: {_one_line(exc)}); expected {layout}"
        ) from None


def _tv_attr(ds: object, name: str, kind: str):
    try:
        return getattr(ds, name)
    except AttributeError:
        import torchvision

        raise UserError(
            f"torchvision {torchvision.__version__}: {type(ds).__name__} has no attribute {name!r}; "
            f"the {kind} reader needs a torchvision release where it exists (0.19 - 0.29 are known to work)"
        ) from None
