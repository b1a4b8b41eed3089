"""Built-in datasets: their classes, official splits, augmentation kind and where files are found.

Split sizes (from the RACHEL paper where it gives them):

* Fashion-MNIST and MNIST: 55,000 train / 5,000 val / 10,000 test; the validation set is a
  stratified, seeded 1/12 of the official 60,000 training images (500 per class).
* CIFAR-10: 45,000 / 5,000 / 10,000; validation = stratified 10 % of the 50,000 training images.
* SVHN (format 2, cropped digits): the core 73,257 training and 26,032 test images; validation
  = stratified 10 % of train (7,326), so 65,931 remain for training.  ``extra`` is not used.
* The five binary CIFAR-10 pairs (AdaNet's tasks, compared in the paper): the two classes'
  10,000 training and 2,000 test images, labels remapped to 0/1 in the order of the name
  (``cifar10_cat_dog``: cat = 0, dog = 1).  The paper does not give their validation size; we
  use CIFAR-10's 10 % (9,000 / 1,000 / 2,000).

Fractions rather than counts are stored, so a smaller copy in the same format (as the tests
write) is split in the same proportions.

Augmentation kind: ``natural`` (random horizontal flips + ±10 % translation, the paper's
setting) for CIFAR-10 and the pairs; ``digits`` (translation only: a flipped 2 or 5 is not the
same digit) for MNIST and SVHN.  The paper applies flips to Fashion-MNIST too; clothes are
left-right symmetric, so we keep ``natural`` for it.

Where files are looked for, in order (see :func:`candidate_places`):

1. an explicit ``data_dir`` (local folder, archive file or ``gs://bucket/prefix``), itself and
   its sub-folders named after the dataset or Keras's folder; when ``data_dir`` is given it is
   the *only* place searched, so a wrong path fails instead of silently using another copy;
2. ``$RACHEL_DATA_DIR/<name>/`` (and ``$RACHEL_DATA_DIR/<Keras folder>/``);
3. the Keras cache, ``$KERAS_HOME/datasets/`` or ``~/.keras/datasets/`` (and ``/tmp/.keras``,
   where Keras falls back when its home is read-only), with Keras's folder names;
4. Debian's ``/usr/share/datasets/fashion-mnist`` (package ``dataset-fashion-mnist``).

Nothing is ever downloaded.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from rachel.core import storage
from rachel.core.data import formats
from rachel.core.errors import DataError, StorageError

FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
DIGIT_CLASSES = tuple(str(i) for i in range(10))
CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)


@dataclass(frozen=True)
class CatalogEntry:
    """One built-in dataset."""

    name: str
    family: str  # which files to read: "idx", "cifar10" or "svhn"
    class_names: tuple[str, ...]
    input_shape: tuple[int, int, int]
    augmentation: str
    val_fraction: Fraction  # of the official training set
    official_sizes: tuple[int, int, int]  # train, val, test with the complete official files
    folder_names: tuple[str, ...]  # sub-folder names under a root (RACHEL_DATA_DIR, Keras cache)
    classes: tuple[int, ...] | None = None  # source labels kept, in new label order (pairs)
    description: str = ""

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def val_count(self, n_train: int) -> int:
        """Validation examples carved from ``n_train`` training examples (rounded half up)."""
        return int(n_train * self.val_fraction + Fraction(1, 2))


_CIFAR_FOLDERS = ("cifar10", "cifar-10-batches-py", "cifar-10-batches-py-target", "cifar-10-python")

BINARY_PAIRS = (
    ("cat", "dog"),
    ("deer", "truck"),
    ("deer", "horse"),
    ("automobile", "truck"),
    ("dog", "horse"),
)


def _entries() -> dict[str, CatalogEntry]:
    entries = {
        "fashion_mnist": CatalogEntry(
            "fashion_mnist",
            "idx",
            FASHION_CLASSES,
            (28, 28, 1),
            "natural",
            Fraction(1, 12),
            (55_000, 5_000, 10_000),
            ("fashion_mnist", "fashion-mnist"),
            description="Zalando Fashion-MNIST, 28×28 greyscale, 10 clothing classes",
        ),
        "mnist": CatalogEntry(
            "mnist",
            "idx",
            DIGIT_CLASSES,
            (28, 28, 1),
            "digits",
            Fraction(1, 12),
            (55_000, 5_000, 10_000),
            ("mnist",),
            description="MNIST handwritten digits, 28×28 greyscale",
        ),
        "cifar10": CatalogEntry(
            "cifar10",
            "cifar10",
            CIFAR10_CLASSES,
            (32, 32, 3),
            "natural",
            Fraction(1, 10),
            (45_000, 5_000, 10_000),
            _CIFAR_FOLDERS,
            description="CIFAR-10, 32×32 colour, 10 classes (python version)",
        ),
        "svhn": CatalogEntry(
            "svhn",
            "svhn",
            DIGIT_CLASSES,
            (32, 32, 3),
            "digits",
            Fraction(1, 10),
            (65_931, 7_326, 26_032),
            ("svhn",),
            description="SVHN format 2 (cropped digits), 32×32 colour; label 10 means 0",
        ),
    }
    for a, b in BINARY_PAIRS:
        name = f"cifar10_{a}_{b}"
        entries[name] = CatalogEntry(
            name,
            "cifar10",
            (a, b),
            (32, 32, 3),
            "natural",
            Fraction(1, 10),
            (9_000, 1_000, 2_000),
            (name, *_CIFAR_FOLDERS),
            classes=(CIFAR10_CLASSES.index(a), CIFAR10_CLASSES.index(b)),
            description=f"CIFAR-10 {a} (0) vs {b} (1)",
        )
    return entries


CATALOG: dict[str, CatalogEntry] = _entries()


def dataset_names() -> tuple[str, ...]:
    """Names of the built-in datasets."""
    return tuple(CATALOG)


def get_entry(name: str) -> CatalogEntry:
    try:
        return CATALOG[name]
    except KeyError:
        raise DataError(
            f"unknown dataset {name!r}",
            f"use one of {', '.join(CATALOG)} or a path / gs:// URI to a .npz or .parquet file",
        ) from None


# ---------------------------------------------------------------------- locating files


def _keras_roots() -> list[str]:
    roots = []
    if os.environ.get("KERAS_HOME"):
        roots.append(os.environ["KERAS_HOME"])
    roots.append(str(Path.home() / ".keras"))
    roots.append("/tmp/.keras")
    return list(dict.fromkeys(roots))


def candidate_places(
    entry: CatalogEntry, data_dir: str | os.PathLike[str] | None = None
) -> list[str]:
    """Ordered list of folders/archives where ``entry``'s files may be (see module docstring)."""
    if data_dir is not None:
        base = str(data_dir)
        return [base, *(storage.join(base, f) for f in entry.folder_names)]
    places = []
    if os.environ.get("RACHEL_DATA_DIR"):
        root = os.environ["RACHEL_DATA_DIR"]
        places += [storage.join(root, f) for f in (entry.name, *entry.folder_names)]
    for root in _keras_roots():
        datasets = storage.join(root, "datasets")
        places += [storage.join(datasets, f) for f in entry.folder_names]
        if entry.name == "mnist" or entry.family == "cifar10":
            # Keras keeps datasets/mnist.npz and the CIFAR archive directly in datasets/
            places.append(datasets)
    if entry.name == "fashion_mnist":
        places.append("/usr/share/datasets/fashion-mnist")
    return list(dict.fromkeys(places))


_CIFAR_ARCHIVES = (
    "cifar-10-python.tar.gz",
    "cifar-10-batches-py.tar.gz",
    "cifar-10-batches-py-target_archive",
)


def _is_dir(place: str) -> bool:
    return storage.is_gcs(place) or Path(place).is_dir()


Found = tuple[str, Callable[[], formats.RawDataset]]


def _probe_idx(place: str) -> Found | None:
    if not _is_dir(place):
        return None
    if formats.has_idx_files(place):
        return place, lambda: formats.read_idx_dir(place)
    npz = formats.find_file(place, ("mnist.npz",))
    if npz is not None:
        return npz, lambda: formats.read_npz(npz)
    return None


def _probe_cifar(place: str) -> Found | None:
    if not storage.is_gcs(place) and Path(place).is_file():
        return place, lambda: formats.read_cifar_archive(place)
    if not _is_dir(place):
        return None
    for sub in ("", "cifar-10-batches-py", "cifar-10-batches-py-target/cifar-10-batches-py"):
        folder = storage.join(place, sub) if sub else place
        if formats.find_file(folder, ("data_batch_1",)) is not None:
            return folder, lambda folder=folder: formats.read_cifar_dir(folder)
    archive = formats.find_file(place, _CIFAR_ARCHIVES)
    if archive is not None:
        return archive, lambda: formats.read_cifar_archive(archive)
    if (
        storage.is_gcs(place)
        and place.endswith((".tar.gz", ".tgz", "_archive"))
        and storage.exists(place)
    ):
        return place, lambda: formats.read_cifar_archive(place)
    return None


def _probe_svhn(place: str) -> Found | None:
    if _is_dir(place) and formats.find_file(place, ("train_32x32.mat",)) is not None:
        return place, lambda: formats.read_svhn_dir(place)
    return None


_PROBES = {"idx": _probe_idx, "cifar10": _probe_cifar, "svhn": _probe_svhn}

_EXPECTED_FILES = {
    "idx": "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
    "t10k-labels-idx1-ubyte.gz (or Keras's mnist.npz)",
    "cifar10": "cifar-10-batches-py/ (data_batch_1..5, test_batch, batches.meta) or "
    "cifar-10-python.tar.gz",
    "svhn": "train_32x32.mat and test_32x32.mat (format 2)",
}


def locate(entry: CatalogEntry, data_dir: str | os.PathLike[str] | None = None) -> Found:
    """Find ``entry``'s files; return where they are (folder or archive) and a reader, or raise
    a DataError that lists every place looked in and how to provide the files."""
    looked = []
    for place in candidate_places(entry, data_dir):
        try:
            found = _PROBES[entry.family](place)
        except StorageError as err:
            looked.append(f"{place} ({err.problem})")
            continue
        if found is not None:
            return found
        looked.append(place)
    env = "" if os.environ.get("RACHEL_DATA_DIR") or data_dir else " ($RACHEL_DATA_DIR is not set)"
    raise DataError(
        f"dataset {entry.name!r} not found; looked in: {'; '.join(looked)}{env}",
        f"put the official files ({_EXPECTED_FILES[entry.family]}) in one of those places, set "
        "RACHEL_DATA_DIR=<folder or gs://bucket/prefix> holding a "
        f"'{entry.folder_names[0]}' folder, or pass data_dir=... (a local folder or "
        "gs://bucket/prefix); nothing is downloaded (offline)",
    )
