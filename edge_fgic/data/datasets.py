"""The one Dataset class (:class:`FGDataset`) over any reader's split index, and opening a split with
every image decode-checked once. Which reader reads which layout is :mod:`.registry`'s business;
the readers are in :mod:`.readers`.

No torch here: :class:`FGDataset` is a map-style dataset (``__len__`` + ``__getitem__``, all torch's
``DataLoader`` asks of one), so ``bench`` and ``predict`` read a split's (path, label) list and classes in an
install without torch, and training hands the same object to a ``DataLoader``.

May import: errors, progress, fileio, and this package.
"""

from __future__ import annotations

from typing import Callable

from ..errors import UserError
from .images import find_bad_images, load_rgb, skipped_summary
from .registry import (  # noqa: F401 - the data API
    SPLITS,
    DataSpec,
    Reader,
    SplitIndex,
    list_readers,
    parse_data_spec,
    read_split,
)


class FGDataset:
    """(image, label) pairs from any reader; images decoded by :func:`load_rgb` (a map-style dataset for torch's
    ``DataLoader``; ``samples`` and ``classes`` are the split for those that need no images)."""

    def __init__(self, index: SplitIndex, transform: Callable | None = None, name: str = ""):
        self.classes = list(index.classes)
        self.samples = list(index.samples)
        self.targets = [y for _, y in self.samples]
        self.transform = transform
        self.name = name
        self.note = index.note
        self.skipped: list[str] = []   # "path: reason" of images --skip-bad-images left out
        self._cache: list | None = None

    def cache_in_memory(self, progress: bool = True) -> "FGDataset":
        """Decode every image once and keep it in RAM (fork-shared by DataLoader workers)."""
        from ..progress import track

        if self._cache is None:
            self._cache = [load_rgb(p) for p, _ in track(self.samples, len(self.samples), "caching images", progress)]
        return self

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        path, label = self.samples[i]
        img = self._cache[i] if self._cache is not None else load_rgb(path)
        if self.transform is not None:
            img = self.transform(img)
        return img, label


def open_split(
    spec: DataSpec | str,
    split: str,
    transform: Callable | None = None,
    *,
    check_images: bool = True,
    skip_bad_images: bool = False,
    progress: bool = True,
) -> FGDataset:
    """Read a split, decode-check every image once, and wrap it in :class:`FGDataset`.

    Bad images stop the run with a count and the first few paths unless ``skip_bad_images``.
    """
    spec = parse_data_spec(spec)
    index = read_split(spec, split)
    bad: list[str] = []
    if check_images:
        bad = find_bad_images([p for p, _ in index.samples], progress=progress, label=split)
        if bad:
            if not skip_bad_images:
                first = "; ".join(b.split("; replace or delete it")[0] for b in bad[:3])  # the hint comes once, below
                raise UserError(
                    f"{spec.path}: {len(bad)} unreadable image(s) in split {split!r}, e.g. {first} "
                    "-- fix them or pass --skip-bad-images"
                )
            bad_paths = {b.split(": ", 1)[0] for b in bad}
            index.samples = [(p, y) for p, y in index.samples if p not in bad_paths]
            index.note = (index.note + f"; skipped {len(bad)} unreadable image(s)").lstrip("; ")
            # never silent: the files and why, on the console (stderr) and kept on the dataset for the run's outputs
            from ..progress import err_console
            err_console.print(f"warning: --skip-bad-images: skipped {skipped_summary(bad)} in split {split!r} of "
                              f"{spec.path}", style="yellow", markup=False, highlight=False, soft_wrap=True)
    ds = FGDataset(index, transform, name=str(spec))
    ds.skipped = list(bad)
    return ds


def check_same_classes(train: FGDataset | SplitIndex, other: FGDataset | SplitIndex, where: str) -> None:
    """Val/test must use exactly the train class list (same names, same order)."""
    if list(train.classes) == list(other.classes):
        return
    missing = sorted(set(train.classes) - set(other.classes))
    extra = sorted(set(other.classes) - set(train.classes))
    detail = []
    if missing:
        detail.append(f"missing {missing[:5]}")
    if extra:
        detail.append(f"unexpected {extra[:5]}")
    raise UserError(
        f"{where}: class list differs from the train split ({', '.join(detail) or 'different order'}); "
        "give every split the same class folders"
    )


def checkpoint_data(data: str | None, ckpt, model: object, split: str) -> DataSpec:
    """The dataset of a command that reads a checkpoint: ``data`` (``--data``) or, when ``None``, the one
    recorded in the checkpoint; checked from ``split``'s index (no image decoded) to have the checkpoint's
    classes, in the same order. ``model`` is how the user named the checkpoint (for the messages)."""
    return recorded_data(data, (ckpt.train_config or {}).get("data"), list(ckpt.classes), model, split)


def recorded_data(data: str | None, recorded: object, classes: list[str], model: object, split: str,
                  what: str = "checkpoint") -> DataSpec:
    """:func:`checkpoint_data` for any model that records its dataset and classes (``what``: "checkpoint", or
    "artifact" for an exported one, whose manifest's ``source.data`` is ``recorded``)."""
    if data is None:
        if not recorded:
            raise UserError(f"{model}: the {what} records no dataset; pass --data KIND=PATH")
        try:
            spec = parse_data_spec(str(recorded))
            index = read_split(spec, split)
        except UserError as exc:
            raise UserError(f"{exc} (dataset recorded in {model}; pass --data KIND=PATH to use another)") from None
    else:
        spec = parse_data_spec(data)
        index = read_split(spec, split)
    expected, got = list(classes), list(index.classes)
    if got != expected:
        missing = [c for c in expected if c not in set(got)]
        extra = [c for c in got if c not in set(expected)]
        parts = [f"{how} {names[:5]}{' ...' if len(names) > 5 else ''}"
                 for how, names in (("missing", missing), ("unexpected", extra)) if names]
        raise UserError(
            f"{spec.path}: the {split} split's {len(got)} classes differ from the {len(expected)} classes of {model} "
            f"({', '.join(parts) or 'same names in a different order'}); "
            f"pass --data with the dataset the {what} was trained on"
        )
    return spec
