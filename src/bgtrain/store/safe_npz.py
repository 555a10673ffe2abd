"""Read ``.npz`` files that may be hostile: headers first, sizes checked, never unpickle.

``np.load`` would allocate whatever a ``.npy`` header declares before reading a byte of
data; here every member's header is read and checked against the limits first, so a
small file that declares a huge array is refused before anything large is allocated.
Directory entries are inspected with ``lstat`` and never followed (guarantee 7).
"""

from __future__ import annotations

import io
import math
import os
import re
import stat
import threading
import zipfile
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import IO, NamedTuple

import numpy as np
from numpy.lib import format as npy_format

from bgtrain.errors import InvalidEpisodeError

MiB = 1024 * 1024
ZIP_LOCAL_HEADER_MAGIC = b"PK\x03\x04"


@dataclass(frozen=True)
class SizeLimits:
    """How large a file may be. A game episode is usually well under 1 MiB."""

    #: Largest file accepted on disk, in bytes.
    max_file_bytes: int = 64 * MiB
    #: Largest total of the arrays once unpacked, in bytes (guards against zip bombs).
    max_unpacked_bytes: int = 256 * MiB


DEFAULT_LIMITS = SizeLimits()


class MemberHeader(NamedTuple):
    key: str
    shape: tuple[int, ...]
    dtype: np.dtype
    fortran_order: bool
    #: Where the array data starts in the member (after magic and header).
    data_offset: int = 0

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize


def human_bytes(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    if n < MiB:
        return f"{n / 1024:.1f} KiB"
    return f"{n / MiB:.1f} MiB"


def check_entry(path: Path, limits: SizeLimits = DEFAULT_LIMITS) -> os.stat_result:
    """``lstat`` a directory entry and refuse anything but a regular file within the limit."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise InvalidEpisodeError("file not found", path) from None
    if stat.S_ISLNK(st.st_mode):
        raise InvalidEpisodeError("is a symbolic link; bgtrain never follows links", path)
    if stat.S_ISDIR(st.st_mode):
        raise InvalidEpisodeError("is a folder, not a file", path)
    if not stat.S_ISREG(st.st_mode):
        raise InvalidEpisodeError("is not a regular file", path)
    if st.st_size == 0:
        raise InvalidEpisodeError("empty file (0 bytes)", path)
    if st.st_size > limits.max_file_bytes:
        raise InvalidEpisodeError(
            f"file is {human_bytes(st.st_size)}, over the size limit of "
            f"{human_bytes(limits.max_file_bytes)}",
            path,
        )
    return st


def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        with open(path, "rb") as f:
            starts_like_zip = f.read(4) == ZIP_LOCAL_HEADER_MAGIC
        if starts_like_zip:
            raise InvalidEpisodeError(
                "truncated or damaged zip archive", path, error=str(exc)
            ) from None
        raise InvalidEpisodeError("not an .npz file (not a zip archive)", path) from None


def _damaged(key: str, exc: BaseException, path: Path) -> InvalidEpisodeError:
    return InvalidEpisodeError(
        f"truncated or damaged zip archive ('{key}': {exc})", path, error=str(exc)
    )


#: numpy parses a header with ast.literal_eval, and CPython 3.11 keeps the AST builder's
#: recursion depth per interpreter, not per thread: two threads parsing at once can raise
#: "SystemError: AST constructor recursion depth mismatch" (python/cpython#106905). The
#: learner's loader threads and its own thread read headers at the same time.
_HEADER_PARSE = threading.Lock()


#: The header np.save writes (keys sorted, a plain dtype): read without literal_eval.
_PLAIN_HEADER = re.compile(
    r"\{'descr': '([<>|=]?[a-zA-Z]\d*)', 'fortran_order': (True|False), "
    r"'shape': \((|\d+,|\d+(?:, \d+)+)\), \} *\n"
)
#: numpy's own limit on a header's length (np.lib.format's max_header_size).
_MAX_HEADER_BYTES = 10_000


def _parse_header(f: IO[bytes], version: tuple[int, int]) -> tuple[tuple[int, ...], bool, np.dtype]:
    """Shape, Fortran order and dtype of the ``.npy`` header ``f`` is at (just past the
    magic). The header np.save writes is matched as text; anything else goes to numpy's
    own parser, so what is accepted and what it means are numpy's (the fast path matches
    a strict subset of what numpy's parser reads, with the same result)."""
    width = 2 if version == (1, 0) else 4  # bytes of the header's length field
    size_field = f.read(width)
    if len(size_field) < width:
        raise EOFError("the .npy header is cut short")
    size = int.from_bytes(size_field, "little")
    raw = f.read(min(size, _MAX_HEADER_BYTES + 1))
    match = _PLAIN_HEADER.fullmatch(raw.decode("latin1")) if len(raw) == size else None
    if match is not None:
        descr, fortran, dims = match.groups()
        shape = tuple(int(d) for d in dims.split(",") if d.strip())
        return shape, fortran == "True", np.dtype(descr)
    again = io.BytesIO(size_field + raw)
    with _HEADER_PARSE:
        if version == (1, 0):
            return npy_format.read_array_header_1_0(again)
        return npy_format.read_array_header_2_0(again)


def _read_header(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path, members: ExitStack
) -> tuple[MemberHeader, IO[bytes]]:
    """The member's header, and the member left open just past it (closed with
    ``members``), so its data is read without opening and decompressing it again."""
    key = info.filename[: -len(".npy")]
    try:
        f = members.enter_context(zf.open(info))
        version = npy_format.read_magic(f)
        if version not in ((1, 0), (2, 0)):
            raise ValueError(f".npy format version {version} is not supported")
        shape, fortran, dtype = _parse_header(f, version)
        data_offset = f.tell()
    except zipfile.BadZipFile as exc:
        raise _damaged(key, exc, path) from None
    except (ValueError, OSError, EOFError) as exc:
        raise InvalidEpisodeError(
            f"'{key}' is not a valid .npy array ({exc})", path, error=str(exc)
        ) from None
    if dtype.hasobject:
        raise InvalidEpisodeError(
            f"'{key}' holds Python objects (dtype object); bgtrain never unpickles", path
        )
    return MemberHeader(key, tuple(shape), dtype, fortran, data_offset), f


def read_headers(path: Path, limits: SizeLimits = DEFAULT_LIMITS) -> dict[str, MemberHeader]:
    """Every member's ``.npy`` header, checked against ``limits``; no array data is read."""
    check_entry(path, limits)
    with _open_zip(path) as zf, ExitStack() as members:
        return _headers_of(zf, path, limits, members)[0]


def _headers_of(
    zf: zipfile.ZipFile, path: Path, limits: SizeLimits, members: ExitStack
) -> tuple[dict[str, MemberHeader], dict[str, IO[bytes]]]:
    """Every header, checked, and each member open where its data starts."""
    infos = zf.infolist()
    for info in infos:
        if not info.filename.endswith(".npy") or info.is_dir():
            raise InvalidEpisodeError(f"zip member '{info.filename}' is not a .npy array", path)
    declared = sum(info.file_size for info in infos)
    if declared > limits.max_unpacked_bytes:
        raise InvalidEpisodeError(
            f"unpacks to {human_bytes(declared)}, over the size limit of "
            f"{human_bytes(limits.max_unpacked_bytes)}",
            path,
        )
    headers: dict[str, MemberHeader] = {}
    opened: dict[str, IO[bytes]] = {}
    for info in infos:
        header, f = _read_header(zf, info, path, members)
        headers[header.key], opened[header.key] = header, f
    total = sum(h.nbytes for h in headers.values())
    if total > limits.max_unpacked_bytes:
        raise InvalidEpisodeError(
            f"arrays declare {human_bytes(total)}, over the size limit of "
            f"{human_bytes(limits.max_unpacked_bytes)}",
            path,
        )
    return headers, opened


def _read_member(f: IO[bytes], header: MemberHeader, path: Path) -> np.ndarray:
    """The array's data, from ``f`` open just past its (checked) header."""
    try:
        count = math.prod(header.shape)
        flat = np.empty(count, dtype=header.dtype)
        view = memoryview(flat).cast("B") if flat.nbytes else memoryview(b"")
        filled = 0
        while filled < len(view):
            n = f.readinto(view[filled:])
            if not n:
                break
            filled += n
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise _damaged(header.key, exc, path) from None
    if filled < len(view):
        raise InvalidEpisodeError(
            f"'{header.key}' has {filled} of the {len(view)} data bytes its header declares",
            path,
        )
    if header.fortran_order:
        return flat.reshape(header.shape[::-1]).transpose()
    return flat.reshape(header.shape)


def load_npz(
    path: Path,
    limits: SizeLimits = DEFAULT_LIMITS,
    keys: Iterable[str] | None = None,
) -> tuple[dict[str, MemberHeader], dict[str, np.ndarray]]:
    """Check every header, then read the arrays named in ``keys`` (all when ``None``)."""
    check_entry(path, limits)
    with _open_zip(path) as zf, ExitStack() as members:
        headers, opened = _headers_of(zf, path, limits, members)
        wanted = headers.keys() if keys is None else [k for k in keys if k in headers]
        arrays = {key: _read_member(opened[key], headers[key], path) for key in wanted}
    return headers, arrays
