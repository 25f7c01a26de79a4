"""The one door through which every weight read from ``model.weights.h5`` goes.

An HDF5 file can point outside itself: a soft or external link, a dataset whose data
lives in another file (*external storage*) or is mapped from other files (a *virtual
dataset*), a filter that makes the HDF5 library load a plugin. It can also declare a
dataset of any size while storing nothing. Read naively (``h5[path][()]``), a crafted
file leaks a host file's bytes into the ported weights (the class of Keras's
CVE-2026-1669) or allocates what it merely declares. :class:`WeightsFile` walks the
file only through hard links, one path component at a time, and a dataset is read only
after it passed every check below; each refusal is a :class:`~axisdot.ModelFileError`
naming the file, the layer, the dataset and the rule:

- hard links only (no soft or external link, on a group or a dataset);
- a dataset's data in the file itself (no external storage, not virtual), through
  HDF5's built-in filters only (deflate, shuffle, fletcher32, szip, n-bit,
  scale-offset, lzf);
- numbers only: integers, floats and booleans of at most 8 bytes, or Keras's bfloat16
  (opaque 2-byte values with a ``dtype`` attribute): no strings, objects, compound,
  array or reference types;
- the shape the layer's config requires, checked before reading;
- no more than :attr:`Limits.max_expansion <axisdot.port.Limits>` times the bytes the
  file stores for what is read, beyond :attr:`Limits.expansion_allowance`, counted over
  the whole load (a dataset that declares 64 GiB and stores nothing is refused).

Keras does the same checks in ``keras/src/saving/saving_lib.py`` (``safe_get_h5_group``,
``safe_get_h5_dataset``).
"""
from __future__ import annotations

import contextlib
import math
from typing import Any, BinaryIO, Iterator, Optional, Sequence

import numpy as np
import torch

from ..errors import ModelFileError
from .limits import Limits

__all__ = ["WeightsFile", "SAFE_FILTERS"]

#: HDF5 filters built into the library or h5py: deflate, shuffle, fletcher32, szip,
#: n-bit, scale-offset, lzf. Any other makes HDF5 search its plugin path for a library.
SAFE_FILTERS = frozenset({1, 2, 3, 4, 5, 6, 32000})
_NUMERIC_KINDS = "biuf"
_H5_ERRORS = (OSError, KeyError, ValueError, TypeError, RuntimeError)


def _name(obj: Any) -> str:
    """An HDF5 object's path, for messages (a damaged file can leave it unnamed)."""
    try:
        name = obj.name
    except _H5_ERRORS:
        name = None
    return name if isinstance(name, str) else "<an unnamed object>"


def _h5py() -> Any:
    try:
        import h5py
    except ImportError:
        raise ModelFileError('reading Keras weights needs h5py: pip install "axisdot[port]"') from None
    return h5py


class WeightsFile:
    """``model.weights.h5``, open for reading through checks (see the module docstring)."""

    def __init__(self, h5: Any, source: str, limits: Limits) -> None:
        self._h5, self.source, self.limits = h5, source, limits
        self._declared = 0  #: bytes read so far, as declared
        self._stored = 0  #: bytes the file stores for them

    @classmethod
    @contextlib.contextmanager
    def open(cls, fileobj: BinaryIO, source: str, limits: Limits) -> Iterator["WeightsFile"]:
        h5py = _h5py()
        try:
            h5 = h5py.File(fileobj, "r")
        except _H5_ERRORS as err:
            raise ModelFileError(f"{source}: not a readable HDF5 file ({err})") from None
        try:
            yield cls(h5, source, limits)
        finally:
            with contextlib.suppress(*_H5_ERRORS):
                h5.close()

    def _refuse(self, layer: str, where: str, rule: str) -> ModelFileError:
        return ModelFileError(f"{self.source}: layer {layer!r}: {where}: {rule}")

    def _child(self, parent: Any, name: str, layer: str) -> Optional[Any]:
        """``parent[name]`` through a hard link only; None when there is no such link."""
        h5py = _h5py()
        where = f"{_name(parent).rstrip('/')}/{name}"
        try:
            link = parent.get(name, getlink=True)
            if link is None:
                return None
            if not isinstance(link, h5py.HardLink):
                raise self._refuse(layer, where, f"is an HDF5 {type(link).__name__}: links are refused (they can point "
                                                 f"outside the file)")
            return parent[name]
        except ModelFileError:
            raise
        except _H5_ERRORS as err:
            raise self._refuse(layer, where, f"cannot be read ({err})") from None

    def group(self, path: str, layer: str, base: Optional[Any] = None) -> Optional[Any]:
        """The group at ``path`` (``layers/dense/...``) under ``base`` (the file's root by
        default), walked one hard link at a time; None when absent."""
        h5py = _h5py()
        current = self._h5 if base is None else base
        for part in path.split("/"):
            if not part:
                continue
            current = self._child(current, part, layer)
            if current is None:
                return None
            if not isinstance(current, h5py.Group):
                raise self._refuse(layer, _name(current), "is not a group")
        return current

    def find_group(self, layer: str, path: str, alternatives: Sequence[str] = (), base: Optional[Any] = None
                   ) -> Optional[Any]:
        """The group at ``path`` or the first of ``alternatives`` present, each also tried
        with Keras 2's ``_layer_checkpoint_dependencies`` for ``layers``; None if absent."""
        for candidate in (path, *alternatives):
            for variant in (candidate, candidate.replace("layers/", "_layer_checkpoint_dependencies/")):
                found = self.group(variant, layer, base)
                if found is not None:
                    return found
        return None

    def _datasets(self, start: Any, layer: str, bound: int, strict: bool) -> Iterator[tuple[str, Any]]:
        """``(name, dataset)`` for every dataset under ``start``, through hard links only.
        ``strict``: a link, an unlisted group or more than ``bound`` objects is refused;
        else they are passed over and the walk stops at ``bound`` (a hard-link cycle ends
        there too)."""
        h5py = _h5py()
        stack, seen = [start], 0
        while stack:
            current = stack.pop()
            try:
                names = list(current.keys())
            except _H5_ERRORS as err:
                if strict:
                    raise self._refuse(layer, _name(current), f"cannot be listed ({err})") from None
                continue
            for name in names:
                seen += 1
                if seen > bound:
                    if strict:
                        raise ModelFileError(f"{self.source}: holds more than {bound} objects; refused")
                    return
                name = name if isinstance(name, str) else name.decode("utf-8", "replace")
                try:
                    child = self._child(current, name, layer)
                except ModelFileError:  # a link
                    if strict:
                        raise
                    continue
                if isinstance(child, h5py.Group):
                    stack.append(child)
                elif isinstance(child, h5py.Dataset):
                    yield name, child

    def count_variables(self, group: Any, layer: str, bound: int = 1_000_000) -> int:
        """How many datasets the groups under ``group`` hold (its own and its
        sublayers'), following hard links only (a link is not counted: it is refused
        where it is read) and stopping at ``bound`` objects."""
        return sum(1 for _ in self._datasets(group, layer, bound, strict=False))

    def check_all(self, bound: int = 1_000_000) -> int:
        """Check every link and dataset of the file, as a read would (no link, no external
        or virtual storage, no plugin filter, numbers only, no bomb), reading no data;
        return the bytes the datasets declare. For files another reader (Keras) will
        read whole. Stops with a refusal past ``bound`` objects."""
        declared, whole = 0, "(the whole file)"
        for name, dataset in self._datasets(self._h5, whole, bound, strict=True):
            shape, dtype, _ = self._check(whole, name, dataset, None)
            declared += math.prod(shape) * dtype.itemsize
        return declared

    def variables(self, group: Optional[Any], layer: str, names: Sequence[str]) -> list[Any]:
        """The datasets ``vars/0``, ``vars/1``, ... of a layer's group, one per name in
        ``names`` (Keras's saving order), not yet read."""
        if group is None:
            raise ModelFileError(f"{self.source}: layer {layer!r}: model.weights.h5 has no group for it")
        h5py = _h5py()
        store = self._child(group, "vars", layer)
        try:
            found = [k if isinstance(k, str) else k.decode("utf-8", "replace")
                     for k in (store.keys() if isinstance(store, h5py.Group) else [])]
        except _H5_ERRORS as err:
            raise self._refuse(layer, f"{_name(group)}/vars", f"cannot be listed ({err})") from None
        wanted = [str(i) for i in range(len(names))]
        if sorted(found) != sorted(wanted):
            raise ModelFileError(
                f"{self.source}: layer {layer!r}: model.weights.h5 holds {len(found)} variables at {_name(group)}/vars "
                f"({', '.join(sorted(found)[:8]) or 'none'}), but its config needs {len(names)} "
                f"({', '.join(names) or 'none'}) named 0, 1, ...")
        datasets = [self._child(store, key, layer) for key in wanted]
        for key, dataset in zip(wanted, datasets):
            if not isinstance(dataset, h5py.Dataset):
                raise self._refuse(layer, f"{_name(store)}/{key}", "is missing or is a group where a dataset is "
                                                                    "expected")
        return datasets

    def _dtype(self, dataset: Any, layer: str) -> tuple[np.dtype, bool]:
        """The native numpy dtype to read into, and whether it holds bfloat16 bits."""
        dtype = dataset.dtype
        if dtype.kind == "V" and dtype.itemsize == 2 and dtype.fields is None and dtype.subdtype is None \
                and self._bfloat16_attr(dataset, layer):
            return dtype, True
        if dtype.kind not in _NUMERIC_KINDS or dtype.itemsize > 8 or dtype.fields is not None \
                or dtype.subdtype is not None or dtype.metadata:
            raise self._refuse(layer, _name(dataset), f"holds {dtype} values: weights must be integers, floats or "
                                                    f"booleans of at most 8 bytes, or Keras's bfloat16")
        return dtype.newbyteorder("="), False

    def _bfloat16_attr(self, dataset: Any, layer: str) -> bool:
        """Whether ``dataset`` carries Keras's ``dtype="bfloat16"`` attribute (read only
        when it is a short string)."""
        try:
            if "dtype" not in dataset.attrs:
                return False
            attr = dataset.attrs.get_id("dtype")
            if attr.dtype.kind not in "SUO" or attr.shape not in ((), (1,)) or attr.get_storage_size() > 64:
                return False
            value = dataset.attrs["dtype"]
        except _H5_ERRORS as err:
            raise self._refuse(layer, _name(dataset), f"has an unreadable dtype attribute ({err})") from None
        value = value.item() if isinstance(value, np.ndarray) and value.size == 1 else value
        value = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
        return value == "bfloat16"

    def _check_storage(self, dataset: Any, layer: str, shape: tuple[int, ...], itemsize: int) -> None:
        try:
            external, virtual = dataset.external, dataset.is_virtual
            plist = dataset.id.get_create_plist()
            filters = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
            stored = dataset.id.get_storage_size()
        except _H5_ERRORS as err:
            raise self._refuse(layer, _name(dataset), f"has an unreadable layout ({err})") from None
        if external:
            raise self._refuse(layer, _name(dataset), "keeps its data in external files: refused (it would read "
                                                    "files outside the model)")
        if virtual:
            raise self._refuse(layer, _name(dataset), "is a virtual dataset mapping other files: refused (it would "
                                                    "read files outside the model)")
        unsafe = [f for f in filters if f not in SAFE_FILTERS]
        if unsafe:
            raise self._refuse(layer, _name(dataset), f"uses HDF5 filter {unsafe[0]}, not one built into HDF5: "
                                                    f"refused (it would load a plugin library)")
        declared = math.prod(shape) * itemsize
        self._declared += declared
        self._stored += stored
        limits = self.limits
        if self._declared > limits.expansion_allowance + limits.max_expansion * self._stored:
            raise self._refuse(layer, _name(dataset), f"declares {declared} bytes but the file stores {stored} for "
                                                    f"it: refused as a shape bomb (weights may expand at most "
                                                    f"{limits.max_expansion}x over what the file stores, beyond "
                                                    f"{limits.expansion_allowance} bytes in all)")

    def _check(self, layer: str, name: str, dataset: Any, shape: Optional[Sequence[int]]) -> tuple[tuple[int, ...], np.dtype, bool]:
        """A dataset's shape, the dtype to read it as and whether it holds bfloat16, after
        every check; ``shape`` is what the layer's config requires (None: left open)."""
        try:
            found = tuple(int(n) for n in dataset.shape)
        except (TypeError, *_H5_ERRORS):
            raise self._refuse(layer, _name(dataset), "has no shape (a null dataspace)") from None
        if shape is not None and found != tuple(shape):
            raise self._refuse(layer, _name(dataset), f"the weight {name!r} has shape {found}, but the layer's config "
                                                    f"makes it {tuple(shape)}")
        dtype, bfloat16 = self._dtype(dataset, layer)
        self._check_storage(dataset, layer, found, dtype.itemsize)
        return found, dtype, bfloat16

    def read(self, layer: str, slots: Sequence[tuple[str, Any, Optional[Sequence[int]]]]) -> dict[str, torch.Tensor]:
        """``{name: tensor}`` for each ``(name, dataset, required shape)`` of one layer:
        every dataset is checked before any is read."""
        checked = [(name, dataset, *self._check(layer, name, dataset, shape)) for name, dataset, shape in slots]
        out = {}
        for name, dataset, found, dtype, bfloat16 in checked:
            array = np.empty(found, dtype=dataset.dtype if bfloat16 else dtype)
            if array.size:
                try:
                    dataset.read_direct(array)
                except _H5_ERRORS as err:
                    raise self._refuse(layer, _name(dataset), f"cannot be read ({err})") from None
            out[name] = torch.from_numpy(array.view(np.int16)).view(torch.bfloat16) if bfloat16 \
                else torch.from_numpy(array)
        return out
