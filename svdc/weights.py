"""safetensors I/O without torch: a validating reader (stdlib json header, zero-copy read-only mmap views), a writer
(atomic: temp file + rename), dtype conversion to float32, and LazyWeights (convert one tensor at a time on access;
file views for the C loader, which borrows or copies them: see LazyWeights.file_view).

File format (https://github.com/huggingface/safetensors): 8-byte little-endian header length N, N bytes of UTF-8
JSON {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}, then the data region;
offsets are relative to the start of the data region, tensors are stored C-order little-endian.
"""
from __future__ import annotations

import json
import math
import mmap
import os
import stat
import tempfile
from collections.abc import Callable, Iterator, Mapping

import numpy as np

from ._native import _C
from ._validate import check_path

CheckpointError = _C.CheckpointError

__all__ = [
    "CheckpointError",
    "DTYPES",
    "FLOAT_DTYPES",
    "SafetensorsFile",
    "LazyWeights",
    "to_float32",
    "load_file",
    "save_file",
]

# Loading checks every weight tensor for NaN/Inf (the C loader, one pass over the bits while it reads the tensor). Set
# SVDC_CHECK_WEIGHTS=0 in the environment, or svdc.weights.CHECK_FINITE = False, to skip it: then weights a CPU model
# borrows from the file are not read at load at all, but on first use (as a lazily mapped torch checkpoint is).
CHECK_FINITE = os.environ.get("SVDC_CHECK_WEIGHTS", "1").strip().lower() not in ("0", "false", "no", "off")

# safetensors dtype name -> NumPy storage dtype (little-endian). BF16 and float8 have no NumPy dtype: they are exposed
# as raw unsigned integers of the same width (to_float32 converts BF16; float8 is exposed as bytes only).
DTYPES: dict[str, np.dtype] = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U64": np.dtype("<u8"),
    "U32": np.dtype("<u4"),
    "U16": np.dtype("<u2"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
    "F8_E4M3": np.dtype("u1"),
    "F8_E5M2": np.dtype("u1"),
}
FLOAT_DTYPES = frozenset({"F64", "F32", "F16", "BF16"})

# NumPy dtype -> safetensors name for save_file (BF16 / float8 only through the explicit `dtypes=` argument).
_NUMPY_TO_ST = {
    np.dtype("float64"): "F64",
    np.dtype("float32"): "F32",
    np.dtype("float16"): "F16",
    np.dtype("int64"): "I64",
    np.dtype("int32"): "I32",
    np.dtype("int16"): "I16",
    np.dtype("int8"): "I8",
    np.dtype("uint64"): "U64",
    np.dtype("uint32"): "U32",
    np.dtype("uint16"): "U16",
    np.dtype("uint8"): "U8",
    np.dtype("bool"): "BOOL",
}

# The reference implementation refuses headers above 100 MB; real checkpoints have headers of well under 1 MB.
MAX_HEADER_BYTES = 100 * 1024 * 1024
_TENSOR_KEYS = frozenset({"dtype", "shape", "data_offsets"})


def _is_int(x) -> bool:
    """A JSON integer (bool is an int subclass in Python but `true` is not a valid shape entry or offset)."""
    return isinstance(x, int) and not isinstance(x, bool)


def _max_ndim() -> int:
    try:
        np.empty((1,) * 64)
        return 64  # NumPy 2
    except ValueError:
        return 32  # NumPy 1.x


_MAX_NDIM = _max_ndim()


def _nbytes(shape: list[int], itemsize: int, limit: int) -> int | None:
    """prod(shape) * itemsize, or None once it exceeds `limit` (stops early: a crafted shape of thousands of huge
    integers must not cost a multi-million-digit product)."""
    if 0 in shape:
        return 0
    n = itemsize
    for d in shape:
        n *= d
        if n > limit:
            return None
    return n


def _short(value) -> str:
    """repr() for an error message, cut short when a crafted header makes a value enormous."""
    if isinstance(value, list) and len(value) > 8:
        text = "[" + ", ".join(_short(v) for v in value[:8]) + f", ... ({len(value)} items)]"
    elif isinstance(value, (dict, list, str)) and len(value) > 200:
        text = repr(value[:200] if isinstance(value, (str, list)) else dict(list(value.items())[:8]))
    else:
        text = repr(value)
    return text if len(text) <= 240 else text[:240] + "..."


def _reject_duplicates(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {_short(k)}")
        out[k] = v
    return out


def _reject_constant(name):
    raise ValueError(f"non-standard JSON constant {name}")


class SafetensorsFile:
    """A validated, memory-mapped safetensors file.

    The whole header is checked when the file is opened (header length, UTF-8, JSON, every entry's dtype, shape and
    offsets, no overlaps, metadata str -> str) so that `f[name]` can never fail later except on a closed file.
    Tensors are zero-copy, read-only NumPy views of the mapping in their stored dtype (BF16 as uint16, float8 as
    uint8); each view keeps the mapping alive, so views stay valid after `close()` or after this object is dropped.

    Every problem, including a missing or unreadable file, raises svdc.CheckpointError (a ValueError) naming the
    file, the tensor or "header", and what is wrong. A missing file is deliberately not a FileNotFoundError: callers
    loading weights need to catch only one exception type, and the message carries the path and the OS error text.
    A file truncated on disk after opening is noticed when a tensor is next served (CheckpointError); views already
    handed out still read the mapping directly, so reading them after a truncation may raise SIGBUS (as any mmap).

    Compared with the reference reader (the `safetensors` package) this one is stricter in that it rejects duplicate
    JSON keys, unknown entry fields and NaN/Infinity literals, and deliberately more lenient in two harmless ways:
    unused bytes between or after tensors are allowed, and a JSON integer written `-0` reads as 0. Anything the
    reference reads, this reads identically (tests/unit/test_weights.py checks it on fuzzed files).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = check_path(path, "path")
        self._mmap: mmap.mmap | None = None
        self._closed = False
        self._last_range: tuple[int, int] | None = None  # file bytes of the tensor served last (see __getitem__)
        self._fd: int | None = None  # kept open to notice a file truncated on disk (see _check_not_truncated)
        self._size = 0
        try:
            # Refuse FIFOs, devices and folders before open(): opening a FIFO would block forever.
            if not stat.S_ISREG(os.stat(self.path).st_mode):
                raise CheckpointError(f"{self.path}: not a regular file")
            with open(self.path, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                if size < 8:
                    self._fail(None, f"file is {size} bytes, too short for the 8-byte header length")
                n = int.from_bytes(fh.read(8), "little")
                if n > size - 8:
                    self._fail(None, f"header length {n} runs past the end of the file ({size} bytes)")
                if n > MAX_HEADER_BYTES:
                    self._fail(None, f"header length {n} exceeds the {MAX_HEADER_BYTES}-byte limit")
                raw = fh.read(n)
                if len(raw) != n:
                    self._fail(None, f"read {len(raw)} of {n} header bytes (file changed while reading?)")
                self._data_start = 8 + n
                self._data_len = size - 8 - n
                self._entries, self.metadata = self._parse_header(raw)
                self._size = size
                if self._data_len > 0:
                    self._fd = os.dup(fh.fileno())
                    # ACCESS_READ makes every view read-only; the fd may be closed once the mapping exists.
                    self._mmap = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
                    if len(self._mmap) != size:
                        self._fail(None, f"file size changed while opening ({size} -> {len(self._mmap)} bytes)")
        except CheckpointError:
            self.close()
            raise
        except (OSError, ValueError, OverflowError, MemoryError) as e:
            self.close()
            raise CheckpointError(f"{self.path}: cannot read safetensors file: {e}") from e

    # -- validation -------------------------------------------------------------------------------------------------

    def _fail(self, where: str | None, what: str):
        """where: a tensor name, or None for the header as a whole."""
        where = "header" if where is None else f"tensor {_short(where)}"
        raise CheckpointError(f"{self.path}: {where}: {what}")

    def _parse_header(self, raw: bytes):
        try:
            text = raw.decode("utf-8", errors="strict")
        except UnicodeDecodeError as e:
            self._fail(None, f"not valid UTF-8 ({e.reason} at byte {e.start})")
        try:
            header = json.loads(text, object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant)
        except (ValueError, RecursionError) as e:
            # json.JSONDecodeError is a ValueError; so are our hooks' errors and over-long integer literals.
            self._fail(None, f"not valid JSON: {e}")
        if not isinstance(header, dict):
            self._fail(None, f"JSON must be an object, got {type(header).__name__}")

        metadata = header.pop("__metadata__", None)
        if metadata is None:
            metadata = {}
        elif not isinstance(metadata, dict):
            self._fail(None, f"__metadata__ must be an object of str -> str, got {type(metadata).__name__}")
        for k, v in metadata.items():
            if not isinstance(v, str):
                self._fail(None, f"__metadata__[{k!r}] must be a str, got {type(v).__name__}")

        entries: dict[str, tuple[str, tuple[int, ...], int, int]] = {}
        for name, info in header.items():
            if not isinstance(info, dict):
                self._fail(name, f"entry must be an object, got {type(info).__name__}")
            keys = set(info)
            if keys != _TENSOR_KEYS:
                missing, extra = sorted(_TENSOR_KEYS - keys), sorted(keys - _TENSOR_KEYS)
                self._fail(name, f"entry keys must be dtype, shape, data_offsets (missing {missing}, extra {extra})")
            dtype = info["dtype"]
            if not isinstance(dtype, str) or dtype not in DTYPES:
                self._fail(name, f"unknown dtype {_short(dtype)} (known: {', '.join(DTYPES)})")
            shape = info["shape"]
            if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape):
                self._fail(name, f"shape must be a list of non-negative integers, got {_short(shape)}")
            offsets = info["data_offsets"]
            if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_int(o) for o in offsets)):
                self._fail(name, f"data_offsets must be [begin, end] integers, got {_short(offsets)}")
            begin, end = offsets
            if begin < 0 or begin > end:
                self._fail(name, f"data_offsets [{begin}, {end}] must satisfy 0 <= begin <= end")
            if end > self._data_len:
                self._fail(name, f"data_offsets [{begin}, {end}] run past the data region ({self._data_len} bytes)")
            if len(shape) > _MAX_NDIM:
                self._fail(name, f"has {len(shape)} dimensions; NumPy supports at most {_MAX_NDIM}")
            nbytes = _nbytes(shape, DTYPES[dtype].itemsize, end - begin)
            if end - begin != nbytes:
                if nbytes is None and all(d < 2**64 for d in shape):  # ndim <= 64 here: the product is small
                    nbytes = math.prod(shape) * DTYPES[dtype].itemsize
                needs = f"{nbytes} bytes" if nbytes is not None else f"more than {end - begin} bytes"
                self._fail(name, f"holds {end - begin} bytes but shape {_short(shape)} of {dtype} needs {needs}")
            if nbytes == 0:
                try:  # zero-size shapes may still carry dimensions NumPy cannot represent, e.g. [0, 2**70]
                    np.empty(shape, dtype=DTYPES[dtype])
                except (ValueError, OverflowError, MemoryError) as e:
                    self._fail(name, f"shape {_short(shape)} is not representable: {e}")
            entries[name] = (dtype, tuple(shape), begin, end)

        # No two non-empty tensors may share bytes (a writer bug or a crafted file); zero-size tensors occupy nothing.
        spans = sorted((b, e, n) for n, (_, _, b, e) in entries.items() if e > b)
        for (b0, e0, n0), (b1, e1, n1) in zip(spans, spans[1:]):
            if b1 < e0:
                self._fail(n1, f"bytes [{b1}, {e1}) overlap tensor {n0!r} at [{b0}, {e0})")
        return entries, metadata

    # -- mapping-like access ----------------------------------------------------------------------------------------

    def keys(self) -> list[str]:
        """Tensor names in file order (sorted by data offset, then name)."""
        return sorted(self._entries, key=lambda n: (self._entries[n][2], n))

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __contains__(self, name) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def _entry(self, name: str):
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise KeyError(f"{self.path}: no tensor named {name!r}") from None

    def dtype_of(self, name: str) -> str:
        """The stored safetensors dtype name ("F32", "BF16", ...)."""
        return self._entry(name)[0]

    def shape_of(self, name: str) -> tuple[int, ...]:
        return self._entry(name)[1]

    def __getitem__(self, name: str) -> np.ndarray:
        """Zero-copy read-only view in the stored dtype (BF16 as uint16, float8 as uint8). Serving a tensor drops the
        pages of the one served before from this process (see _drop_resident_pages): callers that copy one tensor
        at a time then hold one tensor of the file, not all of it."""
        view = self.view(name)
        if view.size:
            _, _, begin, end = self._entries[name]
            self._drop_resident_pages(self._last_range)
            self._last_range = (self._data_start + begin, self._data_start + end)
        return view

    def view(self, name: str) -> np.ndarray:
        """Like f[name], without dropping any pages: for views kept for the life of a model (LazyWeights.file_view).
        The mapping is read-only and shared, so the view reads the file's pages in the page cache; they count in
        the process's resident memory once touched. Do not rewrite the file in place while such views live (SIGBUS,
        as with any mapping; a replacement written to a new file and renamed over it is safe)."""
        dtype, shape, begin, end = self._entry(name)
        if self._closed:
            raise CheckpointError(f"{self.path}: tensor {name!r}: the file has been closed")
        np_dtype = DTYPES[dtype]
        if end == begin:
            out = np.empty(shape, dtype=np_dtype)  # zero-size: nothing to map
            out.flags.writeable = False
            return out
        self._check_not_truncated(name, end)
        count = (end - begin) // np_dtype.itemsize
        flat = np.frombuffer(self._mmap, dtype=np_dtype, count=count, offset=self._data_start + begin)
        return flat.reshape(shape)

    def _check_not_truncated(self, name: str, end: int) -> None:
        """Reading mapped pages beyond the end of a file truncated after it was opened kills the process with
        SIGBUS; the size is therefore checked before each tensor is served (a truncation racing with the copy that
        follows cannot be caught from Python: do not rewrite a checkpoint while it is being loaded)."""
        if self._fd is None:
            return
        now = os.fstat(self._fd).st_size
        if now < self._data_start + end:
            self._fail(name, f"the file was truncated on disk after it was opened ({self._size} -> {now} bytes); "
                             f"its data is gone (reload it once it is complete)")

    def _drop_resident_pages(self, byte_range: tuple[int, int] | None) -> None:
        """Unmaps the pages of the previously served tensor from this process (MADV_DONTNEED). Loading copies each
        tensor into svdc's own weight block, so without this the touched file pages would double the loader's
        resident memory. It changes no data: the mapping is a read-only shared file mapping, so a later access to
        an old view faults the pages back in from the page cache."""
        if byte_range is None or self._mmap is None or not hasattr(mmap, "MADV_DONTNEED"):
            return
        start = byte_range[0] - byte_range[0] % mmap.PAGESIZE
        try:
            self._mmap.madvise(mmap.MADV_DONTNEED, start, byte_range[1] - start)
        except (OSError, ValueError):
            pass  # advice only

    def get_float32(self, name: str) -> np.ndarray:
        """The tensor converted to float32 (C-contiguous; zero-copy for aligned F32)."""
        return to_float32(self[name], self.dtype_of(name), what=f"{self.path}: tensor {name!r}")

    def close(self):
        """Releases this object's mapping. Views handed out earlier keep their own reference and stay valid."""
        self._closed = True
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
        mm, self._mmap = self._mmap, None
        if mm is not None:
            try:
                mm.close()
            except BufferError:
                pass  # views still export the buffer; the mapping is unmapped when the last view goes away

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        state = "closed" if self._closed else f"{len(self._entries)} tensors"
        return f"SafetensorsFile({self.path!r}, {state})"


def to_float32(array: np.ndarray, dtype_str: str, what: str = "array") -> np.ndarray:
    """Converts a tensor stored as safetensors dtype `dtype_str` to a C-contiguous float32 array.

    F32: returned as is when already aligned C-contiguous float32 (zero-copy, possibly read-only), else copied.
    F16, F64: converted (F64 values outside float32's range raise CheckpointError rather than become inf).
    BF16 (stored as uint16): the 16 bits become the high half of a float32, which is exact.
    Any other dtype, or an array whose NumPy dtype does not match the storage of `dtype_str`, raises CheckpointError.
    """
    if not isinstance(array, np.ndarray):
        raise CheckpointError(f"{what}: expected a numpy.ndarray, got {type(array).__name__}")
    if not isinstance(dtype_str, str) or dtype_str not in FLOAT_DTYPES:
        raise CheckpointError(f"{what}: cannot convert dtype {dtype_str!r} to float32 "
                              f"(expected one of F32, F16, BF16, F64)")
    storage = DTYPES[dtype_str]
    if array.dtype.newbyteorder("=") != storage.newbyteorder("="):
        raise CheckpointError(f"{what}: dtype {dtype_str} must be stored as {storage.name}, got {array.dtype}")
    if dtype_str == "BF16":
        # bf16 is the top half of the float32 bit pattern; the dtype change makes a new C-contiguous array
        bits = np.asarray(array, dtype=np.uint32, order="C")
        bits <<= 16
        return bits.view(np.float32)
    if array.dtype == np.float32 and array.flags.c_contiguous and array.flags.aligned:
        return array
    # np.array copies (so the result is aligned too); not ascontiguousarray, which turns 0-d arrays into 1-d
    with np.errstate(over="ignore"):  # F64 overflow is reported below, by count
        out = np.array(array, dtype=np.float32, order="C")
    if dtype_str == "F64":
        # Values beyond float32's range would silently become inf and poison every result that uses them.
        overflow = np.isinf(out) & np.isfinite(array)
        if overflow.any():
            raise CheckpointError(f"{what}: {int(overflow.sum())} F64 values are outside the float32 range "
                                  f"(|x| > {float(np.finfo(np.float32).max):.4g})")
    return out


def load_file(path: str | os.PathLike, dtype: str | None = None) -> dict[str, np.ndarray]:
    """Reads every tensor into a new writable array (a copy; the file is closed on return).

    dtype=None keeps the stored dtype (BF16 as uint16, float8 as uint8). dtype="float32" converts every floating
    tensor (F64/F32/F16/BF16) to float32 and leaves integer, bool and float8 tensors in their stored dtype.
    """
    if dtype not in (None, "float32"):
        raise ValueError(f"load_file: dtype must be None or 'float32', got {dtype!r}")
    with SafetensorsFile(path) as f:
        out = {}
        for name in f.keys():
            if dtype == "float32" and f.dtype_of(name) in FLOAT_DTYPES:
                out[name] = np.array(f.get_float32(name), dtype=np.float32, copy=True)
            else:
                out[name] = np.array(f[name], copy=True)
        return out


def save_file(
    tensors: Mapping[str, np.ndarray],
    path: str | os.PathLike,
    metadata: Mapping[str, str] | None = None,
    dtypes: Mapping[str, str] | None = None,
) -> None:
    """Writes a safetensors file atomically (temp file in the same folder, then rename; nothing is left behind on
    failure). Tensors are stored under sorted names, C-order little-endian, header padded with spaces to 8 bytes.

    The safetensors dtype comes from the NumPy dtype (float64/32/16, int64/32/16/8, uint64/32/16/8, bool).
    `dtypes={"name": "BF16"}` stores a uint16 array as raw bfloat16 bits ("F8_E4M3"/"F8_E5M2" for uint8 arrays).
    Bad arguments raise TypeError (wrong types) or svdc.CheckpointError (a ValueError) naming the tensor.
    """
    path = check_path(path, "path")
    if not isinstance(tensors, Mapping):
        raise TypeError(f"save_file: tensors must be a mapping of str -> numpy.ndarray, got {type(tensors).__name__}")
    dtypes = dict(dtypes or {})
    meta = {} if metadata is None else dict(metadata)
    for k, v in meta.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise TypeError(f"save_file: metadata must map str -> str, got {k!r}: {type(v).__name__}")
    for name in dtypes:
        if name not in tensors:
            raise CheckpointError(f"save_file: dtypes names tensor {name!r}, which is not in tensors")

    header: dict = {}
    arrays = []
    offset = 0
    for name in sorted(tensors, key=lambda k: (not isinstance(k, str), str(k))):
        if not isinstance(name, str):
            raise TypeError(f"save_file: tensor names must be str, got {name!r}")
        if name == "__metadata__":
            raise CheckpointError("save_file: '__metadata__' is reserved and cannot name a tensor")
        a = tensors[name]
        if not isinstance(a, np.ndarray):
            raise TypeError(f"save_file: tensor {name!r} must be a numpy.ndarray, got {type(a).__name__}")
        st = dtypes.get(name)
        if st is None:
            st = _NUMPY_TO_ST.get(a.dtype.newbyteorder("="))
            if st is None:
                raise CheckpointError(f"save_file: tensor {name!r} has unsupported dtype {a.dtype}")
        elif st not in DTYPES:
            raise CheckpointError(f"save_file: tensor {name!r}: unknown safetensors dtype {st!r}")
        elif a.dtype.newbyteorder("=") != DTYPES[st].newbyteorder("="):
            raise CheckpointError(f"save_file: tensor {name!r}: {st} must be given as {DTYPES[st].name}, got {a.dtype}")
        a = np.asarray(a, dtype=DTYPES[st], order="C")  # little-endian C order; no copy when it already is
        header[name] = {"dtype": st, "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        arrays.append(a)
        offset += a.nbytes
    if meta:
        header = {"__metadata__": meta, **header}
    try:
        blob = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as e:
        raise CheckpointError(f"save_file: a tensor name or metadata entry is not encodable as UTF-8: {e}") from e
    blob += b" " * (-len(blob) % 8)

    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(len(blob).to_bytes(8, "little"))
            fh.write(blob)
            for a in arrays:
                if a.nbytes:
                    fh.write(memoryview(a.reshape(-1)).cast("B"))
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file normal permissions
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


class LazyWeights(Mapping):
    """A read-only mapping name -> float32 C-contiguous ndarray, each produced on access by a zero-argument callable,
    so a multi-GB checkpoint is converted one tensor at a time. Nothing is cached: each access calls the loader.

    A loader may return any floating ndarray (float16/float64 are converted explicitly to float32); a non-floating
    result raises CheckpointError, because silently casting e.g. raw bf16 bits would produce garbage weights.
    `shapes` (optional) records each tensor's shape so callers can check shapes without loading.
    Values may be read-only zero-copy views of a memory-mapped file (aligned F32 tensors): copy before modifying.

    `files` (optional) names the values that are a file's tensor as stored, only renamed (and reshaped to
    shapes[name] when given): name -> (SafetensorsFile, key). For those, file_view(name) gives the C loader the
    stored bytes, which it borrows without a copy (CPU, same dtype) or converts itself: no float32 copy in between.
    """

    def __init__(self, loaders: Mapping[str, Callable[[], np.ndarray]],
                 shapes: Mapping[str, tuple[int, ...]] | None = None,
                 files: Mapping[str, tuple["SafetensorsFile", str]] | None = None):
        self._loaders = dict(loaders)
        for name, fn in self._loaders.items():
            if not isinstance(name, str):
                raise TypeError(f"LazyWeights: names must be str, got {name!r}")
            if not callable(fn):
                raise TypeError(f"LazyWeights: loader for {name!r} must be callable, got {type(fn).__name__}")
        self._shapes = {k: tuple(v) for k, v in (shapes or {}).items() if k in self._loaders}
        self._files = {k: v for k, v in (files or {}).items() if k in self._loaders}

    def file_view(self, name: str) -> tuple[np.ndarray, str] | None:
        """(zero-copy view of the stored tensor, its safetensors dtype) for a value that is a file's F32, F16 or BF16
        tensor as stored (BF16 as uint16), reshaped to the recorded shape; None for any other value (computed,
        converted from F64, empty). The view lies in the file's read-only shared mapping and keeps it alive."""
        source = self._files.get(name)
        if source is None:
            return None
        sf, key = source
        dtype = sf.dtype_of(key)
        if dtype not in ("F32", "F16", "BF16"):
            return None
        view = sf.view(key)
        if view.size == 0:
            return None
        shape = self._shapes.get(name)
        if shape is not None and shape != view.shape and math.prod(shape) == view.size:
            view = view.reshape(shape)
        return view, dtype

    def __getitem__(self, name: str) -> np.ndarray:
        a = self._loaders[name]()
        if not isinstance(a, np.ndarray) or a.dtype.kind != "f":
            got = a.dtype if isinstance(a, np.ndarray) else type(a).__name__
            raise CheckpointError(f"LazyWeights: loader for {name!r} must return a floating ndarray, got {got}")
        if a.dtype != np.float32 or not a.flags.c_contiguous or not a.flags.aligned:
            a = np.array(a, dtype=np.float32, order="C")
        return a

    def __iter__(self) -> Iterator[str]:
        return iter(self._loaders)

    def __len__(self) -> int:
        return len(self._loaders)

    def __contains__(self, name) -> bool:
        return name in self._loaders

    def shape_of(self, name: str) -> tuple[int, ...] | None:
        """The tensor's shape when known without loading it (None otherwise)."""
        if name not in self._loaders:
            raise KeyError(name)
        return self._shapes.get(name)

    def __repr__(self):
        return f"LazyWeights({len(self)} tensors)"

    @classmethod
    def from_file(cls, sf: SafetensorsFile, prefix: str = "",
                  rename: Mapping[str, str] | Callable[[str], str | None] | None = None) -> "LazyWeights":
        """Every tensor of `sf` whose name starts with `prefix`, under its name with the prefix removed, then passed
        through `rename`: a mapping (names it lacks are kept unchanged) or a callable (returning None drops the
        tensor). Values are converted to float32 on access; non-floating tensors raise CheckpointError on access.
        Two tensors renamed to the same name raise CheckpointError."""
        if rename is None:
            mapper = lambda n: n  # noqa: E731
        elif isinstance(rename, Mapping):
            mapper = lambda n: rename.get(n, n)  # noqa: E731
        elif callable(rename):
            mapper = rename
        else:
            raise TypeError(f"LazyWeights.from_file: rename must be a mapping or a callable, "
                            f"got {type(rename).__name__}")
        loaders: dict[str, Callable[[], np.ndarray]] = {}
        shapes: dict[str, tuple[int, ...]] = {}
        sources: dict[str, str] = {}
        for name in sf.keys():
            if not name.startswith(prefix):
                continue
            new = mapper(name[len(prefix):])
            if new is None:
                continue
            if new in loaders:
                raise CheckpointError(f"{sf.path}: tensors {sources[new]!r} and {name!r} both map to {new!r}")
            loaders[new] = (lambda n=name: sf.get_float32(n))
            shapes[new] = sf.shape_of(name)
            sources[new] = name
        return cls(loaders, shapes, {new: (sf, name) for new, name in sources.items()})

    @classmethod
    def from_names(cls, sf: SafetensorsFile, names: Mapping[str, str]) -> "LazyWeights":
        """The tensors names[new] of `sf` under the names `new` (a renaming; every value a file view)."""
        loaders = {new: (lambda k=key: sf.get_float32(k)) for new, key in names.items()}
        return cls(loaders, {new: sf.shape_of(key) for new, key in names.items()},
                   {new: (sf, key) for new, key in names.items()})
