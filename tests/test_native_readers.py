"""Native-layout readers: tiny fixtures in each benchmark's real on-disk layout.

Every fixture uses the real file names and formats (.txt tables, MATLAB v5 .mat files written
with scipy.io.savemat in the structure the real files have, 16x16 JPEGs written with PIL).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

from edge_fgic.errors import UserError
from edge_fgic.data import readers
from edge_fgic.data.registry import READERS, SplitIndex

_JPEG: bytes | None = None


def _jpg(path: Path) -> None:
    global _JPEG
    if _JPEG is None:
        buf = io.BytesIO()
        Image.new("RGB", (16, 16), (90, 140, 200)).save(buf, "JPEG")
        _JPEG = buf.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_JPEG)


def _cell(strings: list[str], column: bool = True) -> np.ndarray:
    """A MATLAB cell array of char arrays (Nx1 or 1xN)."""
    arr = np.empty((len(strings), 1) if column else (1, len(strings)), dtype=object)
    arr.ravel()[:] = strings
    return arr


def _user_error(fn, *args) -> str:
    with pytest.raises(UserError) as info:
        fn(*args)
    msg = str(info.value)
    assert "\n" not in msg, msg
    return msg


def _check_carved(read, root: Path, n_official_train: int) -> dict[str, SplitIndex]:
    """Shared assertions for readers whose val is carved from the official train split."""
    out = {s: read(root, s) for s in ("train", "val", "test")}
    classes = out["train"].classes
    for s, idx in out.items():
        assert idx.classes == classes, s
        assert all(os.path.isabs(p) for p, _ in idx.samples), s
        assert all(os.path.isfile(p) for p, _ in idx.samples), s
        assert "val = stratified 10%" in idx.note
    train = {p for p, _ in out["train"].samples}
    val = {p for p, _ in out["val"].samples}
    assert train.isdisjoint(val)
    assert len(train) + len(val) == n_official_train
    assert set(range(len(classes))) <= {y for _, y in out["train"].samples}  # every class keeps train images
    again = read(root, "val")
    assert again.samples == out["val"].samples  # deterministic
    return out


# ---------------------------------------------------------------- CUB-200-2011

CUB_CLASSES = ["001.Black_footed_Albatross", "002.Laysan_Albatross", "003.Sooty_Albatross"]
CUB_COUNTS = [(10, 2), (5, 2), (1, 2)]  # (train, test) per class


def make_cub(root: Path, reverse: bool = False) -> Path:
    base = root / "CUB_200_2011"
    rows = []  # (relpath, class 1-based, is_train)
    for c, (name, (n_train, n_test)) in enumerate(zip(CUB_CLASSES, CUB_COUNTS), 1):
        bird = name.split(".", 1)[1].replace("_footed", "_Footed")
        for i in range(n_train + n_test):
            rows.append((f"{name}/{bird}_{i + 1:04d}_{100 + i}.jpg", c, int(i < n_train)))
    if reverse:  # same files, different image ids / list order
        rows = rows[::-1]
    for rel, _, _ in rows:
        _jpg(base / "images" / rel)
    ids = range(1, len(rows) + 1)
    (base / "images.txt").write_text("".join(f"{i} {r[0]}\n" for i, r in zip(ids, rows)))
    (base / "image_class_labels.txt").write_text("".join(f"{i} {r[1]}\n" for i, r in zip(ids, rows)))
    (base / "train_test_split.txt").write_text("".join(f"{i} {r[2]}\n" for i, r in zip(ids, rows)))
    (base / "classes.txt").write_text("".join(f"{c} {n}\n" for c, n in enumerate(CUB_CLASSES, 1)))
    (base / "README").write_text("CUB-200-2011 fixture\n")
    return root


def test_cub200_splits(tmp_path):
    root = make_cub(tmp_path)
    out = _check_carved(readers.read_cub200, root, n_official_train=16)
    assert out["train"].classes == ["Black footed Albatross", "Laysan Albatross", "Sooty Albatross"]
    # val per class: round(10 %) with >= 1 when a class has >= 2 train images, 0 for a singleton
    assert sorted(y for _, y in out["val"].samples) == [0, 1]
    assert len(out["train"].samples) == 14 and len(out["test"].samples) == 6
    test = dict(out["test"].samples)
    base = tmp_path / "CUB_200_2011" / "images"
    assert test[str(base / "002.Laysan_Albatross/Laysan_Albatross_0006_105.jpg")] == 1
    assert dict(out["train"].samples)[str(base / "003.Sooty_Albatross/Sooty_Albatross_0001_100.jpg")] == 2


def test_cub200_root_levels_and_order_independence(tmp_path):
    a = make_cub(tmp_path / "a")
    b = make_cub(tmp_path / "b", reverse=True)
    for split in ("train", "val", "test"):
        outer = readers.read_cub200(a, split)
        inner = readers.read_cub200(a / "CUB_200_2011", split)
        assert outer == inner
        other = readers.read_cub200(b, split)
        strip = lambda idx, r: sorted((str(Path(p).relative_to(r)), y) for p, y in idx.samples)  # noqa: E731
        assert strip(outer, a) == strip(other, b)  # same val regardless of image ids / list order


def test_cub200_errors(tmp_path):
    root = make_cub(tmp_path)
    base = root / "CUB_200_2011"
    msg = _user_error(readers.read_cub200, base / "images", "train")
    assert f"use --data cub200={base}" in msg
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "not a cub200 dataset root" in _user_error(readers.read_cub200, empty, "train")

    img = base / "images" / "001.Black_footed_Albatross" / "Black_Footed_Albatross_0011_110.jpg"
    img.unlink()  # a test image
    readers.read_cub200(root, "train")  # train does not list it
    msg = _user_error(readers.read_cub200, root, "test")
    assert "1 cub200 image file(s)" in msg and str(img) in msg

    (base / "train_test_split.txt").unlink()
    msg = _user_error(readers.read_cub200, root, "train")
    assert msg.startswith(f"{base / 'train_test_split.txt'}: missing cub200 metadata file")


# ---------------------------------------------------------------- Stanford Dogs

DOG_FOLDERS = ["n02085620-Chihuahua", "n02085782-Japanese_spaniel", "n02086240-Shih-Tzu"]


def make_dogs(root: Path, n_train: int = 4, n_test: int = 2) -> Path:
    lists = {"train": [], "test": []}
    for label, folder in enumerate(DOG_FOLDERS, 1):
        wnid = folder.split("-", 1)[0]
        for i in range(n_train + n_test):
            rel = f"{folder}/{wnid}_{1000 + i}.jpg"
            _jpg(root / "Images" / rel)
            lists["train" if i < n_train else "test"].append((rel, label))
    (root / "lists").mkdir()
    for split, entries in lists.items():
        files = [rel for rel, _ in entries]
        scipy.io.savemat(
            root / "lists" / f"{split}_list.mat",
            {
                "file_list": _cell(files),
                "annotation_list": _cell([f[: -len(".jpg")] for f in files]),
                "labels": np.array([[y] for _, y in entries], dtype=np.uint8),
            },
        )
    return root


def test_stanford_dogs_splits(tmp_path):
    root = make_dogs(tmp_path)
    out = _check_carved(readers.read_stanford_dogs, root, n_official_train=12)
    assert out["train"].classes == ["Chihuahua", "Japanese spaniel", "Shih-Tzu"]
    assert [len(out[s].samples) for s in ("train", "val", "test")] == [9, 3, 6]
    assert sorted(y for _, y in out["val"].samples) == [0, 1, 2]
    test = dict(out["test"].samples)
    assert test[str(root / "Images" / "n02086240-Shih-Tzu" / "n02086240_1005.jpg")] == 2
    # the loaded .mat really has the nested-cell structure of the official lists
    mat = scipy.io.loadmat(root / "lists" / "train_list.mat")
    assert mat["file_list"].shape == (12, 1) and mat["file_list"][0, 0].dtype.kind == "U"


def test_stanford_dogs_errors(tmp_path):
    root = make_dogs(tmp_path)
    msg = _user_error(readers.read_stanford_dogs, root / "Images", "train")
    assert f"use --data stanford_dogs={root}" in msg
    (root / "Images" / "n02085620-Chihuahua" / "n02085620_1000.jpg").unlink()
    msg = _user_error(readers.read_stanford_dogs, root, "train")
    assert "1 stanford_dogs image file(s)" in msg and "n02085620_1000.jpg" in msg
    (root / "lists" / "test_list.mat").unlink()
    msg = _user_error(readers.read_stanford_dogs, root, "test")
    assert msg.startswith(f"{root / 'lists' / 'test_list.mat'}: missing stanford_dogs metadata file")


# ---------------------------------------------------------------- Oxford 102 Flowers

FLOWER_LABELS = [1, 1, 1, 1, 2, 2, 2, 2, 102, 102, 102, 102]  # image_00001 .. image_00012


def make_flowers(root: Path) -> Path:
    base = root / "flowers-102"
    for i in range(1, len(FLOWER_LABELS) + 1):
        _jpg(base / "jpg" / f"image_{i:05d}.jpg")
    scipy.io.savemat(base / "imagelabels.mat", {"labels": np.array([FLOWER_LABELS], dtype=np.uint8)})
    scipy.io.savemat(
        base / "setid.mat",
        {
            "trnid": np.array([[1, 2, 5, 6, 9, 10]], dtype=np.uint16),
            "valid": np.array([[3, 7, 11]], dtype=np.uint16),
            "tstid": np.array([[4, 8, 12]], dtype=np.uint16),
        },
    )
    return root


@pytest.fixture
def no_md5(monkeypatch):
    """A fixture's .mat files cannot match the official md5s torchvision checks."""
    import torchvision.datasets.flowers102 as tv_flowers

    monkeypatch.setattr(tv_flowers, "check_integrity", lambda path, md5=None: os.path.isfile(path))


def test_flowers102_splits(tmp_path, no_md5):
    from torchvision.datasets import Flowers102

    root = make_flowers(tmp_path)
    out = {s: readers.read_flowers102(root, s) for s in ("train", "val", "test")}
    assert out["train"].classes == list(Flowers102.classes) and len(out["train"].classes) == 102
    assert all(out[s].classes == out["train"].classes for s in out)
    jpg = root / "flowers-102" / "jpg"
    assert out["val"].samples == [(str(jpg / "image_00003.jpg"), 0), (str(jpg / "image_00007.jpg"), 1),
                                  (str(jpg / "image_00011.jpg"), 101)]
    assert [len(out[s].samples) for s in ("train", "val", "test")] == [6, 3, 3]
    assert dict(out["test"].samples)[str(jpg / "image_00012.jpg")] == 101
    assert out["val"].note == "official train/val/test splits"
    assert readers.read_flowers102(root / "flowers-102", "test") == out["test"]  # dataset folder itself


def test_flowers102_errors(tmp_path, monkeypatch):
    root = make_flowers(tmp_path)
    base = root / "flowers-102"
    # without the md5 patch torchvision rejects the fixture's .mat files: name the file
    msg = _user_error(readers.read_flowers102, root, "train")
    assert msg.startswith(f"{base / 'imagelabels.mat'}: fails torchvision's md5 check")
    import torchvision.datasets.flowers102 as tv_flowers

    monkeypatch.setattr(tv_flowers, "check_integrity", lambda path, md5=None: os.path.isfile(path))
    msg = _user_error(readers.read_flowers102, base / "jpg", "train")
    assert f"use --data flowers102={base}" in msg
    (base / "jpg" / "image_00005.jpg").unlink()
    msg = _user_error(readers.read_flowers102, root, "train")
    assert "1 flowers102 image file(s)" in msg and "image_00005.jpg" in msg
    (base / "setid.mat").unlink()
    msg = _user_error(readers.read_flowers102, root, "train")
    assert msg.startswith(f"{base / 'setid.mat'}: missing flowers102 metadata file")


# ---------------------------------------------------------------- Oxford-IIIT Pet

# (image id prefix, class id, species 1=cat 2=dog, breed id within species)
PETS = [("Abyssinian", 1, 1, 1), ("american_bulldog", 2, 2, 1), ("american_pit_bull_terrier", 3, 2, 2)]


def make_pets(root: Path, n_trainval: int = 5, n_test: int = 2, test_classes=(1, 2, 3)) -> Path:
    base = root / "oxford-iiit-pet"
    lines = {"trainval": [], "test": []}
    for prefix, cid, species, breed in PETS:
        for i in range(1, n_trainval + n_test + 1):
            split = "trainval" if i <= n_trainval else "test"
            if split == "test" and cid not in test_classes:
                continue
            _jpg(base / "images" / f"{prefix}_{i}.jpg")
            lines[split].append(f"{prefix}_{i} {cid} {species} {breed}\n")
    (base / "annotations").mkdir(parents=True)
    for split, rows in lines.items():
        (base / "annotations" / f"{split}.txt").write_text("".join(rows))
    return root


def test_oxford_pets_splits(tmp_path):
    root = make_pets(tmp_path)
    out = _check_carved(readers.read_oxford_pets, root, n_official_train=15)
    assert out["train"].classes == ["Abyssinian", "American Bulldog", "American Pit Bull Terrier"]
    assert [len(out[s].samples) for s in ("train", "val", "test")] == [12, 3, 6]
    assert "official trainval split" in out["val"].note
    images = root / "oxford-iiit-pet" / "images"
    assert dict(out["test"].samples)[str(images / "american_bulldog_7.jpg")] == 1


def test_oxford_pets_class_missing_from_test(tmp_path):
    """torchvision names classes per split; the reader keeps one list, indexed by class id."""
    root = make_pets(tmp_path, test_classes=(1, 3))
    test = readers.read_oxford_pets(root, "test")
    assert test.classes == readers.read_oxford_pets(root, "train").classes
    assert len(test.classes) == 3
    images = root / "oxford-iiit-pet" / "images"
    assert dict(test.samples)[str(images / "american_pit_bull_terrier_6.jpg")] == 2


def test_oxford_pets_errors(tmp_path):
    root = make_pets(tmp_path)
    base = root / "oxford-iiit-pet"
    msg = _user_error(readers.read_oxford_pets, base / "images", "test")
    assert f"use --data oxford_pets={base}" in msg
    (base / "images" / "Abyssinian_6.jpg").unlink()
    msg = _user_error(readers.read_oxford_pets, root, "test")
    assert "1 oxford_pets image file(s)" in msg and "Abyssinian_6.jpg" in msg
    (base / "annotations" / "test.txt").unlink()
    msg = _user_error(readers.read_oxford_pets, root, "train")  # both lists are needed for the class list
    assert msg.startswith(f"{base / 'annotations' / 'test.txt'}: missing oxford_pets metadata file")


# ---------------------------------------------------------------- Stanford Cars

CAR_CLASSES = ["AM General Hummer SUV 2000", "Acura RL Sedan 2012", "Acura TL Sedan 2012"]
_ANNO_DTYPE = [(f, "O") for f in ("bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2", "class", "fname")]


def _annos(rows: list[tuple[str, int]]) -> np.ndarray:
    """1xN MATLAB struct array like cars_train_annos.mat / cars_test_annos_withlabels.mat."""
    arr = np.zeros((1, len(rows)), dtype=_ANNO_DTYPE)
    for j, (fname, cls) in enumerate(rows):
        u8 = lambda v: np.array([[v]], dtype=np.uint8)  # noqa: E731
        arr[0, j] = (u8(1), u8(2), u8(15), u8(14), u8(cls), fname)
    return arr


def make_cars(root: Path, n_train: int = 4, n_test: int = 2) -> Path:
    base = root / "stanford_cars"
    rows = {"train": [], "test": []}
    for cls in range(1, len(CAR_CLASSES) + 1):
        for split, n in (("train", n_train), ("test", n_test)):
            for _ in range(n):
                fname = f"{len(rows[split]) + 1:05d}.jpg"
                _jpg(base / f"cars_{split}" / fname)
                rows[split].append((fname, cls))
    (base / "devkit").mkdir()
    scipy.io.savemat(base / "devkit" / "cars_meta.mat", {"class_names": _cell(CAR_CLASSES, column=False)})
    scipy.io.savemat(base / "devkit" / "cars_train_annos.mat", {"annotations": _annos(rows["train"])})
    # the labelled test annotations live next to devkit/, not inside it (torchvision's layout)
    scipy.io.savemat(base / "cars_test_annos_withlabels.mat", {"annotations": _annos(rows["test"])})
    return root


def test_stanford_cars_splits(tmp_path):
    root = make_cars(tmp_path)
    out = _check_carved(readers.read_stanford_cars, root, n_official_train=12)
    assert out["train"].classes == CAR_CLASSES
    assert [len(out[s].samples) for s in ("train", "val", "test")] == [9, 3, 6]
    base = root / "stanford_cars"
    assert dict(out["test"].samples)[str(base / "cars_test" / "00005.jpg")] == 2
    assert dict(out["train"].samples + out["val"].samples)[str(base / "cars_train" / "00005.jpg")] == 1
    assert readers.read_stanford_cars(base, "test") == out["test"]


def test_stanford_cars_errors(tmp_path):
    root = make_cars(tmp_path)
    base = root / "stanford_cars"
    parent = tmp_path / "data"
    parent.mkdir()
    os.rename(root / "stanford_cars", parent / "stanford_cars")
    msg = _user_error(readers.read_stanford_cars, tmp_path, "train")
    assert f"one level down; use --data stanford_cars={parent}" in msg
    base = parent / "stanford_cars"
    (base / "cars_train" / "00002.jpg").unlink()
    msg = _user_error(readers.read_stanford_cars, parent, "train")
    assert "1 stanford_cars image file(s)" in msg and "00002.jpg" in msg
    (base / "devkit" / "cars_meta.mat").unlink()
    msg = _user_error(readers.read_stanford_cars, parent, "test")
    assert msg.startswith(f"{base / 'devkit' / 'cars_meta.mat'}: missing stanford_cars metadata file")


# ---------------------------------------------------------------- FGVC-Aircraft

VARIANTS = ["707-320", "A300B4", "F-16A/B"]


def make_aircraft(root: Path) -> Path:
    data = root / "fgvc-aircraft-2013b" / "data"
    (data / "images").mkdir(parents=True)
    (data / "variants.txt").write_text("".join(v + "\n" for v in VARIANTS))
    image_id = 1025794
    for split, n in (("train", 3), ("val", 2), ("test", 2)):
        rows = []
        for v in VARIANTS:
            for _ in range(n):
                _jpg(data / "images" / f"{image_id:07d}.jpg")
                rows.append(f"{image_id:07d} {v}\n")
                image_id += 1
        (data / f"images_variant_{split}.txt").write_text("".join(rows))
    return root


def test_fgvc_aircraft_splits(tmp_path):
    root = make_aircraft(tmp_path)
    out = {s: readers.read_fgvc_aircraft(root, s) for s in ("train", "val", "test")}
    assert all(out[s].classes == VARIANTS for s in out)
    assert [len(out[s].samples) for s in ("train", "val", "test")] == [9, 6, 6]
    images = root / "fgvc-aircraft-2013b" / "data" / "images"
    assert dict(out["train"].samples)[str(images / "1025800.jpg")] == 2  # 7th train row: F-16A/B
    assert dict(out["val"].samples)[str(images / f"{1025794 + 9:07d}.jpg")] == 0
    assert all(os.path.isabs(p) for s in out for p, _ in out[s].samples)
    assert readers.read_fgvc_aircraft(root / "fgvc-aircraft-2013b", "val") == out["val"]


def test_fgvc_aircraft_errors(tmp_path):
    root = make_aircraft(tmp_path)
    data = root / "fgvc-aircraft-2013b" / "data"
    msg = _user_error(readers.read_fgvc_aircraft, data, "train")
    assert f"use --data fgvc_aircraft={root / 'fgvc-aircraft-2013b'}" in msg
    with open(data / "images_variant_test.txt", "a") as f:
        f.write("1099999 Cessna 172\n")
    msg = _user_error(readers.read_fgvc_aircraft, root, "test")
    assert "'Cessna 172' is not in data/variants.txt" in msg
    (data / "variants.txt").unlink()
    msg = _user_error(readers.read_fgvc_aircraft, root, "train")
    assert msg.startswith(f"{data / 'variants.txt'}: missing fgvc_aircraft metadata file")


# ---------------------------------------------------------------- registry and carving


def test_registry():
    expected = {
        "cub200": ("cub", "cub200_2011"),
        "stanford_dogs": ("dogs",),
        "flowers102": ("flowers",),
        "oxford_pets": ("pets",),
        "stanford_cars": ("cars",),
        "fgvc_aircraft": ("aircraft",),
    }
    for kind, aliases in expected.items():
        reader = READERS[kind]
        assert reader.kind == kind and reader.splits == ("train", "val", "test")
        assert "\n" not in reader.description and "ROOT/" in reader.description
        for alias in aliases:
            assert READERS[alias] is reader


def test_carve_val_properties():
    samples = [(f"/d/c{y}/{i:03d}.jpg", y) for y, n in enumerate([1, 2, 9, 30, 100]) for i in range(n)]
    val = readers.carve_val(samples, "val")
    train = readers.carve_val(samples, "train")
    count = lambda s, y: sum(1 for _, c in s if c == y)  # noqa: E731
    assert [count(val, y) for y in range(5)] == [0, 1, 1, 3, 10]
    assert all(count(train, y) >= 1 for y in range(5))
    assert sorted(val + train) == sorted(samples)
    shuffled = samples[::-1]
    assert set(readers.carve_val(shuffled, "val")) == set(val)  # independent of list order
    # independent of other classes: dropping class 4 leaves the other classes' picks unchanged
    assert set(readers.carve_val([s for s in samples if s[1] != 4], "val")) == {s for s in val if s[1] != 4}


def test_read_split_integration(tmp_path):
    """Through the public entry point (``KIND=PATH`` with an alias)."""
    pytest.importorskip("edge_fgic.data.synthetic")
    from edge_fgic.data.datasets import read_split

    root = make_dogs(tmp_path)
    idx = read_split(f"dogs={root}", "val")
    assert idx.classes == ["Chihuahua", "Japanese spaniel", "Shih-Tzu"] and len(idx.samples) == 3
