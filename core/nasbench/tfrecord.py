"""Read and write the official NAS-Bench-101 TFRecord files without TensorFlow.

The official files (``nasbench_only108.tfrecord``, ``nasbench_full.tfrecord``) are plain
TFRecord streams.  Each record is framed as::

    uint64 little-endian  length of the payload
    uint32 little-endian  masked CRC-32C of those 8 length bytes
    bytes                 payload (``length`` bytes)
    uint32 little-endian  masked CRC-32C of the payload

with ``masked(crc) = ((crc >> 15) | (crc << 17)) + 0xA282EAD8`` (mod 2**32).

Every payload is UTF-8 JSON holding one training run of one cell at one epoch budget.
The order of the five elements follows the official reader
(``google-research/nasbench``, ``nasbench/api.py``, ``NASBench.__init__``)::

    [module_hash, epochs, adjacency, operations, metrics]

* ``adjacency``: the pruned ``n x n`` matrix flattened row-major as a string of '0'/'1';
* ``operations``: the ``n`` op labels joined by commas;
* ``metrics``: base64 of a serialised ``nasbench.ModelMetrics`` proto (proto2, from
  ``nasbench/lib/model_metrics.proto``).  ``evaluation_data[0]`` is the evaluation at
  step 0, ``[1]`` the one half-way through training, ``[2]`` the final one.

(The element order above is what the official reader unpacks; a description that lists
``epochs`` fourth does not match the published files.)

The ``ModelMetrics`` descriptor is built programmatically in a private descriptor pool, so
neither ``protoc`` nor the ``nasbench`` package is needed.  Optional proto2 fields that are
absent in a record decode to ``None`` here (the official reader would report 0.0).
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO

import google_crc32c
import numpy as np

from rachel.core import storage
from rachel.core.errors import NasBenchError

_MASK_DELTA = 0xA282EAD8
_HEADER = struct.Struct("<QI")
_FOOTER = struct.Struct("<I")

# --------------------------------------------------------------------------------------
# TFRecord framing
# --------------------------------------------------------------------------------------


def masked_crc32c(data: bytes) -> int:
    """The TFRecord checksum: CRC-32C of ``data``, rotated right by 15 bits plus a constant."""
    crc = google_crc32c.value(bytes(data))
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def frame_record(payload: bytes) -> bytes:
    """One payload framed as a TFRecord (length, CRC of length, payload, CRC of payload)."""
    length = struct.pack("<Q", len(payload))
    return (
        length
        + struct.pack("<I", masked_crc32c(length))
        + payload
        + _FOOTER.pack(masked_crc32c(payload))
    )


_CORRUPT_HINT = (
    "the file is truncated or corrupt: download it again (compare its size and checksum with "
    "the published nasbench_only108.tfrecord / nasbench_full.tfrecord) or re-run the step "
    "that wrote it"
)


def _iter_frames(fh: BinaryIO, source: str, verify: bool) -> Iterator[tuple[int, bytes]]:
    offset = 0
    while True:
        header = fh.read(_HEADER.size)
        if not header:
            return
        if len(header) < _HEADER.size:
            raise NasBenchError(
                f"{source}: truncated TFRecord header at byte offset {offset} "
                f"({len(header)} of {_HEADER.size} bytes)",
                _CORRUPT_HINT,
            )
        length, length_crc = _HEADER.unpack(header)
        if verify and masked_crc32c(header[:8]) != length_crc:
            raise NasBenchError(
                f"{source}: length checksum mismatch in the TFRecord header at byte offset "
                f"{offset} (not a TFRecord file, or corrupt)",
                _CORRUPT_HINT,
            )
        body = fh.read(length + _FOOTER.size)
        if len(body) < length + _FOOTER.size:
            raise NasBenchError(
                f"{source}: truncated TFRecord at byte offset {offset}: expected "
                f"{length + _FOOTER.size} bytes after the header, found {len(body)}",
                _CORRUPT_HINT,
            )
        payload = body[:length]
        if verify:
            (data_crc,) = _FOOTER.unpack(body[length:])
            if masked_crc32c(payload) != data_crc:
                raise NasBenchError(
                    f"{source}: data checksum mismatch in the TFRecord at byte offset {offset}",
                    _CORRUPT_HINT,
                )
        yield offset, payload
        offset += _HEADER.size + length + _FOOTER.size


def iter_tfrecord(
    uri: str | os.PathLike[str], *, verify: bool = True
) -> Iterator[tuple[int, bytes]]:
    """Yield ``(byte_offset, payload)`` for each record of a TFRecord file (local or gs://).

    Checksums are verified unless ``verify=False``.  Any framing problem raises
    :class:`NasBenchError` naming the file and the byte offset of the bad record.
    """
    uri = str(uri)
    with storage.local_copy(uri) as local:
        if not Path(local).is_file():
            raise NasBenchError(f"{uri} is not a file", "pass the path of a .tfrecord file")
        with open(local, "rb", buffering=1 << 20) as fh:
            yield from _iter_frames(fh, uri, verify)


def write_tfrecord(uri: str | os.PathLike[str], payloads: Iterable[bytes]) -> int:
    """Write ``payloads`` as one TFRecord file, atomically.  Returns the number of records.

    A local file is streamed to a temporary file in the same folder and renamed into place
    (a failure leaves nothing behind); a ``gs://`` object is built in memory and uploaded.
    """
    uri = str(uri)
    count = 0
    if storage.is_gcs(uri):
        buf = io.BytesIO()
        for payload in payloads:
            buf.write(frame_record(payload))
            count += 1
        storage.write_bytes(uri, buf.getvalue())
        return count
    with storage.atomic_file(uri) as fh:
        for payload in payloads:
            fh.write(frame_record(payload))
            count += 1
    return count


# --------------------------------------------------------------------------------------
# ModelMetrics proto
# --------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _metrics_class() -> Any:
    """``nasbench.ModelMetrics`` as a protobuf message class, built without protoc."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    fdp = descriptor_pb2.FileDescriptorProto(
        name="rachel/nasbench/model_metrics.proto", package="nasbench", syntax="proto2"
    )
    fd = descriptor_pb2.FieldDescriptorProto
    opt, rep = fd.LABEL_OPTIONAL, fd.LABEL_REPEATED
    ev = fdp.message_type.add(name="EvaluationData")
    for number, name in enumerate(
        [
            "current_epoch",
            "training_time",
            "train_accuracy",
            "validation_accuracy",
            "test_accuracy",
        ],
        start=1,
    ):
        ev.field.add(name=name, number=number, label=opt, type=fd.TYPE_DOUBLE)
    ev.field.add(name="checkpoint_path", number=6, label=opt, type=fd.TYPE_STRING)
    mm = fdp.message_type.add(name="ModelMetrics")
    mm.field.add(
        name="evaluation_data",
        number=1,
        label=rep,
        type=fd.TYPE_MESSAGE,
        type_name=".nasbench.EvaluationData",
    )
    mm.field.add(name="trainable_parameters", number=2, label=opt, type=fd.TYPE_INT32)
    mm.field.add(name="total_time", number=3, label=opt, type=fd.TYPE_DOUBLE)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("nasbench.ModelMetrics"))


_EVAL_FIELDS = (
    "current_epoch",
    "training_time",
    "train_accuracy",
    "validation_accuracy",
    "test_accuracy",
)


@dataclass(frozen=True)
class EvaluationData:
    """One evaluation during training; ``None`` = field absent from the record."""

    current_epoch: float | None = None
    training_time: float | None = None
    train_accuracy: float | None = None
    validation_accuracy: float | None = None
    test_accuracy: float | None = None
    checkpoint_path: str | None = None


@dataclass(frozen=True)
class ModelMetrics:
    """``nasbench.ModelMetrics``: evaluations at step 0, half-way and the end of training."""

    evaluation_data: tuple[EvaluationData, ...] = ()
    trainable_parameters: int | None = None
    total_time: float | None = None

    def evaluation(self, index: int) -> EvaluationData:
        """``evaluation_data[index]``, or an all-``None`` evaluation when it is missing."""
        if 0 <= index < len(self.evaluation_data):
            return self.evaluation_data[index]
        return EvaluationData()

    @property
    def halfway(self) -> EvaluationData:
        return self.evaluation(1)

    @property
    def final(self) -> EvaluationData:
        return self.evaluation(2)


def decode_model_metrics(data: bytes) -> ModelMetrics:
    """Parse a serialised ``ModelMetrics`` proto (raises ``DecodeError`` on bad bytes)."""
    msg = _metrics_class().FromString(data)
    evals = []
    for ev in msg.evaluation_data:
        values = {f: (getattr(ev, f) if ev.HasField(f) else None) for f in _EVAL_FIELDS}
        cp = ev.checkpoint_path if ev.HasField("checkpoint_path") else None
        evals.append(EvaluationData(**values, checkpoint_path=cp))
    return ModelMetrics(
        evaluation_data=tuple(evals),
        trainable_parameters=(
            int(msg.trainable_parameters) if msg.HasField("trainable_parameters") else None
        ),
        total_time=float(msg.total_time) if msg.HasField("total_time") else None,
    )


def encode_model_metrics(metrics: ModelMetrics) -> bytes:
    """Serialise ``metrics`` (``None`` fields are left unset)."""
    msg = _metrics_class()()
    for ev in metrics.evaluation_data:
        out = msg.evaluation_data.add()
        for f in _EVAL_FIELDS:
            value = getattr(ev, f)
            if value is not None:
                setattr(out, f, float(value))
        if ev.checkpoint_path is not None:
            out.checkpoint_path = ev.checkpoint_path
    if metrics.trainable_parameters is not None:
        msg.trainable_parameters = int(metrics.trainable_parameters)
    if metrics.total_time is not None:
        msg.total_time = float(metrics.total_time)
    return msg.SerializeToString()


# --------------------------------------------------------------------------------------
# NAS-Bench records
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NasBenchRecord:
    """One training run of one cell at one epoch budget, as stored in the official file."""

    module_hash: str
    epochs: int
    adjacency: np.ndarray  # (n, n) int8, the pruned matrix
    operations: tuple[str, ...]
    metrics: ModelMetrics = field(default_factory=ModelMetrics)

    @property
    def adjacency_string(self) -> str:
        return "".join("1" if v else "0" for v in np.asarray(self.adjacency).reshape(-1))


def encode_record(record: NasBenchRecord) -> bytes:
    """The JSON payload of one record, element order as the official reader expects."""
    metrics_b64 = base64.b64encode(encode_model_metrics(record.metrics)).decode("ascii")
    row = [
        record.module_hash,
        int(record.epochs),
        record.adjacency_string,
        ",".join(record.operations),
        metrics_b64,
    ]
    return json.dumps(row).encode("utf-8")


def decode_record(payload: bytes, *, source: str = "<bytes>", offset: int = 0) -> NasBenchRecord:
    """Parse one record payload; a malformed one raises :class:`NasBenchError`."""

    def bad(why: str) -> NasBenchError:
        return NasBenchError(
            f"{source}: malformed NAS-Bench record at byte offset {offset}: {why}",
            "the file is not an official NAS-Bench-101 tfrecord (records must be JSON "
            "[module_hash, epochs, adjacency, operations, base64 ModelMetrics]) or it is "
            "corrupt: download it again",
        )

    try:
        row = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise bad(f"payload is not UTF-8 JSON ({err})") from err
    if not isinstance(row, list) or len(row) != 5:
        raise bad("expected a JSON list of 5 elements")
    module_hash, epochs, raw_adj, raw_ops, raw_metrics = row
    if not isinstance(module_hash, str) or not isinstance(epochs, int):
        raise bad("module_hash must be a string and epochs an integer")
    if not isinstance(raw_adj, str) or not isinstance(raw_ops, str):
        raise bad("adjacency and operations must be strings")
    dim = int(round(len(raw_adj) ** 0.5))
    if dim * dim != len(raw_adj) or dim == 0 or set(raw_adj) - {"0", "1"}:
        raise bad(f"adjacency {raw_adj!r} is not a flattened square 0/1 matrix")
    ops = tuple(raw_ops.split(","))
    if len(ops) != dim:
        raise bad(f"{len(ops)} operations for a {dim}x{dim} adjacency matrix")
    adjacency = (
        (np.frombuffer(raw_adj.encode("ascii"), dtype=np.uint8) - ord("0"))
        .astype(np.int8)
        .reshape(dim, dim)
    )
    try:
        metrics = decode_model_metrics(base64.b64decode(raw_metrics, validate=True))
    except (binascii.Error, TypeError, ValueError) as err:
        raise bad(f"metrics are not base64 ({err})") from err
    except Exception as err:  # protobuf's DecodeError
        raise bad(f"metrics are not a ModelMetrics proto ({err})") from err
    return NasBenchRecord(module_hash, epochs, adjacency, ops, metrics)


def read_records(uri: str | os.PathLike[str], *, verify: bool = True) -> Iterator[NasBenchRecord]:
    """Yield every :class:`NasBenchRecord` of an official NAS-Bench-101 tfrecord file."""
    for offset, payload in iter_tfrecord(uri, verify=verify):
        yield decode_record(payload, source=str(uri), offset=offset)


def write_records(uri: str | os.PathLike[str], records: Iterable[NasBenchRecord]) -> int:
    """Write records in the official format (atomically).  Returns the number written."""
    return write_tfrecord(uri, (encode_record(r) for r in records))
