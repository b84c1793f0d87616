"""Memory-mapped, validating reader for single safetensors files.

Format: 8-byte little-endian header length ``n``, ``n`` bytes of JSON ``{name: {dtype, shape, data_offsets}}`` (plus an
optional ``__metadata__``), then the raw tensor bytes; ``data_offsets`` are relative to the end of the header.

Why our own reader rather than ``safetensors.safe_open``: safetensors 0.8 does hand out mmap-backed tensors, but its
errors for a damaged file are generic and name neither file nor tensor, while we must report both. Parsing the header
is a few lines, and mapping the file ourselves keeps the zero-copy behaviour independent of the safetensors version.

The mapping is ``mmap.ACCESS_COPY`` (MAP_PRIVATE): pages are backed by the file (page cache, no anonymous memory)
until someone writes to a tensor; such a write then copies just that page and never reaches the file. A truly
read-only mapping (``ACCESS_READ``) would turn an accidental in-place op into a SIGSEGV with no Python traceback.
"""

from __future__ import annotations

import itertools
import logging
import math
import mmap
import os
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gpt_oss_desktop.engine.errors import CheckpointError, UnsupportedCheckpointError
from gpt_oss_desktop.engine.input_files import describe_os_error, open_regular, parse_json

logger = logging.getLogger(__name__)

# safetensors dtype code -> torch dtype (only those torch can represent)
SAFETENSORS_DTYPES: dict[str, torch.dtype] = {
    "BOOL": torch.bool,
    "U8": torch.uint8,
    "I8": torch.int8,
    "I16": torch.int16,
    "U16": torch.uint16,
    "I32": torch.int32,
    "U32": torch.uint32,
    "I64": torch.int64,
    "U64": torch.uint64,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "F32": torch.float32,
    "F64": torch.float64,
    "F8_E4M3": torch.float8_e4m3fn,
    "F8_E5M2": torch.float8_e5m2,
}
TORCH_TO_SAFETENSORS: dict[torch.dtype, str] = {v: k for k, v in SAFETENSORS_DTYPES.items()}

# Limits far above any real gpt-oss file (gpt-oss-120b: ~700 tensors, a ~100 KB header), checked before the header
# is parsed: a 100 MB header of 1.7 M zero-size entries once took 38 s and 1.8 GB to reject.
MAX_HEADER_BYTES = 16 * 1024 * 1024
MAX_HEADER_ENTRIES = 65536
# A record has 5 strings and ~10 separators ("name":{"dtype":"BF16","shape":[a,b,c],"data_offsets":[x,y]});
# this bounds the whole header's count of each.
MAX_HEADER_VALUES = 12 * MAX_HEADER_ENTRIES
MAX_RANK = 8  # gpt-oss tensors have at most 4 dimensions


@dataclass(frozen=True, slots=True)
class TensorEntry:
    """One tensor's header record; ``begin``/``end`` are absolute file offsets."""

    name: str
    dtype: torch.dtype
    shape: tuple[int, ...]
    begin: int
    end: int

    @property
    def nbytes(self) -> int:
        return self.end - self.begin


class SafetensorsFile:
    """A validated safetensors header plus a lazily created private mapping of the file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[str, TensorEntry]
        self.metadata: dict[str, str]
        self.file_size: int
        self._mmap: mmap.mmap | None = None
        self._read_header()

    # ------------------------------------------------------------------------------------------------ header
    def _read_header(self) -> None:
        path = self.path
        try:
            with open_regular(path) as fh:  # never a FIFO or device: open() on a FIFO would hang
                size = os.fstat(fh.fileno()).st_size
                prefix = fh.read(8)
                if len(prefix) < 8:
                    raise CheckpointError(f"file is {size} bytes, too short to be safetensors (truncated?)", path)
                (header_len,) = struct.unpack("<Q", prefix)
                if header_len > size - 8:
                    raise CheckpointError(
                        f"header length {header_len} runs past the end of the {size}-byte file "
                        "(truncated, or not a safetensors file)",
                        path,
                    )
                if header_len > MAX_HEADER_BYTES:
                    raise CheckpointError(
                        f"header length {header_len:,} is implausibly large (at most {MAX_HEADER_BYTES:,}; "
                        "corrupt file)",
                        path,
                    )
                raw = fh.read(header_len)
        except OSError as exc:
            raise CheckpointError(f"cannot read file: {describe_os_error(exc)}", path) from None
        try:
            header = parse_json(raw, path, max_items=MAX_HEADER_VALUES)
        except CheckpointError as exc:
            raise CheckpointError(f"corrupt safetensors header ({exc.reason})", path) from None
        if not isinstance(header, dict):
            raise CheckpointError("corrupt safetensors header (not a JSON object)", path)
        tensors = len(header) - ("__metadata__" in header)
        if tensors > MAX_HEADER_ENTRIES:
            raise CheckpointError(
                f"header lists {tensors:,} tensors; more than {MAX_HEADER_ENTRIES:,} is not a plausible gpt-oss file",
                path,
            )
        self.file_size = size
        meta = header.pop("__metadata__", None) or {}
        self.metadata = {str(k): str(v) for k, v in meta.items()} if isinstance(meta, dict) else {}
        data_start = 8 + header_len
        entries: dict[str, TensorEntry] = {}
        for name, info in header.items():
            entries[name] = self._parse_entry(name, info, data_start, size)
        self._check_no_overlap(entries)
        self.entries = entries

    def _check_no_overlap(self, entries: dict[str, TensorEntry]) -> None:
        """Refuse tensors that share bytes: a write to one would silently change the other (safetensors forbids it)."""
        spans = sorted((e for e in entries.values() if e.nbytes), key=lambda e: (e.begin, e.end))
        for before, after in itertools.pairwise(spans):
            if after.begin < before.end:
                raise CheckpointError(
                    f"data (bytes {after.begin}-{after.end}) overlaps tensor {before.name!r} "
                    f"(bytes {before.begin}-{before.end}); aliased tensors are not allowed (corrupt header)",
                    self.path,
                    after.name,
                )

    def _parse_entry(self, name: str, info: Any, data_start: int, size: int) -> TensorEntry:
        path = self.path
        if not isinstance(info, dict):
            raise CheckpointError("corrupt header record (not an object)", path, name)
        code = info.get("dtype")
        dtype = SAFETENSORS_DTYPES.get(code) if isinstance(code, str) else None
        if dtype is None:
            # A dtype name this engine does not read (a quantized re-save) is unsupported; anything else is damage.
            error = UnsupportedCheckpointError if isinstance(code, str) else CheckpointError
            raise error(f"unknown or unsupported dtype {code!r}", path, name)
        shape = info.get("shape")
        if (
            not isinstance(shape, list)
            or len(shape) > MAX_RANK
            or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
        ):
            raise CheckpointError(f"corrupt header record: bad shape {shape!r}", path, name)
        offsets = info.get("data_offsets")
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
            or not 0 <= offsets[0] <= offsets[1]
        ):
            raise CheckpointError(f"corrupt header record: bad data_offsets {offsets!r}", path, name)
        begin, end = data_start + offsets[0], data_start + offsets[1]
        expected = math.prod(shape) * dtype.itemsize
        if end - begin != expected:
            raise CheckpointError(
                f"data_offsets {offsets} span {end - begin} bytes but shape {shape} of {code} needs {expected} "
                "(corrupt header)",
                path,
                name,
            )
        if end > size:
            raise CheckpointError(
                f"tensor data ends at byte {end} but the file has only {size} bytes (truncated file)", path, name
            )
        return TensorEntry(name, dtype, tuple(shape), begin, end)

    # ------------------------------------------------------------------------------------------------ tensors
    def _mapping(self) -> mmap.mmap:
        if self._mmap is None:
            with open_regular(self.path) as fh:
                # mmap dup()s the descriptor, so the file object can be closed straight away.
                self._mmap = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_COPY)
            if self._mmap.size() != self.file_size:
                raise CheckpointError("file changed size while being opened", self.path)
        return self._mmap

    def tensor(self, name: str) -> torch.Tensor:
        """A zero-copy tensor over the file mapping (the mapping stays alive as long as the tensor)."""
        entry = self.entries[name]
        if entry.nbytes == 0:
            return torch.empty(entry.shape, dtype=entry.dtype)
        buf = self._mapping()
        with warnings.catch_warnings():
            # torch warns that the buffer is not writable only for read-only buffers; ACCESS_COPY is writable, but
            # keep the filter so a future switch of access mode cannot turn the warning into a test error.
            warnings.simplefilter("ignore", UserWarning)
            flat = torch.frombuffer(
                buf, dtype=entry.dtype, count=entry.nbytes // entry.dtype.itemsize, offset=entry.begin
            )
        return flat.view(entry.shape)
