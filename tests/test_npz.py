"""The reader of untrusted npz files: every refusal is one NpzError, decided from the headers."""

import io
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medsam_laptop.io.npz import MAX_HEADER_BYTES, ArrayHeader, NpzError, read_arrays, read_headers

MiB = 1 << 20


def npy_bytes(array: np.ndarray, version: tuple[int, int] | None = None) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, version=version)
    return buffer.getvalue()


def write_npz(path: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    """An npz whose members are given as raw bytes (so headers can be forged with a valid CRC)."""
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def forged_npy(header: str, version: tuple[int, int] = (1, 0), data: bytes = b"") -> bytes:
    text = header.encode("latin1")
    length = struct.pack("<H" if version == (1, 0) else "<I", len(text))
    return b"\x93NUMPY" + bytes(version) + length + text + data


def refusal(path: Path, keys=("a",), max_bytes: int = MiB) -> NpzError:
    with pytest.raises(NpzError) as error:
        read_arrays(path, keys, max_bytes=max_bytes)
    assert "\n" not in str(error.value)
    return error.value


def test_reads_what_numpy_writes(tmp_path):
    a, b = np.arange(12, dtype=np.int16).reshape(3, 4), np.asfortranarray(np.eye(3))
    np.savez_compressed(tmp_path / "x.npz", a=a, b=b)
    assert read_headers(tmp_path / "x.npz", ["b", "a"], max_bytes=MiB) == {
        "b": ArrayHeader((3, 3), np.dtype("<f8"), True),
        "a": ArrayHeader((3, 4), np.dtype("<i2"), False),
    }
    arrays = read_arrays(tmp_path / "x.npz", ["a", "b"], max_bytes=a.nbytes + b.nbytes)
    np.testing.assert_array_equal(arrays["a"], a)
    np.testing.assert_array_equal(arrays["b"], b)


@pytest.mark.parametrize("version, field", [((1, 0), "dose"), ((2, 0), "dose"), ((3, 0), "δόση")])
def test_npy_versions_1_2_and_3(tmp_path, version, field):
    # Version 3.0 exists for utf-8 header text, which only field names need.
    array = np.array([(1, 2.5), (3, 4.5)], dtype=[(field, "<u2"), ("t", "<f4")])
    path = write_npz(tmp_path / "x.npz", {"a.npy": npy_bytes(array, version)})
    assert read_headers(path, ["a"], max_bytes=MiB)["a"] == ArrayHeader((2,), array.dtype, False)
    np.testing.assert_array_equal(read_arrays(path, ["a"], max_bytes=MiB)["a"], array)


def test_other_npy_versions_are_refused(tmp_path):
    npy = bytearray(npy_bytes(np.zeros(3), (2, 0)))
    npy[6:8] = bytes((4, 0))
    error = refusal(write_npz(tmp_path / "x.npz", {"a.npy": bytes(npy)}))
    assert (error.reason, str(error)) == ("unreadable", "a uses npy format version 4.0, which is not supported")


def test_pickled_object_array_is_refused_without_unpickling(tmp_path):
    marker = tmp_path / "unpickled"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    np.savez(tmp_path / "x.npz", a=np.zeros(2), b=np.array([Payload()], dtype=object))
    for read in (read_headers, read_arrays):
        with pytest.raises(NpzError) as error:
            read(tmp_path / "x.npz", ["a", "b"], max_bytes=MiB)
        assert (error.value.reason, str(error.value)) == ("pickled", "b is a pickled object array, which is refused")
    assert not marker.exists()


def test_size_is_judged_from_the_header_before_inflating(tmp_path):
    # The header declares 1 TiB that the member does not hold: read, it would fail as truncated
    # (or exhaust memory); the limit refuses it first.
    npy = forged_npy("{'descr': '|u1', 'fortran_order': False, 'shape': (1048576, 1048576), }")
    error = refusal(write_npz(tmp_path / "x.npz", {"a.npy": npy}))
    assert (error.reason, str(error)) == ("too-large", "a of shape (1048576, 1048576) exceeds the 1 MiB limit")
    # A real, highly compressible array one byte over the limit.
    np.savez_compressed(tmp_path / "zeros.npz", a=np.zeros(MiB + 1, np.uint8))
    assert refusal(tmp_path / "zeros.npz").reason == "too-large"
    assert read_arrays(tmp_path / "zeros.npz", ["a"], max_bytes=MiB + 1)["a"].size == MiB + 1


def test_oversized_header_text_is_refused_unparsed(tmp_path):
    npy = forged_npy("{" + " " * MAX_HEADER_BYTES + "}", version=(2, 0))
    error = refusal(write_npz(tmp_path / "x.npz", {"a.npy": npy}))
    assert str(error) == f"a has a {MAX_HEADER_BYTES + 2}-byte npy header, over the {MAX_HEADER_BYTES}-byte limit"


@pytest.mark.parametrize(
    "header",
    [
        "{'descr': '<f8', 'fortran_order': False}",
        "{'descr': '<f8', 'fortran_order': False, 'shape': (-1,)}",
        "{'descr': 'no such type', 'fortran_order': False, 'shape': (2,)}",
        "__import__('os').system('true')",
    ],
)
def test_malformed_headers_are_refused(tmp_path, header):
    error = refusal(write_npz(tmp_path / "x.npz", {"a.npy": forged_npy(header)}))
    assert error.reason == "unreadable" and str(error).startswith("a has a malformed npy header")


def test_truncated_zip_is_refused(tmp_path):
    np.savez_compressed(tmp_path / "x.npz", a=np.random.default_rng(0).random(1000))
    (tmp_path / "x.npz").write_bytes((tmp_path / "x.npz").read_bytes()[:-200])
    error = refusal(tmp_path / "x.npz")
    assert error.reason == "unreadable" and str(error).startswith("not a readable npz file (BadZipFile:")


def test_truncated_array_data_is_refused(tmp_path):
    npy = npy_bytes(np.arange(100.0))
    error = refusal(write_npz(tmp_path / "x.npz", {"a.npy": npy[:-8]}))
    assert error.reason == "unreadable" and "EOF" in str(error)


def test_missing_key_is_refused_before_any_header(tmp_path):
    np.savez(tmp_path / "x.npz", imgs=np.array([None], dtype=object), extra=np.zeros(2))
    error = refusal(tmp_path / "x.npz", keys=("imgs", "boxes"))
    assert (error.reason, str(error)) == ("missing-key", "missing key(s) ['boxes']; found ['extra', 'imgs']")


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "cannot open (No such file or directory)"),
        (b"", "not an npz file (no zip header)"),
        (npy_bytes(np.zeros(3)), "not an npz file (no zip header)"),
    ],
)
def test_not_an_npz_file(tmp_path, content, message):
    path = tmp_path / "x.npz"
    if content is not None:
        path.write_bytes(content)
    error = refusal(path)
    assert (error.reason, str(error)) == ("unreadable", message)
    assert not isinstance(error, (ValueError, OSError))  # caught by name: never mistaken for a bug or an I/O error


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_corrupt_bytes_give_the_arrays_or_one_npz_error(tmp_path_factory, data):
    npy = bytearray(npy_bytes(np.arange(24, dtype=np.uint8).reshape(2, 3, 4)))
    for _ in range(data.draw(st.integers(1, 3))):
        npy[data.draw(st.integers(0, len(npy) - 1))] = data.draw(st.integers(0, 255))
    npy = npy[: data.draw(st.integers(0, len(npy)))]
    path = write_npz(tmp_path_factory.mktemp("fuzz") / "x.npz", {"a.npy": bytes(npy)})
    try:
        array = read_arrays(path, ["a"], max_bytes=1000)["a"]
    except NpzError as error:
        assert "\n" not in str(error)
    else:
        assert array.nbytes <= 1000
