"""Read a saved Keras model as untrusted data: its config (``config.json`` of a ``.keras``
zip, or the JSON of ``model.to_json()``) and, in a ``.keras`` file, where its weights
(``model.weights.h5``) lie. Keras is not needed; h5py (the ``port`` extra) only when the
weights are read.

Nothing here trusts a size the file declares (the bounds are :mod:`~axisdot.port.limits`):

- ``config.json`` is inflated only up to its bound, counting the bytes that actually
  come out, and parsed only after that; JSON nested deeper than the bound is refused
  before any code walks it.
- ``model.weights.h5`` is never read whole. Keras stores it uncompressed, and then h5py
  reads it in place, through a window on the ``.keras`` file, after its CRC was checked
  in a streaming pass (so a flipped bit never reaches the HDF5 library). A compressed
  member is inflated to a temporary file under a size bound instead (zipfile checks
  its CRC). Either way memory holds only what is read from it:
  :mod:`~axisdot.port.hdf5` does the reading.
"""
from __future__ import annotations

import contextlib
import io
import json
import shutil
import struct
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Iterator, Optional

from ..errors import ModelFileError
from .limits import DEFAULT_LIMITS, Limits

__all__ = ["ModelArchive", "read_archive"]

_ZIP_MAGIC = b"PK\x03\x04"
_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, ..., name length, extra length
_CHUNK = 1 << 20
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, NotImplementedError, RuntimeError,
               ValueError, struct.error, zlib.error)


@dataclass
class ModelArchive:
    """A model file's config and, for a ``.keras`` file, where its weights lie."""

    path: Path
    config: dict[str, Any]
    weights_member: Optional[zipfile.ZipInfo]  #: ``model.weights.h5``; None when the file has none
    limits: Limits = field(default=DEFAULT_LIMITS)

    @contextlib.contextmanager
    def weights(self) -> Iterator[Any]:
        """``model.weights.h5`` open for checked reading (a :class:`~axisdot.port.hdf5.WeightsFile`)."""
        if self.weights_member is None:
            raise ModelFileError(f"{self.path}: the file holds no weights (model.weights.h5); save the model with "
                                 f"model.save('model.keras') to port its weights")
        from .hdf5 import WeightsFile

        with _open_member(self.path, self.weights_member, self.limits) as fileobj:
            with WeightsFile.open(fileobj, f"{self.path}:model.weights.h5", self.limits) as weights:
                yield weights


class _Window(io.RawIOBase):
    """A read-only, seekable view of ``size`` bytes of ``raw`` from ``offset``."""

    def __init__(self, raw: BinaryIO, offset: int, size: int) -> None:
        super().__init__()
        self._raw, self._offset, self._size, self._pos = raw, offset, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + pos)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        n = max(0, min(len(view), self._size - self._pos))
        if n == 0:
            return 0
        self._raw.seek(self._offset + self._pos)
        got = self._raw.readinto(view[:n]) or 0
        self._pos += got
        return got


def _check_expansion(path: Path, info: zipfile.ZipInfo, limits: Limits) -> None:
    if info.file_size > limits.expansion_allowance and info.file_size > limits.max_expansion * info.compress_size:
        raise ModelFileError(f"{path}: the member {info.filename!r} declares {info.file_size} bytes but stores "
                             f"{info.compress_size}: over {limits.max_expansion}x expansion, refused as a "
                             f"decompression bomb")


def _member_data_offset(raw: BinaryIO, info: zipfile.ZipInfo) -> int:
    raw.seek(info.header_offset)
    header = raw.read(_LOCAL_HEADER.size)
    if len(header) != _LOCAL_HEADER.size:
        raise zipfile.BadZipFile(f"the local header of {info.filename!r} is cut short")
    signature, name_length, extra_length = _LOCAL_HEADER.unpack(header)
    if signature != _ZIP_MAGIC:
        raise zipfile.BadZipFile(f"bad local header signature for {info.filename!r}")
    return info.header_offset + _LOCAL_HEADER.size + name_length + extra_length


@contextlib.contextmanager
def _open_member(path: Path, info: zipfile.ZipInfo, limits: Limits) -> Iterator[BinaryIO]:
    """The member as a seekable binary file: a window on the archive when stored, a
    temporary file when compressed. Its CRC is checked before it is handed out."""
    try:
        with open(path, "rb") as raw:
            if info.compress_type == zipfile.ZIP_STORED:
                offset = _member_data_offset(raw, info)
                window = _Window(raw, offset, info.file_size)
                crc = 0
                for chunk in iter(lambda: window.read(_CHUNK), b""):
                    crc = zlib.crc32(chunk, crc)
                if window.tell() != info.file_size or crc != info.CRC:
                    raise zipfile.BadZipFile(f"{info.filename!r} is damaged (CRC or size mismatch)")
                window.seek(0)
                yield window  # type: ignore[misc]
                return
            _check_expansion(path, info, limits)
            if info.file_size > limits.max_weights_member_bytes:
                raise ModelFileError(f"{path}: {info.filename!r} declares {info.file_size} bytes, over the bound of "
                                     f"{limits.max_weights_member_bytes} (axisdot.port.Limits.max_weights_member_bytes)")
            with zipfile.ZipFile(raw) as archive, tempfile.TemporaryFile() as tmp:
                with archive.open(info) as member:  # zipfile stops at the declared size and checks the CRC
                    shutil.copyfileobj(member, tmp, _CHUNK)
                if tmp.tell() != info.file_size:
                    raise zipfile.BadZipFile(f"{info.filename!r} inflates to {tmp.tell()} bytes, not the "
                                             f"{info.file_size} declared")
                tmp.seek(0)
                yield tmp  # type: ignore[misc]
    except ModelFileError:
        raise
    except _ZIP_ERRORS as err:
        raise ModelFileError(f"{path}: the .keras archive is corrupt (truncated or damaged: {err})") from None


def _read_member(path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo, limits: Limits) -> bytes:
    """A small member's bytes, never more than ``limits.max_config_bytes`` inflated."""
    if info.file_size > limits.max_config_bytes:
        raise ModelFileError(f"{path}: {info.filename!r} declares {info.file_size} bytes, over the bound of "
                             f"{limits.max_config_bytes} (axisdot.port.Limits.max_config_bytes)")
    _check_expansion(path, info, limits)
    with archive.open(info) as member:
        data = member.read(limits.max_config_bytes + 1)
    if len(data) > limits.max_config_bytes:
        raise ModelFileError(f"{path}: {info.filename!r} inflates past the bound of {limits.max_config_bytes} bytes")
    return data


def _depth_within(value: Any, bound: int) -> bool:
    """Whether lists and dicts nest at most ``bound`` deep (iteratively: no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > bound:
                return False
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return True


def _parse_json(path: Path, data: bytes, limits: Limits) -> Any:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ModelFileError(f"{path}: not a .keras file or a model JSON (binary content)") from None
    try:
        config = json.loads(text)
    except RecursionError:
        raise ModelFileError(f"{path}: the model JSON nests deeper than the bound of {limits.max_json_depth} "
                             f"levels (axisdot.port.Limits.max_json_depth)") from None
    except ValueError as err:  # JSONDecodeError, and integers too long to convert
        raise ModelFileError(f"{path}: not a .keras file or a model JSON ({err})") from None
    if not _depth_within(config, limits.max_json_depth):
        raise ModelFileError(f"{path}: the model JSON nests deeper than the bound of {limits.max_json_depth} "
                             f"levels (axisdot.port.Limits.max_json_depth)")
    return config


def _is_model_config(config: Any) -> bool:
    """A Keras model or layer serialization: ``class_name`` and a ``config`` dict."""
    return isinstance(config, dict) and isinstance(config.get("class_name"), str) \
        and isinstance(config.get("config"), dict)


def _member(names: dict[str, list[zipfile.ZipInfo]], name: str, path: Path) -> Optional[zipfile.ZipInfo]:
    found = names.get(name, [])
    if len(found) > 1:
        raise ModelFileError(f"{path}: the archive holds {len(found)} members named {name!r}; refused as ambiguous")
    return found[0] if found else None


def _read_zip(path: Path, limits: Limits) -> tuple[bytes, Optional[zipfile.ZipInfo]]:
    try:
        with zipfile.ZipFile(path) as archive:
            names: dict[str, list[zipfile.ZipInfo]] = {}
            for info in archive.infolist():
                names.setdefault(info.filename, []).append(info)
            config = _member(names, "config.json", path)
            if config is None:
                raise ModelFileError(f"{path}: a zip without config.json is not a Keras 3 .keras file")
            return _read_member(path, archive, config, limits), _member(names, "model.weights.h5", path)
    except ModelFileError:
        raise
    except _ZIP_ERRORS as err:
        raise ModelFileError(f"{path}: the .keras archive is corrupt (truncated or damaged: {err})") from None


def read_archive(path: "str | Path", limits: Limits = DEFAULT_LIMITS) -> ModelArchive:
    """The model file at ``path``: a Keras 3 ``.keras`` zip or a ``to_json()`` file."""
    path = Path(path)
    weights = None
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
            if head != _ZIP_MAGIC:
                data = fh.read(limits.max_config_bytes - 3)
                if len(head) + len(data) > limits.max_config_bytes:
                    raise ModelFileError(f"{path}: a model JSON of more than {limits.max_config_bytes} bytes is over "
                                         f"the bound (axisdot.port.Limits.max_config_bytes)")
                data = head + data
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ModelFileError(f"{path}: a directory, not a .keras file or a model JSON") from None
    except OSError as err:
        raise ModelFileError(f"{path}: cannot be read ({err.strerror or err})") from None
    if head == _ZIP_MAGIC:
        data, weights = _read_zip(path, limits)
    config = _parse_json(path, data, limits)
    if not _is_model_config(config):
        what = type(config).__name__ if not isinstance(config, dict) else "JSON without a model's class_name and config"
        raise ModelFileError(f"{path}: not a Keras model (a {what}); give a .keras file or the JSON of "
                             f"model.to_json()")
    return ModelArchive(path, config, weights, limits)
