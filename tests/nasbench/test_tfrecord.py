"""Official NAS-Bench-101 tfrecord format: framing, checksums, records, errors."""

from __future__ import annotations

import base64
import json
import struct
import subprocess
import sys

import numpy as np
import pytest
from helpers import nasbench_data

from rachel.core.errors import NasBenchError
from rachel.core.nasbench import tfrecord as tfr

D = nasbench_data


@pytest.fixture(scope="module")
def real_records():
    bench = D.shared_bench()
    return D.records_from_rows(bench, D.real_rows(bench, 12))


def test_crc32c_and_mask_match_the_published_definition():
    # CRC-32C check value of "123456789" (RFC 3720 / iSCSI) and the TFRecord masking rule
    crc = 0xE3069283
    assert tfr.masked_crc32c(b"123456789") == (((crc >> 15) | (crc << 17)) + 0xA282EAD8) % 2**32


def test_frame_layout():
    framed = tfr.frame_record(b"hello")
    length, length_crc = struct.unpack("<QI", framed[:12])
    assert length == 5 and length_crc == tfr.masked_crc32c(framed[:8])
    assert framed[12:17] == b"hello"
    assert struct.unpack("<I", framed[17:])[0] == tfr.masked_crc32c(b"hello")


def test_real_rows_round_trip_including_inception(tmp_path, real_records):
    path = tmp_path / "nasbench_only108.tfrecord"
    assert tfr.write_records(path, real_records) == len(real_records)
    back = list(tfr.read_records(path))
    assert len(back) == len(real_records)
    for a, b in zip(real_records, back, strict=True):
        assert a.module_hash == b.module_hash and a.epochs == b.epochs == 108
        assert a.operations == b.operations
        np.testing.assert_array_equal(a.adjacency, b.adjacency)
        assert a.metrics == b.metrics
    inception = [r for r in back if r.module_hash == D.INCEPTION_HASH]
    assert len(inception) == 3
    assert [r.metrics.final.validation_accuracy for r in inception] == pytest.approx(
        [0.93760, 0.93780, 0.93369], abs=1e-5
    )
    assert [r.metrics.final.test_accuracy for r in inception] == pytest.approx(
        [0.93119, 0.93269, 0.92869], abs=1e-5
    )
    assert inception[0].metrics.trainable_parameters == 2694282
    assert inception[0].adjacency.shape == (7, 7)
    # values the table does not have stay absent (None), never 0.0
    assert inception[0].metrics.final.train_accuracy is None
    assert inception[0].metrics.halfway.validation_accuracy is None
    others = [r for r in back if r.module_hash != D.INCEPTION_HASH]
    assert all(r.metrics.final.test_accuracy is None for r in others)


def test_payload_is_the_official_json_layout(real_records):
    payload = json.loads(tfr.encode_record(real_records[0]))
    module_hash, epochs, adjacency, operations, metrics = payload
    assert module_hash == real_records[0].module_hash and epochs == 108
    n = len(real_records[0].operations)
    assert len(adjacency) == n * n and set(adjacency) <= {"0", "1"}
    assert operations.split(",") == list(real_records[0].operations)
    decoded = tfr.decode_model_metrics(base64.b64decode(metrics))
    assert decoded == real_records[0].metrics


def test_proto_wire_format_by_hand():
    # ModelMetrics{evaluation_data{current_epoch: 108, validation_accuracy: 0.5},
    #              trainable_parameters: 300}
    inner = bytes([0x09]) + struct.pack("<d", 108.0) + bytes([0x21]) + struct.pack("<d", 0.5)
    wire = bytes([0x0A, len(inner)]) + inner + bytes([0x10, 0xAC, 0x02])
    m = tfr.decode_model_metrics(wire)
    assert m.trainable_parameters == 300
    assert m.evaluation_data[0].current_epoch == 108.0
    assert m.evaluation_data[0].validation_accuracy == 0.5
    assert m.evaluation_data[0].test_accuracy is None
    assert tfr.decode_model_metrics(tfr.encode_model_metrics(m)) == m


def _write(tmp_path, records, name="x.tfrecord"):
    path = tmp_path / name
    tfr.write_records(path, records)
    return path


def test_truncated_file_names_file_and_offset(tmp_path, real_records):
    path = _write(tmp_path, real_records[:3])
    data = path.read_bytes()
    path.write_bytes(data[:-7])
    with pytest.raises(NasBenchError) as err:
        list(tfr.read_records(path))
    msg = str(err.value)
    assert "truncated" in msg and str(path) in msg and "offset" in msg and "fix:" in msg
    second = len(tfr.frame_record(tfr.encode_record(real_records[0]))) + len(
        tfr.frame_record(tfr.encode_record(real_records[1]))
    )
    assert f"offset {second}" in msg
    path.write_bytes(data[:5])  # cut inside the first header
    with pytest.raises(NasBenchError, match="truncated TFRecord header at byte offset 0"):
        list(tfr.iter_tfrecord(path))


def test_corrupt_payload_and_header_are_detected(tmp_path, real_records):
    path = _write(tmp_path, real_records[:2])
    data = bytearray(path.read_bytes())
    data[20] ^= 0x01  # inside the first payload
    path.write_bytes(bytes(data))
    with pytest.raises(NasBenchError, match="data checksum mismatch .* offset 0"):
        list(tfr.iter_tfrecord(path))
    assert len(list(tfr.iter_tfrecord(path, verify=False))) == 2
    data = bytearray(_write(tmp_path, real_records[:2], "y.tfrecord").read_bytes())
    data[3] ^= 0x10  # the length field
    (tmp_path / "y.tfrecord").write_bytes(bytes(data))
    with pytest.raises(NasBenchError, match="length checksum mismatch"):
        list(tfr.iter_tfrecord(tmp_path / "y.tfrecord"))


def test_not_a_tfrecord(tmp_path):
    path = tmp_path / "notes.tfrecord"
    path.write_text("this is a text file, not a TFRecord stream at all\n")
    with pytest.raises(NasBenchError, match="notes.tfrecord"):
        list(tfr.iter_tfrecord(path))


@pytest.mark.parametrize(
    "payload, why",
    [
        (b"\xff\xfe", "not UTF-8 JSON"),
        (b'{"a": 1}', "list of 5"),
        (b'["h", 108, "0101", "input,output", "!!!"]', "not base64"),
        (b'["h", 108, "012", "input,output", ""]', "square 0/1"),
        (b'["h", 108, "0100", "input", ""]', "1 operations"),
        (
            b'["h", 108, "0100", "input,output", "' + base64.b64encode(b"\x0a\x05\x01") + b'"]',
            "ModelMetrics",
        ),
    ],
)
def test_malformed_records(tmp_path, payload, why):
    path = tmp_path / "bad.tfrecord"
    tfr.write_tfrecord(path, [payload])
    with pytest.raises(NasBenchError, match=why):
        list(tfr.read_records(path))


def test_no_tensorflow_import():
    code = (
        "import sys; import rachel.core.nasbench.tfrecord, rachel.core.nasbench.table, "
        "rachel.core.nasbench.api, rachel.core.nasbench.estimators, "
        "rachel.core.nasbench.evaluation; assert 'tensorflow' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.slow
def test_tensorflow_reads_our_file_and_we_read_its(tmp_path, real_records):
    tf = pytest.importorskip("tensorflow")
    ours = _write(tmp_path, real_records)
    got = [bytes(x.numpy()) for x in tf.data.TFRecordDataset(str(ours))]
    assert got == [tfr.encode_record(r) for r in real_records]
    theirs = tmp_path / "tf.tfrecord"
    with tf.io.TFRecordWriter(str(theirs)) as writer:
        for r in real_records:
            writer.write(tfr.encode_record(r))
    assert theirs.read_bytes() == ours.read_bytes()


def test_failed_write_leaves_nothing(tmp_path, real_records):
    path = tmp_path / "out" / "x.tfrecord"

    def payloads():
        yield tfr.encode_record(real_records[0])
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        tfr.write_tfrecord(path, payloads())
    assert list((tmp_path / "out").iterdir()) == []
