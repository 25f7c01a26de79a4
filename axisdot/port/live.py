"""Port the contraction layers of a model that only Keras can build: KerasHub backbones
and other custom layers whose configs do not list their sublayers.

A custom class (``keras_hub>BertBackbone``, ``TransformerEncoder``, ...) saves its own
constructor arguments, not the layers it makes, so the config cannot say where its
EinsumDense and MultiHeadAttention layers are. Where Keras and the package that defines
the class are importable, the model is loaded by Keras in safe mode (no ``Lambda`` code
is run, and Keras applies its own checks to the file) and its live layer tree is walked,
sublayers of custom layers included; each contraction layer is ported with
``from_keras`` and named by its path in the model. Only the packages in
:data:`PACKAGES` (and those the caller names) are imported: importing a package runs
its code, and a model file must not choose which code runs.
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import os
from typing import Any, Iterable, Iterator, Optional

from ..errors import AxisdotError, ModelFileError
from ..layers.keras_interop import weight_shapes
from .archive import ModelArchive
from .hidden import NotPorted
from .registry import PortedLayer, build
from .walk import LayerEntry

__all__ = ["PACKAGES", "custom_packages", "keras_can_build", "load_live"]

#: Packages whose Keras classes a model file may name and axisdot will import to build it.
PACKAGES = ("keras_hub", "keras_nlp", "keras_cv", "keras_rs")


def custom_packages(modules: Iterable[str]) -> set[str]:
    """The top-level packages of the non-Keras ``module`` names a config holds."""
    return {m.split(".")[0] for m in modules if m and not m.split(".")[0] == "keras"}


def keras_can_build(packages: Iterable[str], allowed: Iterable[str] = ()) -> Optional[str]:
    """None when Keras (on the torch backend) and every package are importable and allowed;
    else the reason they are not."""
    if importlib.util.find_spec("keras") is None:
        return "Keras is not installed (pip install keras; it builds the custom layers)"
    backend = os.environ.get("KERAS_BACKEND")
    if "keras" not in __import__("sys").modules and backend not in (None, "torch"):
        return f"KERAS_BACKEND is {backend!r}: axisdot loads models with Keras on its torch backend"
    for package in sorted(set(packages)):
        if package not in PACKAGES and package not in set(allowed):
            return (f"the model's classes come from {package!r}, which axisdot does not import unless asked "
                    f"(importing runs its code): pass packages=[{package!r}] (axisdot port --import {package})")
        if importlib.util.find_spec(package) is None:
            return f"the model's classes come from {package!r}, which is not installed"
    return None


def _keras() -> Any:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    if keras.backend.backend() != "torch":
        raise ModelFileError(f"Keras runs on its {keras.backend.backend()!r} backend; axisdot needs KERAS_BACKEND=torch")
    return keras


def _classes(keras: Any) -> dict[str, Any]:
    return {"Dot": keras.layers.Dot, "EinsumDense": keras.layers.EinsumDense,
            "MultiHeadAttention": keras.layers.MultiHeadAttention}


def _children(layer: Any) -> list[tuple[Any, str]]:
    """A layer's direct sublayers, each with a name that is the same in every load: the
    layer's own name inside a functional model (its config holds it), else the
    attribute that holds it (``_self_attention_layer`` -> ``self_attention_layer``; an
    unnamed layer's automatic name, ``dense_3``, depends on what was built before)."""
    try:
        children = list(layer._flatten_layers(include_self=False, recursive=False))
    except AttributeError:
        return []
    if hasattr(layer, "_operations") or hasattr(layer, "_functional"):  # a functional model
        return [(child, child.name) for child in children]
    labels: dict[int, str] = {}
    attributes = {**getattr(layer, "_modules", {}), **vars(layer)}  # on the torch backend, sublayers sit in _modules
    for attribute, value in attributes.items():
        items = [(value, "")] if not isinstance(value, (list, tuple)) else [(v, f"_{i}") for i, v in enumerate(value)]
        for item, suffix in items:
            if any(item is child for child in children) and attribute not in ("_layers", "_tracker"):
                labels.setdefault(id(item), attribute.lstrip("_") + suffix)
    return [(child, labels.get(id(child), child.name)) for child in children]


def walk_live(model: Any, classes: dict[str, Any]) -> Iterator[tuple[str, str, Any]]:
    """``(path, kind, layer)`` for every layer of a live model, depth first, where kind is
    the contraction class it is (or inherits from), else ""; a contraction layer's own
    sublayers (an attention's projections) are not visited."""
    seen: set[int] = set()
    stack = [(child, f"{model.name}/{label}") for child, label in reversed(_children(model))]
    while stack:
        layer, path = stack.pop()
        if id(layer) in seen:  # a layer shared by two parents is ported once
            continue
        seen.add(id(layer))
        kind = next((k for k, cls in classes.items() if isinstance(layer, cls)), "")
        yield path, kind, layer
        if not kind:
            stack.extend((child, f"{path}/{label}") for child, label in reversed(_children(layer)))


def _port_live(path: str, kind: str, layer: Any) -> PortedLayer:
    """The shapes and equations from the layer's config (as for a saved config), the
    module and its weights from the live layer."""
    from ..layers import Dot, EinsumDense, MultiHeadAttention

    node = json.loads(json.dumps({"build_config": layer.get_build_config() or {}}, default=list))
    config = json.loads(json.dumps(layer.get_config(), default=str))
    ported = build(LayerEntry(path, kind, config, "", node))
    module = {"Dot": Dot, "EinsumDense": EinsumDense, "MultiHeadAttention": MultiHeadAttention}[kind].from_keras(layer)
    ported.module = module
    ported.weights = weight_shapes(module)
    return ported


@contextlib.contextmanager
def _address_space(extra: int) -> Iterator[None]:
    """While Keras builds the model: the process may map at most ``extra`` bytes more
    than now (Linux; a no-op elsewhere). A custom class builds whatever its config
    declares before any weight is read, so the bound is what the weights file holds,
    with room: a config that declares more is refused, not allocated."""
    try:
        import resource

        with open("/proc/self/status") as status:
            mapped = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
    except (ImportError, OSError, StopIteration, ValueError):
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = mapped + extra
    for bound in (soft, hard):
        if bound != resource.RLIM_INFINITY:
            limit = min(limit, bound)  # never loosen a bound the process already has
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def load_live(archive: ModelArchive, packages: Iterable[str]) -> tuple[list[PortedLayer], list[NotPorted]]:
    """Load the model with Keras (safe mode) after importing ``packages``, and port each
    contraction layer of its live layer tree. The weights file is first checked whole
    by axisdot's own reader (:meth:`~axisdot.port.hdf5.WeightsFile.check_all`), and
    Keras builds the model under an address-space bound of a few times what it declares."""
    path = archive.path
    declared = 0
    if archive.weights_member is not None:
        with archive.weights() as weights:
            declared = weights.check_all()
    keras = _keras()
    for package in sorted(set(packages)):
        importlib.import_module(package)
    too_big = ModelFileError(f"{path}: building the model with Keras needs more memory than its weights file "
                             f"(declaring {declared} bytes) allows: its config declares more than the file stores; "
                             f"refused")
    try:
        with _address_space(4 * declared + archive.limits.build_allowance):
            model = keras.saving.load_model(str(path), compile=False, safe_mode=True)
    except MemoryError:
        raise too_big from None
    except (ValueError, TypeError, KeyError, OSError, AttributeError, RuntimeError) as err:
        if "alloc" in str(err).lower() and "memory" in str(err).lower():  # torch's allocator, under the bound
            raise too_big from None
        raise ModelFileError(f"{path}: Keras could not load the model in safe mode ({type(err).__name__}: "
                             f"{str(err).splitlines()[0] if str(err) else ''})") from None
    classes = _classes(keras)
    ported: list[PortedLayer] = []
    skipped: list[NotPorted] = []
    for where, kind, layer in walk_live(model, classes):
        if not kind:
            continue
        try:  # from_keras refuses a subclass that computes something else (axisdot.layers.keras_classes)
            ported.append(_port_live(where, kind, layer))
        except AxisdotError as err:
            skipped.append(NotPorted(where, type(layer).__name__, str(err).splitlines()[0]))
    return ported, skipped
