"""A saved model is untrusted data: a catalogue of crafted ``.keras`` files, each made
here from a file Keras itself wrote, with the rule it breaks and the refusal it must
get. Nothing may be read from outside the file (a secret file's bytes never reach a
ported tensor), nothing allocated that the file merely declares (the dangerous cases
run in a subprocess under an address-space cap, so that a regression fails the test
instead of the run), and every refusal is an ``axisdot.ModelFileError`` (from the
command line: exit status 2, one line on stderr, no traceback).

The crafting follows Keras's own tests of its fixes (``keras/src/saving/
saving_lib_test.py``, ``file_editor_test.py``: external links, soft links, external
storage, virtual datasets, shape and decompression bombs)."""
from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

import axisdot
import axisdot.port
from axisdot.cli import main

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras", reason="keras (a test dependency) writes the honest model the cases start from")
h5py = pytest.importorskip("h5py", reason="h5py (the 'port' extra) reads and crafts the weights")
L = keras.layers

KERNEL = "layers/einsum_dense/vars/0"  # the EinsumDense "ff" kernel, (8, 16) float32
SECRET = bytes(range(256)) * 2  # 512 bytes no weight of the honest model holds


@pytest.fixture(scope="module")
def honest(tmp_path_factory):
    """A model Keras wrote: an EinsumDense ``ff`` then a MultiHeadAttention ``att``."""
    folder = tmp_path_factory.mktemp("honest")
    tokens = keras.Input((5, 8), name="tokens")
    h = L.EinsumDense("abc,cd->abd", (None, 16), bias_axes="d", name="ff")(tokens)
    out = L.MultiHeadAttention(num_heads=2, key_dim=4, name="att")(h, h)
    model = keras.Model(tokens, out, name="m")
    model.get_layer("ff").bias.assign(np.random.default_rng(0).standard_normal(16))
    model.save(folder / "model.keras")
    return model, folder / "model.keras"


@pytest.fixture(scope="module")
def secret(tmp_path_factory):
    """A host file the crafted models point at, and an HDF5 file holding its bytes."""
    folder = tmp_path_factory.mktemp("host")
    (folder / "secret.bin").write_bytes(SECRET)
    values = np.frombuffer(SECRET, dtype="<f4")[:128].reshape(8, 16)
    with h5py.File(folder / "secret.h5", "w") as f:
        f["kernel"] = values
        f["layer/vars/0"] = values
        f["layer/vars/1"] = np.frombuffer(SECRET, dtype="<f4")[:16]
    return folder


def members(path):
    with zipfile.ZipFile(path) as z:
        return {name: z.read(name) for name in z.namelist()}


def write_zip(path, items, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression) as z:
        for name, data in items.items():
            z.writestr(name, data)
    return path


def craft(src, dst, edit_h5=None, edit_config=None, compression=zipfile.ZIP_STORED):
    """``src`` rewritten: ``edit_h5(h5py.File)`` on its weights, ``edit_config(dict)`` on its config."""
    items = members(src)
    if edit_h5 is not None:
        scratch = dst.with_suffix(".h5")
        scratch.write_bytes(items["model.weights.h5"])
        with h5py.File(scratch, "r+") as f:
            edit_h5(f)
        items["model.weights.h5"] = scratch.read_bytes()
    if edit_config is not None:
        config = json.loads(items["config.json"])
        edit_config(config)
        items["config.json"] = json.dumps(config).encode()
    return write_zip(dst, items, compression)


def layer_config(config, name):
    return next(e for e in config["config"]["layers"] if e["config"].get("name") == name)


def replace(path, **kwargs):
    """An h5 edit: the kernel replaced by ``create_dataset(KERNEL, **kwargs)``."""
    def edit(f):
        del f[path]
        f.create_dataset(path, **kwargs)
    return edit


def relink(path, link):
    def edit(f):
        del f[path]
        f[path] = link
    return edit


def tensors_hold(layers, needle):
    """Whether any ported tensor's bytes contain ``needle``."""
    for layer in layers:
        for value in layer.module.state_dict().values():
            if not value.is_meta and needle in value.detach().cpu().contiguous().numpy().tobytes():
                return True
    return False


# ---- the catalogue ------------------------------------------------------------------------


def _virtual(secret):
    def edit(f):
        layout = h5py.VirtualLayout(shape=(8, 16), dtype="f4")
        layout[:] = h5py.VirtualSource(str(secret / "secret.h5"), "kernel", shape=(8, 16))
        del f[KERNEL]
        f.create_virtual_dataset(KERNEL, layout)
    return edit


def _huge_kernel(config):
    """The config of ``ff`` declares a (10^6, 10^6) kernel: 4 TB of float32."""
    entry = layer_config(config, "ff")
    entry["config"]["output_shape"] = [None, 10**6]
    entry["build_config"]["input_shape"] = [None, 5, 10**6]


def _wide_kernel(config):
    """The config of ``ff`` declares an (8, 2^31) kernel: 64 GiB of float32."""
    layer_config(config, "ff")["config"]["output_shape"] = [None, 2**31]


def _unknown_filter(f):
    """A dataset through HDF5 filter 32001 (Blosc, a plugin), flagged optional so that
    HDF5 writes it without the plugin."""
    del f[KERNEL]
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_chunk((8, 16))
    dcpl.set_filter(32001, h5py.h5z.FLAG_OPTIONAL, ())
    space = h5py.h5s.create_simple((8, 16))
    dataset = h5py.h5d.create(f.id, KERNEL.encode(), h5py.h5t.IEEE_F32LE, space, dcpl=dcpl)
    dataset.write(h5py.h5s.ALL, h5py.h5s.ALL, np.ones((8, 16), "f4"))


CASES = {  # id: (what it does to the honest file, given the secret folder; the words of the refusal)
    "external-storage": (lambda s: dict(edit_h5=replace(KERNEL, shape=(8, 16), dtype="f4",
                                                        external=[(str(s / "secret.bin"), 0, 512)])),
                         "external files"),
    "external-link-dataset": (lambda s: dict(edit_h5=relink(KERNEL, h5py.ExternalLink(str(s / "secret.h5"), "/kernel"))),
                              "ExternalLink"),
    "external-link-group": (lambda s: dict(edit_h5=relink("layers/einsum_dense",
                                                          h5py.ExternalLink(str(s / "secret.h5"), "/layer"))),
                            "ExternalLink"),
    "soft-link": (lambda s: dict(edit_h5=relink(KERNEL, h5py.SoftLink("/layers/multi_head_attention/query_dense/"
                                                                      "vars/0"))), "SoftLink"),
    "virtual-dataset": (lambda s: dict(edit_h5=_virtual(s)), "virtual dataset"),
    "plugin-filter": (lambda s: dict(edit_h5=_unknown_filter), "filter 32001"),
    "string-weights": (lambda s: dict(edit_h5=replace(KERNEL, data=np.full((8, 16), b"abcd"))), "holds |S4 values"),
    "object-weights": (lambda s: dict(edit_h5=replace(KERNEL, shape=(8, 16), dtype=h5py.string_dtype())),
                       "holds object values"),
    "compound-weights": (lambda s: dict(edit_h5=replace(KERNEL, shape=(8, 16), dtype=[("a", "<f4"), ("b", "<f4")])),
                         "holds"),
    "complex-weights": (lambda s: dict(edit_h5=replace(KERNEL, data=np.ones((8, 16), "c8"))), "holds complex64"),
    "null-dataspace": (lambda s: dict(edit_h5=replace(KERNEL, data=h5py.Empty("f4"))), "no shape"),
    "dataset-is-a-group": (lambda s: dict(edit_h5=lambda f: (f.__delitem__(KERNEL), f.create_group(KERNEL))),
                           "is missing or is a group where a dataset is expected"),
    "vars-not-numbered": (lambda s: dict(edit_h5=lambda f: f.move(KERNEL, "layers/einsum_dense/vars/x")),
                          "named 0, 1"),
    "shape-bomb-mismatched": (lambda s: dict(edit_h5=replace(KERNEL, shape=(10**6, 10**6), dtype="f4",
                                                             chunks=(1, 1024))), "(1000000, 1000000)"),
    "huge-declared-kernel": (lambda s: dict(edit_config=_huge_kernel), "makes it (1000000, 1000000)"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_crafted_weights_file_is_refused_naming_file_layer_dataset_and_rule(honest, secret, tmp_path, case):
    recipe, words = CASES[case]
    path = craft(honest[1], tmp_path / f"{case}.keras", **recipe(secret))
    with pytest.raises(axisdot.ModelFileError) as info:
        axisdot.port.load(path)
    message = str(info.value)
    assert words in message, message
    assert str(path) in message and "'m/ff'" in message, message  # the file and the layer
    if case not in ("huge-declared-kernel", "external-link-group"):
        assert "/layers/einsum_dense" in message, message  # the dataset


def test_a_refusal_from_the_command_is_one_line_exit_2_no_traceback(honest, secret, tmp_path, capsys):
    path = craft(honest[1], tmp_path / "leak.keras", **CASES["external-storage"][0](secret))
    assert main(["port", str(path), "--weights", str(tmp_path / "out.pt")]) == 2
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and err.startswith("axisdot: error: ") and "external files" in err, err
    assert not (tmp_path / "out.pt").exists()


def test_no_crafted_file_lets_a_secret_byte_into_a_ported_tensor(honest, secret, tmp_path):
    """Every link and storage case, loaded with every refusal caught: whatever loads
    (nothing should) holds none of the secret's bytes."""
    needle = SECRET[16:48]
    for case in ("external-storage", "external-link-dataset", "external-link-group", "virtual-dataset"):
        path = craft(honest[1], tmp_path / f"{case}.keras", **CASES[case][0](secret))
        try:
            layers = axisdot.port.load(path)
        except axisdot.ModelFileError:
            continue
        assert not tensors_hold(layers, needle), case  # pragma: no cover - a leak


def test_listing_a_huge_declared_kernel_builds_nothing(honest, tmp_path):
    path = craft(honest[1], tmp_path / "huge.keras", edit_config=_huge_kernel)
    ff = next(layer for layer in axisdot.port.port(path) if layer.name == "m/ff")
    assert ff.weights == {"kernel": [10**6, 10**6], "bias": [10**6]}
    assert all(t.is_meta for t in ff.module.state_dict().values())


# ---- honest variants of the same machinery -------------------------------------------------


def _keras_weights(model):
    return {"m/ff": [keras.ops.convert_to_numpy(w) for w in model.get_layer("ff").weights]}


@pytest.mark.parametrize("variant", ["as-saved", "big-endian", "chunked-gzip", "deflated-archive"])
def test_honest_files_written_other_ways_load_exactly(honest, tmp_path, variant):
    model, src = honest
    kernel = keras.ops.convert_to_numpy(model.get_layer("ff").kernel)
    edits = {
        "as-saved": {},
        "big-endian": dict(edit_h5=replace(KERNEL, data=kernel.astype(">f4"))),
        "chunked-gzip": dict(edit_h5=replace(KERNEL, data=kernel, chunks=(4, 4), compression="gzip", shuffle=True,
                                             fletcher32=True)),
        "deflated-archive": dict(compression=zipfile.ZIP_DEFLATED),
    }
    path = craft(src, tmp_path / f"{variant}.keras", **edits[variant])
    layers = {layer.name: layer for layer in axisdot.port.load(path)}
    np.testing.assert_array_equal(layers["m/ff"].module.kernel.detach().numpy(), kernel)
    np.testing.assert_array_equal(layers["m/ff"].module.bias.detach().numpy(),
                                  keras.ops.convert_to_numpy(model.get_layer("ff").bias))
    x = torch.randn(3, 5, 8)
    np.testing.assert_allclose(layers["m/att"].module(layers["m/ff"].module(x), layers["m/ff"].module(x)).detach(),
                               keras.ops.convert_to_numpy(model(x)), atol=2e-5)
    assert not any(t.is_meta for layer in layers.values() for t in layer.module.state_dict().values())


# ---- archives: zip structure, JSON -----------------------------------------------------------


def _flip_in_weights(data: bytes) -> bytes:
    start = data.index(b"\x89HDF")  # the stored weights member
    flipped = bytearray(data)
    flipped[start + 3000] ^= 0x10
    return bytes(flipped)


ARCHIVES = {  # id: (bytes of the crafted file from the honest file's bytes and members; the words of the refusal)
    "truncated": (lambda data, items: data[: len(data) * 2 // 3], "corrupt"),
    "bit-flipped-weights": (lambda data, items: _flip_in_weights(data), "corrupt"),
    "random-bytes": (lambda data, items: np.random.default_rng(1).bytes(5000), "binary content"),
    "random-weights-member": (lambda data, items: {**items, "model.weights.h5": np.random.default_rng(2).bytes(4096)},
                              "not a readable HDF5 file"),
    "weights-member-is-json": (lambda data, items: {**items, "model.weights.h5": b"{}"}, "not a readable HDF5 file"),
    "config-not-json": (lambda data, items: {**items, "config.json": b"\x00\x01"}, "not a .keras file"),
    "config-a-list": (lambda data, items: {**items, "config.json": b"[1, 2]"}, "not a Keras model"),
    "huge-integer": (lambda data, items: {**items, "config.json": b"1" * 5000}, "not a .keras file"),
}


@pytest.mark.parametrize("case", sorted(ARCHIVES))
def test_a_damaged_archive_is_refused(honest, tmp_path, case, capsys):
    make, words = ARCHIVES[case]
    data = honest[1].read_bytes()
    made = make(data, members(honest[1]))
    path = tmp_path / f"{case}.keras"
    if isinstance(made, dict):
        write_zip(path, made)
    else:
        path.write_bytes(made)
    with pytest.raises(axisdot.ModelFileError, match=words):
        axisdot.port.load(path)
    assert main(["port", str(path), "--weights", str(tmp_path / "o.pt")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err


def test_duplicate_members_are_refused_as_ambiguous(honest, tmp_path):
    items = members(honest[1])
    path = tmp_path / "twice.keras"
    with zipfile.ZipFile(path, "w") as z, pytest.warns(UserWarning, match="Duplicate name"):
        for name, data in items.items():
            z.writestr(name, data)
        z.writestr("config.json", json.dumps({"class_name": "Sequential", "config": {"layers": []}}))
    with pytest.raises(axisdot.ModelFileError, match="2 members named 'config.json'"):
        axisdot.port.port(path)


def test_bounds_are_the_callers_to_move(honest, tmp_path):
    limits = axisdot.port.Limits(max_layers=2)
    with pytest.raises(axisdot.ModelFileError, match="layers, over the bound"):
        axisdot.port.port(honest[1], limits)
    with pytest.raises(axisdot.ModelFileError, match="max_config_bytes"):
        axisdot.port.port(honest[1], axisdot.port.Limits(max_config_bytes=1000))
    with pytest.raises(axisdot.ModelFileError, match="nests deeper"):
        axisdot.port.port(honest[1], axisdot.port.Limits(max_json_depth=4))
    assert len(axisdot.port.load(honest[1], axisdot.port.Limits(max_json_depth=64))) == 2


# ---- the dangerous ones: a subprocess under an address-space cap ------------------------------

CAPPED = """
import resource, sys
import torch, numpy, h5py
import axisdot.port
from axisdot.cli import main
torch.set_num_threads(1)
for line in open("/proc/self/status"):
    if line.startswith("VmSize:"):
        mapped = int(line.split()[1]) * 1024
resource.setrlimit(resource.RLIMIT_AS, (mapped + {headroom}, resource.RLIM_INFINITY))
sys.exit(main(sys.argv[1:]))
"""


def run_capped(*argv, headroom=768 << 20, timeout=120):
    """``axisdot ARGV`` in a subprocess that can map at most ``headroom`` bytes more than
    its imports did."""
    env = {**os.environ, "KERAS_BACKEND": "torch", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", CAPPED.format(headroom=headroom), *map(str, argv)],
                          capture_output=True, text=True, timeout=timeout, env=env)


def _raw_zip(path, entries):
    """A zip written by hand, so that its headers say what the case needs: ``entries``
    is ``(name, method, stored bytes, declared size, crc)``."""
    with open(path, "wb") as out:
        central = b""
        for name, method, data, size, crc in entries:
            offset = out.tell()
            name_b = name.encode()
            out.write(struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, method, 0, 0, crc, len(data), size,
                                  len(name_b), 0) + name_b + data)
            central += struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, 0, method, 0, 0, crc, len(data),
                                   size, len(name_b), 0, 0, 0, 0, 0, offset) + name_b
        start = out.tell()
        out.write(central + struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(entries), len(entries),
                                        len(central), start, 0))
    return path


def _deflate_bomb(total, unit=b" "):
    """(raw deflate bytes, crc) of ``total`` bytes of ``unit``, made fast: one 16 MiB block
    compressed once after a full flush is the same bytes every time."""
    block = unit * (1 << 24)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    piece = c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)
    count = total // len(block)
    crc = 0
    for _ in range(count):
        crc = zlib.crc32(block, crc)
    return piece * count + zlib.compressobj(9, zlib.DEFLATED, -15).flush(), crc, count * len(block)


@pytest.fixture(scope="module")
def bombs(honest, tmp_path_factory):
    folder = tmp_path_factory.mktemp("bombs")
    items = members(honest[1])
    config, weights = items["config.json"], items["model.weights.h5"]
    plain = ("config.json", 0, config, len(config), zlib.crc32(config))
    stored = ("model.weights.h5", 0, weights, len(weights), zlib.crc32(weights))
    made = {}
    data, crc, size = _deflate_bomb(2 << 30)  # 2 GiB of spaces: valid JSON padding, ~2 MiB stored
    made["config-bomb"] = _raw_zip(folder / "config-bomb.keras", [("config.json", 8, data, size, crc), stored])
    # a header that lies: config.json declares its honest size, the stream inflates to 2 GiB
    made["config-lying-header"] = _raw_zip(folder / "lying.keras",
                                           [("config.json", 8, data, len(config), zlib.crc32(config)), stored])
    made["weights-bomb"] = _raw_zip(folder / "weights-bomb.keras", [plain, ("model.weights.h5", 8, data, size, crc)])
    made["deep-json"] = write_zip(folder / "deep.keras", {"config.json": b"[" * 200_000 + b"]" * 200_000,
                                                          "model.weights.h5": weights})
    many = {"class_name": "Sequential", "config": {"name": "s", "layers": [{"class_name": "Dense", "config": {}}]
                                                   * 100_001}}
    made["many-layers"] = write_zip(folder / "many.keras", {"config.json": json.dumps(many).encode()})
    made["shape-bomb"] = craft(honest[1], folder / "shape-bomb.keras", edit_config=_wide_kernel,
                               edit_h5=replace(KERNEL, shape=(8, 2**31), dtype="f4", chunks=(1, 1 << 20)))
    made["huge-declared-kernel"] = craft(honest[1], folder / "huge.keras", edit_config=_huge_kernel)
    return made


@pytest.mark.slow
@pytest.mark.parametrize("case, words", [
    ("config-bomb", "over the bound of 67108864"),
    ("config-lying-header", "corrupt"),
    ("weights-bomb", "decompression bomb"),
    ("deep-json", "nests deeper"),
    ("many-layers", "layers, over the bound"),
    ("shape-bomb", "shape bomb"),
    ("huge-declared-kernel", "makes it (1000000, 1000000)"),
])
def test_bombs_are_refused_without_allocating_what_they_declare(bombs, tmp_path, case, words):
    result = run_capped("port", bombs[case], "--weights", tmp_path / "out.pt")
    assert result.returncode == 2, result.stderr[-3000:]
    assert words in result.stderr and result.stderr.count("\n") == 1, result.stderr[-3000:]


@pytest.mark.slow
def test_listing_a_huge_declared_kernel_allocates_nothing_under_the_cap(bombs):
    result = run_capped("port", bombs["huge-declared-kernel"], "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    listed = {layer["name"]: layer for layer in json.loads(result.stdout)["layers"]}
    assert listed["m/ff"]["weights"]["kernel"] == [10**6, 10**6]


@pytest.mark.slow
def test_the_cap_leaves_room_for_an_honest_load(honest, tmp_path):
    """The control: the same cap lets the honest file port with its weights (so the
    refusals above are the reader's, not the cap's)."""
    result = run_capped("port", honest[1], "--weights", tmp_path / "out.pt")
    assert result.returncode == 0, result.stderr[-3000:]
    states = torch.load(tmp_path / "out.pt", weights_only=True)
    np.testing.assert_array_equal(states["m/ff"]["kernel"].numpy(),
                                  keras.ops.convert_to_numpy(honest[0].get_layer("ff").kernel))


# ---- mutations of a real file: a clean load or a ModelFileError, never anything else --------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

# no subnormal floats: a library loaded earlier (compiled kernels on some torch builds) can set
# flush-to-zero, and hypothesis then refuses to draw them
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_subnormal=False)
                    | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                 max_size=3), max_leaves=8)


def _replace_subtree(config, draw_index, value):
    """``config`` with one of its nodes (picked by ``draw_index``) replaced by ``value``."""
    nodes = []
    stack = [(config, None, None)]
    while stack:
        node, parent, key = stack.pop()
        nodes.append((parent, key))
        children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        stack.extend((child, node, k) for k, child in children)
    parent, key = nodes[draw_index(len(nodes))]
    if parent is None:
        return value
    parent[key] = value
    return config


@st.composite
def mutated(draw, items, data):
    kind = draw(st.sampled_from(["truncate", "flip", "weights-bytes", "replace-member", "config-tree"]))
    if kind == "truncate":
        return data[: draw(st.integers(0, len(data) - 1))]
    if kind == "flip":
        out = bytearray(data)
        for _ in range(draw(st.integers(1, 4))):
            out[draw(st.integers(0, len(out) - 1))] ^= 1 << draw(st.integers(0, 7))
        return bytes(out)
    items = dict(items)
    if kind == "weights-bytes":  # bytes of the HDF5 file changed and the zip's CRC made to match
        h5 = bytearray(items["model.weights.h5"])
        for _ in range(draw(st.integers(1, 16))):
            h5[draw(st.integers(0, len(h5) - 1))] = draw(st.integers(0, 255))
        items["model.weights.h5"] = bytes(h5)
    elif kind == "replace-member":
        name = draw(st.sampled_from(sorted(items)))
        items[name] = draw(st.binary(max_size=64) | st.sampled_from([b"{}", b"[]", b"null", items["config.json"]]))
    else:
        config = json.loads(items["config.json"])
        config = _replace_subtree(config, lambda n: draw(st.integers(0, n - 1)), draw(JSON))
        items["config.json"] = json.dumps(config).encode()
    return items


@pytest.mark.slow
def test_a_mutated_real_file_loads_cleanly_or_is_refused(honest, tmp_path_factory):
    import faulthandler

    data = honest[1].read_bytes()
    items = members(honest[1])
    folder = tmp_path_factory.mktemp("mutants")

    @settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(mutated(items, data))
    def check(made):
        path = folder / "mutant.keras"
        if isinstance(made, dict):
            write_zip(path, made)
        else:
            path.write_bytes(made)
        faulthandler.dump_traceback_later(60, exit=True)  # a hang fails the run, with where it hung
        try:
            for read in (axisdot.port.port, axisdot.port.load):
                try:
                    layers = read(path)
                except axisdot.ModelFileError:
                    continue
                if read is axisdot.port.load:
                    assert not any(t.is_meta for layer in layers for t in layer.module.state_dict().values())
        finally:
            faulthandler.cancel_dump_traceback_later()

    check()


# ---- streaming: memory holds the ported layers' weights, not the file ------------------------


@pytest.mark.slow
def test_porting_reads_the_ported_layers_not_the_whole_file(tmp_path):
    """``benchmarks/port_memory.py`` at a quarter of its size: 128 MiB of Dense weights
    that are not ported, three EinsumDense kernels that are. The whole file read into
    memory (as before) costs twice its size; layer by layer, a few MiB."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("port_memory", Path(__file__).parent.parent / "benchmarks" /
                                                  "port_memory.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    kernels = bench.make_model(tmp_path / "big.keras", dense_mib=128)
    result = bench.measure(tmp_path / "big.keras")
    for name, kernel in kernels.items():
        np.testing.assert_array_equal(np.asarray(result["kernels"][name], np.float32), kernel)
    assert result["peak"] - result["baseline"] < 48 << 20, (result["peak"] - result["baseline"]) >> 20


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="the bound reads /proc (Linux)")
def test_keras_builds_under_a_bound_that_is_restored_after():
    """What a custom class's build runs under (``axisdot.port.live``): an allocation past
    the bound fails at once, and the process's own limit is back afterwards."""
    import resource

    from axisdot.port.live import _address_space

    before = resource.getrlimit(resource.RLIMIT_AS)
    with _address_space(256 << 20):
        small = torch.empty(1 << 20)  # 4 MiB: within
        with pytest.raises((RuntimeError, MemoryError)):
            torch.empty(1 << 30)  # 4 GiB: past it, refused without being touched
    assert resource.getrlimit(resource.RLIMIT_AS) == before
    assert torch.empty(1 << 28).numel() == 1 << 28 and small.numel() == 1 << 20  # 1 GiB: fine again
