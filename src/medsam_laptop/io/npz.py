"""Reading npz files that come from outside (cases, segmentations) without trusting them.

Every requested array's npy header is read and checked before any data is decompressed: the zip
signature, the key's presence, the npy format version (1.0, 2.0 and 3.0), the dtype (an object
array is a pickle: refused, never unpickled) and the size the header declares. Every problem is
one ``NpzError`` whose message is a single line.
"""

import ast
import math
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

ZIP_SIGNATURE = b"PK\x03\x04"
MAX_HEADER_BYTES = 10_000  # numpy's own limit on the header text it will parse
# npy version -> (struct format of the header length, encoding of the header text)
HEADER_FORMATS = {(1, 0): ("<H", "latin1"), (2, 0): ("<I", "latin1"), (3, 0): ("<I", "utf8")}

Reason = Literal["unreadable", "missing-key", "pickled", "too-large"]


class NpzError(Exception):
    """An npz file, or one of its arrays, that is refused. The message is one line.

    ``reason`` says why in a word: "unreadable" (cannot be opened, not a zip, corrupt, an npy
    version other than 1.0 / 2.0 / 3.0, a malformed header), "missing-key", "pickled" (an object
    array) or "too-large" (the header declares more than the caller's limit).
    """

    def __init__(self, message: str, reason: Reason = "unreadable"):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class ArrayHeader:
    """What an npy header declares about its array."""

    shape: tuple[int, ...]
    dtype: np.dtype
    fortran_order: bool

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize


def read_headers(path: Path, keys: Sequence[str], *, max_bytes: int) -> dict[str, ArrayHeader]:
    """The checked headers of ``keys`` in the npz file ``path``; no array data is decompressed.

    Args:
        path: the npz file.
        keys: array names, without ".npy".
        max_bytes: the largest array (shape x itemsize) accepted, per key.

    Raises:
        NpzError: a missing key, or any key's array that is pickled, too large or unreadable.
    """
    with _open_npz(path, keys) as (archive, members):
        return {key: _checked_header(archive, members[key], key, max_bytes) for key in keys}


def read_arrays(
    path: Path, keys: Sequence[str], *, max_bytes: int, check: Callable[[str, ArrayHeader], None] | None = None
) -> dict[str, np.ndarray]:
    """The arrays ``keys`` of the npz file ``path``, all headers checked before any data is read.

    Arguments and errors as for ``read_headers``; truncated or corrupt data is an NpzError too.
    ``check(key, header)``, if given, runs on every header before any data is read: the caller's own
    checks (dtype, shape), whose exceptions pass through.
    """
    with _open_npz(path, keys) as (archive, members):
        for key in keys:
            header = _checked_header(archive, members[key], key, max_bytes)
            if check is not None:
                check(key, header)
        arrays = {}
        for key in keys:
            with archive.open(members[key]) as stream:
                arrays[key] = np.lib.format.read_array(stream, allow_pickle=False)
        return arrays


@contextmanager
def _open_npz(path: Path, keys: Sequence[str]) -> Iterator[tuple[zipfile.ZipFile, dict[str, str]]]:
    """The open archive and the member name of each key. Whatever the with-block raises from
    reading the archive (zip, zlib, npy errors) leaves it as an NpzError."""
    try:
        with open(path, "rb") as f:
            signature = f.read(len(ZIP_SIGNATURE))
    except OSError as err:
        raise NpzError(f"cannot open ({err.strerror or err})") from None
    if signature != ZIP_SIGNATURE:
        raise NpzError("not an npz file (no zip header)")
    try:
        with zipfile.ZipFile(path) as archive:
            members = {name.removesuffix(".npy"): name for name in archive.namelist()}
            missing = sorted(set(keys) - set(members))
            if missing:
                raise NpzError(f"missing key(s) {missing}; found {sorted(members)}", "missing-key")
            yield archive, {key: members[key] for key in keys}
    except NpzError:
        raise
    except (OSError, EOFError, RuntimeError, ValueError, struct.error, zlib.error, zipfile.BadZipFile) as err:
        # RuntimeError: an encrypted member, or a compression method zipfile does not implement.
        raise NpzError(f"not a readable npz file ({type(err).__name__}: {err})") from None


def _checked_header(archive: zipfile.ZipFile, member: str, key: str, max_bytes: int) -> ArrayHeader:
    with archive.open(member) as stream:
        header = _read_header(stream, key)
    if header.dtype.hasobject:
        raise NpzError(f"{key} is a pickled object array, which is refused", "pickled")
    if header.nbytes > max_bytes:
        raise NpzError(f"{key} of shape {header.shape} exceeds the {_size(max_bytes)} limit", "too-large")
    return header


def _read_header(stream, key: str) -> ArrayHeader:
    """Parses the npy header at the start of ``stream`` (the layout numpy documents in
    numpy.lib.format), here rather than with numpy's readers, which exist only for 1.0 and 2.0."""
    major, minor = np.lib.format.read_magic(stream)
    if (major, minor) not in HEADER_FORMATS:
        raise NpzError(f"{key} uses npy format version {major}.{minor}, which is not supported")
    length_format, encoding = HEADER_FORMATS[major, minor]
    (length,) = struct.unpack(length_format, stream.read(struct.calcsize(length_format)))
    if length > MAX_HEADER_BYTES:
        raise NpzError(f"{key} has a {length}-byte npy header, over the {MAX_HEADER_BYTES}-byte limit")
    try:
        fields = ast.literal_eval(stream.read(length).decode(encoding))
        if not isinstance(fields, dict) or fields.keys() != {"descr", "fortran_order", "shape"}:
            raise ValueError("not a dict of descr, fortran_order and shape")
        shape = fields["shape"]
        if not isinstance(shape, tuple) or not all(type(n) is int and n >= 0 for n in shape):
            raise ValueError(f"shape {shape!r}")
        if not isinstance(fields["fortran_order"], bool):
            raise ValueError(f"fortran_order {fields['fortran_order']!r}")
        dtype = np.lib.format.descr_to_dtype(fields["descr"])
    except (SyntaxError, ValueError, TypeError, RecursionError) as err:
        raise NpzError(f"{key} has a malformed npy header ({type(err).__name__}: {err})") from None
    return ArrayHeader(shape, dtype, fields["fortran_order"])


def _size(n_bytes: int) -> str:
    return f"{n_bytes >> 20} MiB" if n_bytes and n_bytes % (1 << 20) == 0 else f"{n_bytes} bytes"
