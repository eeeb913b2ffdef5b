"""MXNet 1.x's files: ``.params`` (an NDArray list, ``mx.nd.save``) read and written, and a
symbol written as MXNet's JSON, so a model moves between MXNet and tritonsym both ways.

The ``.params`` layout, from MXNet's source (``src/ndarray/ndarray.cc``, ``NDArray::Save``;
``src/c_api/c_api.cc``, ``MXNDArraySave``), all little-endian:

- uint64 0x112 (the list's magic), uint64 0 (reserved), uint64 the number of arrays;
- each array: uint32 0xF993FAC9 (0xF993FACA from MXNet's numpy shapes), int32 the storage
  type (0: dense; sparse arrays are refused), uint32 ndim, int64 × ndim the shape, and
  unless ndim is 0: int32 device type, int32 device id, int32 the dtype's flag, then the
  elements in C order;
- uint64 the number of names, then each name as uint64 length and UTF-8 bytes (MXNet's
  checkpoints name them ``arg:<name>`` and ``aux:<name>``).

Reading checks every length against the file's size first, so a truncated or foreign file
is a ``FormatError`` naming the file and what is wrong, never a crash or a huge allocation.
"""

from __future__ import annotations

import json
import struct

import numpy as np
import torch

from .base import FormatError
from .files import atomic_write

LIST_MAGIC = 0x112
ARRAY_MAGICS = (0xF993FAC9, 0xF993FACA)
# mshadow's dtype flags.
DTYPES = {0: np.float32, 1: np.float64, 2: np.float16, 3: np.uint8, 4: np.int32, 5: np.int8, 6: np.int64}
FLAGS = {np.dtype(v): k for k, v in DTYPES.items()}


class _Reader:
    def __init__(self, path: str, data: bytes):
        self.path, self.data, self.at = path, data, 0

    def take(self, fmt: str, what: str):
        size = struct.calcsize(fmt)
        if self.at + size > len(self.data):
            raise FormatError(f"{self.path}: the file ends inside {what} (byte {self.at} of {len(self.data)}); "
                              "it is truncated or not an MXNet .params file")
        values = struct.unpack_from(fmt, self.data, self.at)
        self.at += size
        return values if len(values) > 1 else values[0]

    def raw(self, size: int, what: str) -> bytes:
        if size < 0 or self.at + size > len(self.data):
            raise FormatError(f"{self.path}: {what} needs {size} bytes at byte {self.at} but the file has "
                              f"{len(self.data)}; it is truncated or not an MXNet .params file")
        chunk = self.data[self.at:self.at + size]
        self.at += size
        return chunk


def read_params(path: str) -> dict[str, torch.Tensor]:
    """Every array of an MXNet ``.params`` file by name (``arg:fc1_weight``, ...), as CPU tensors."""
    arrays, names = read_arrays(path)
    if not names:
        raise FormatError(f"{path}: its arrays have no names (a list saved without them); a checkpoint names "
                          "each one arg:<name> or aux:<name>")
    return dict(zip(names, arrays))


def read_arrays(path: str) -> tuple[list[torch.Tensor], list[str]]:
    """The arrays of an MXNet NDArray-list file (``mx.nd.save``) and their names (none for a
    list saved without them), as CPU tensors."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise FormatError(f"{path}: cannot read it ({e.strerror})") from None
    r = _Reader(path, data)
    magic = r.take("<Q", "the header")
    if magic != LIST_MAGIC:
        raise FormatError(f"{path}: not an MXNet .params file (it starts with {magic:#x}, not {LIST_MAGIC:#x})")
    r.take("<Q", "the header")
    count = r.take("<Q", "the header")
    arrays = [_read_array(r, i) for i in range(_bounded(r, count, 24, "arrays"))]
    names_count = r.take("<Q", "the names")
    if names_count not in (0, len(arrays)):
        raise FormatError(f"{path}: {len(arrays)} arrays but {names_count} names")
    names = [r.raw(_bounded(r, r.take("<Q", "a name's length"), 1, "name bytes"), "a name").decode("utf-8", "replace")
             for _ in range(names_count)]
    if r.at != len(data):
        raise FormatError(f"{path}: {len(data) - r.at} bytes after the last name; not an MXNet .params file")
    return arrays, names


def _bounded(r: _Reader, count: int, least_bytes: int, what: str) -> int:
    """A count read from the file, refused when the rest of the file could not hold it."""
    if count * least_bytes > len(r.data) - r.at:
        raise FormatError(f"{r.path}: it claims {count} {what}, more than its {len(r.data)} bytes can hold; it is "
                          "truncated or not an MXNet .params file")
    return count


def _read_array(r: _Reader, index: int) -> torch.Tensor:
    what = f"array {index}"
    magic = r.take("<I", what)
    if magic not in ARRAY_MAGICS:
        raise FormatError(f"{r.path}: {what} starts with {magic:#x}, not an MXNet array (0xf993fac9); "
                          "files of MXNet before 1.0 are not read")
    stype = r.take("<i", what)
    if stype != 0:
        raise FormatError(f"{r.path}: {what} is a sparse array (storage type {stype}); only dense ones are read")
    ndim = r.take("<i", what)
    if ndim < 0 or ndim > 32:
        raise FormatError(f"{r.path}: {what} has {ndim} dimensions")
    shape = tuple(r.take(f"<{ndim}q", what)) if ndim > 1 else ((r.take("<q", what),) if ndim == 1 else ())
    if ndim == 0:
        return torch.empty(0)
    r.take("<2i", what)  # the device it was saved from: irrelevant here
    flag = r.take("<i", what)
    if flag not in DTYPES:
        raise FormatError(f"{r.path}: {what} has dtype flag {flag}, which tritonsym does not read")
    dtype = np.dtype(DTYPES[flag])
    if any(d < 0 for d in shape):
        raise FormatError(f"{r.path}: {what} has shape {shape}")
    raw = r.raw(int(np.prod(shape)) * dtype.itemsize, f"{what}'s {dtype.name} elements {shape}")
    return torch.from_numpy(np.frombuffer(raw, dtype=dtype.newbyteorder("<")).astype(dtype).reshape(shape).copy())


def write_params(path: str, tensors: "dict[str, torch.Tensor] | list[torch.Tensor]") -> None:
    """Write arrays by name (or a list without names) as MXNet's ``mx.nd.save`` does (atomically)."""
    named = isinstance(tensors, dict)
    parts = [struct.pack("<QQQ", LIST_MAGIC, 0, len(tensors))]
    for name, tensor in (tensors.items() if named else enumerate(tensors)):
        array = np.ascontiguousarray(tensor.detach().cpu().numpy())
        if array.dtype not in FLAGS:
            raise FormatError(f"{path}: {name} has dtype {array.dtype}, which MXNet's .params cannot hold")
        parts.append(struct.pack(f"<Iii{array.ndim}q", ARRAY_MAGICS[0], 0, array.ndim, *array.shape))
        parts.append(struct.pack("<iii", 1, 0, FLAGS[array.dtype]) + array.astype(array.dtype.newbyteorder("<"))
                     .tobytes())
    parts.append(struct.pack("<Q", len(tensors) if named else 0))
    for name in tensors if named else ():
        encoded = name.encode("utf-8")
        parts.append(struct.pack("<Q", len(encoded)) + encoded)
    atomic_write(path, b"".join(parts))


def symbol_json(symbol) -> str:
    """The symbol as MXNet 1.x's JSON (``mx.sym.load`` reads it): every node's parameters and
    attributes as strings in ``attrs``, inputs as ``[node, output, 0]``."""
    nodes, index = [], {}
    for node in symbol.nodes():
        index[id(node)] = len(nodes)
        attrs = {k: str(v) for k, v in node.attrs.items()}
        if not node.is_variable:
            attrs.update({k: str(node.params[k]) for k in node.set_params})
        entry = {"op": "null" if node.is_variable else node.op.name, "name": node.name,
                 "inputs": [[index[id(child)], i, 0] for child, i in node.inputs]}
        if attrs:
            entry["attrs"] = attrs
        nodes.append(entry)
    arg_nodes = [i for i, n in enumerate(nodes) if n["op"] == "null"]
    row_ptr = [0]
    for node in symbol.nodes():
        row_ptr.append(row_ptr[-1] + (1 if node.is_variable else node.num_outputs))
    return json.dumps({"nodes": nodes, "arg_nodes": arg_nodes, "node_row_ptr": row_ptr,
                       "heads": [[index[id(node)], i, 0] for node, i in symbol.heads],
                       "attrs": {"mxnet_version": ["int", 10901]}}, indent=2)
