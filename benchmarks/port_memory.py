"""Peak memory of porting a large saved model: ``axisdot.port.load`` reads only the
contraction layers' weights, never the whole file.

A synthetic ``.keras`` file (its config and ``model.weights.h5`` written directly, as
Keras lays them out) holds ``--dense-mib`` of weights in plain ``Dense`` layers, which
axisdot does not port, and three ``EinsumDense`` layers, which it does. A fresh
process imports torch, axisdot and h5py, notes its resident memory, ports the file,
checks every ported kernel against the values written, and reports its peak resident
memory (``VmHWM``, reset after the imports) over that baseline.

    python benchmarks/port_memory.py --dense-mib 1024      # the figure in RESULTS.md

Issue 18's target: below 200 MB for about 1 GB of weights.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

DENSE_SIDE = 2048  # a Dense kernel of (2048, 2048) float32: 16 MiB
EINSUM = [("abc,cd->abd", [None, 64], [None, 8, 256]), ("abc,cde->abde", [None, 4, 32], [None, 8, 64]),
          ("abc,cd->abd", [None, 256], [None, 8, 128])]


def _layer(class_name: str, name: str, config: dict, input_shape: list) -> dict:
    return {"module": "keras.layers", "class_name": class_name, "config": {"name": name, **config},
            "build_config": {"input_shape": input_shape}}


def make_model(path: Path, dense_mib: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Write the synthetic ``.keras`` file; return the EinsumDense kernels by layer path."""
    import h5py

    count = max(1, dense_mib * (1 << 20) // (DENSE_SIDE * DENSE_SIDE * 4))
    layers = [{"class_name": "InputLayer", "config": {"name": "input", "batch_shape": [None, DENSE_SIDE]}}]
    layers += [_layer("Dense", f"dense{i}", {"units": DENSE_SIDE}, [None, DENSE_SIDE]) for i in range(count)]
    layers += [_layer("EinsumDense", f"contract{i}", {"equation": eq, "output_shape": out, "bias_axes": None},
                      shape) for i, (eq, out, shape) in enumerate(EINSUM)]
    config = {"class_name": "Sequential", "config": {"name": "big", "layers": layers}}
    gen = np.random.default_rng(seed)
    kernels = {}
    weights = path.with_suffix(".h5")
    with h5py.File(weights, "w") as f:
        for i in range(count):
            slot = "dense" if i == 0 else f"dense_{i}"
            f[f"layers/{slot}/vars/0"] = gen.standard_normal((DENSE_SIDE, DENSE_SIDE), dtype=np.float32)
            f[f"layers/{slot}/vars/1"] = np.zeros(DENSE_SIDE, np.float32)
        for i, (eq, out, shape) in enumerate(EINSUM):
            slot = "einsum_dense" if i == 0 else f"einsum_dense_{i}"
            kernel_shape = (shape[-1], *[n for n in out if n is not None])
            kernels[f"big/contract{i}"] = f[f"layers/{slot}/vars/0"] = gen.standard_normal(kernel_shape,
                                                                                            dtype=np.float32)
    with zipfile.ZipFile(path, "w") as z:  # stored, as Keras writes it
        z.writestr("config.json", json.dumps(config))
        z.write(weights, "model.weights.h5")
    weights.unlink()
    return kernels


MEASURE = """
import json, sys
import numpy, torch, h5py
import axisdot.port
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # resets the peak (VmHWM) to the current resident size: the imports' peak is not counted
baseline = status("VmRSS")
layers = axisdot.port.load(sys.argv[1])
peak = status("VmHWM")
kernels = {layer.name: layer.module.kernel.detach().numpy().tolist() for layer in layers}
print(json.dumps({"baseline": baseline, "peak": peak, "kernels": kernels}))
"""


def measure(path: Path) -> dict:
    """Port ``path`` in a fresh process: its baseline and peak resident bytes, and the kernels."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", MEASURE, str(path)], capture_output=True, text=True, check=True,
                         env=env)
    return json.loads(out.stdout)


def main(argv: "list[str] | None" = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dense-mib", type=int, default=1024, help="MiB of weights in Dense layers (default 1024)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "big.keras"
        kernels = make_model(path, args.dense_mib)
        result = measure(path)
        for name, kernel in kernels.items():
            np.testing.assert_array_equal(np.asarray(result["kernels"][name], np.float32), kernel)
        mib = 1 << 20
        ported = sum(k.nbytes for k in kernels.values())
        print(f"file {path.stat().st_size / mib:.0f} MiB ({args.dense_mib} MiB in Dense layers, "
              f"{ported / mib:.2f} MiB in {len(kernels)} EinsumDense kernels, checked against the values written)")
        print(f"peak resident memory over the import baseline: {(result['peak'] - result['baseline']) / mib:.0f} MiB "
              f"(baseline {result['baseline'] / mib:.0f} MiB after importing torch, h5py and axisdot)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
