"""torch.einsum's own test cases (and some of opt_einsum's and NumPy's), ported to check
``axisdot.einsum`` as a drop-in replacement for ``torch.einsum``.

The oracle is ``torch.einsum`` on the very same arguments (values, shape and dtype must
match). Where torch cannot express a case (non-ASCII subscripts, chains of more than 52
symbols, ``optimize=`` / ``memory_limit=``), the oracle is ``torch.einsum`` on an
equivalent ASCII equation, ``opt_einsum.contract(..., backend="torch")`` or
``numpy.einsum``; each such place says so. Where NumPy accepts a broadcasting or
implicit-output case, it is compared against ``numpy.einsum`` as well.

Sources (each group below names its own):
  * pytorch/pytorch  test/test_linalg.py  (TestLinalg._check_einsum, test_einsum,
    test_einsum_sublist_format, test_einsum_random, test_einsum_corner_cases,
    test_einsum_error_cases); read at commit fcca03a149a1d179517aa3a309b641a9393552e1.
  * dgasmith/opt_einsum  opt_einsum/tests/{test_contract,test_input,test_edge_cases,
    test_paths}.py; read at commit 2ebc7b809cf0e1f584fe70bc90d2c0e6b5b7c521.
  * numpy/numpy  numpy/_core/tests/test_einsum.py  (as shipped with numpy 2.4).

Deterministic: every random tensor comes from a torch.Generator seeded from the case id.
"""
from __future__ import annotations

import functools
import itertools
import random
import zlib

import numpy as np
import opt_einsum as oe
import pytest
import torch

import axisdot

F64 = torch.float64
C128 = torch.complex128


# ----------------------------------------------------------------------------- helpers

def _seed(*parts) -> int:
    return zlib.crc32(repr(parts).encode()) & 0x7FFFFFFF


def _rand(shape, *seed, dtype=F64, noncontiguous=False) -> torch.Tensor:
    """Random values (float64 / complex128 unless told), from a generator seeded by ``seed``."""
    g = torch.Generator().manual_seed(_seed(tuple(shape), dtype, *seed))
    shape = tuple(shape)
    if noncontiguous and shape:
        # like torch.testing.make_tensor(noncontiguous=True): every other element of the last dim
        big = torch.randn((*shape[:-1], 2 * shape[-1]), generator=g, dtype=dtype)
        out = big[..., ::2]
        assert not out.is_contiguous() or out.numel() <= 1
        return out
    return torch.randn(shape, generator=g, dtype=dtype)


def _small_ints(shape, *seed, dtype) -> torch.Tensor:
    """Values 0..3 cast to ``dtype`` (exact in every dtype, even bfloat16)."""
    g = torch.Generator().manual_seed(_seed(tuple(shape), *seed))
    t = torch.randint(0, 4, tuple(shape), generator=g)
    if dtype == torch.bool:
        return t >= 2
    return t.to(dtype)


def check(got, expected) -> None:
    """``got`` equals ``expected``: a tensor of the same dtype and shape and close values."""
    assert isinstance(got, torch.Tensor), f"axisdot.einsum returned {type(got).__name__}"
    assert got.dtype == expected.dtype, f"dtype {got.dtype} != torch's {expected.dtype}"
    assert got.shape == expected.shape, f"shape {tuple(got.shape)} != torch's {tuple(expected.shape)}"
    torch.testing.assert_close(got, expected)


def check_numpy(got, *np_args, **np_kwargs) -> None:
    """Also compare against numpy.einsum (values and shape; numpy's dtypes differ for 0-d/ints)."""
    ref = np.asarray(np.einsum(*np_args, **np_kwargs))
    assert tuple(got.shape) == ref.shape, f"shape {tuple(got.shape)} != numpy's {ref.shape}"
    torch.testing.assert_close(got, torch.from_numpy(ref).to(got.dtype), check_dtype=False)


def _np(args):
    return [a.numpy() if isinstance(a, torch.Tensor) else a for a in args]


def _label_char(label) -> str:
    # torch's own convention (torch/functional.py, test_einsum_random): 0..25 -> A..Z, 26..51 -> a..z
    if label is Ellipsis:
        return "..."
    return chr(ord("A") + label) if label < 26 else chr(ord("a") + label - 26)


# ===================================================================================
# Group 1 -- pytorch/pytorch test/test_linalg.py :: TestLinalg.test_einsum
# (cases from https://gist.github.com/rockt/15ee013889d65342088e9260a377dc8f), run by torch
# for dtypes double and cdouble through _check_einsum, which compares with np.einsum.
# ===================================================================================

@functools.lru_cache(maxsize=None)
def _torch_test_einsum_tensors(dtype):
    s = "test_einsum"
    t = {
        "x": _rand((5,), s, "x", dtype=dtype),
        "y": _rand((7,), s, "y", dtype=dtype),
        "A": _rand((3, 5), s, "A", dtype=dtype),
        "B": _rand((2, 5), s, "B", dtype=dtype),
        "C": _rand((2, 3, 5), s, "C", dtype=dtype),
        "D": _rand((2, 5, 7), s, "D", dtype=dtype),
        "E": _rand((7, 9), s, "E", dtype=dtype),
        "F": _rand((2, 3, 3, 5), s, "F", dtype=dtype),
        "G": _rand((5, 4, 6), s, "G", dtype=dtype),
        "H": _rand((4, 4), s, "H", dtype=dtype),
        "I": _rand((2, 3, 2), s, "I", dtype=dtype),
        "N21314": _rand((2, 1, 3, 1, 4), s, "N", dtype=dtype),
        "M53": _rand((5, 3), s, "M53", dtype=dtype),
        "M2523": _rand((2, 5, 2, 3), s, "M2523", dtype=dtype),
        # torch.bilinear with noncontiguous tensors
        "l": _rand((5, 10), s, "l", dtype=dtype, noncontiguous=True),
        "r": _rand((5, 20), s, "r", dtype=dtype, noncontiguous=True),
        "w": _rand((15, 10, 20), s, "w", dtype=dtype),
    }
    t["At"] = t["A"].t()
    # "with strided tensors"
    t["l_s"] = t["l"][:, ::2]
    t["w_s"] = t["w"][:, ::2, ::2]
    t["r_s"] = t["r"][:, ::2]
    return t


TORCH_TEST_EINSUM = [
    # Vector operations
    ("sum", "i->", "x"),
    ("dot", "i,i->", "x x"),
    ("vector-elementwise-mul", "i,i->i", "x x"),
    ("outer", "i,j->ij", "x y"),
    # Matrix operations
    ("transpose", "ij->ji", "A"),
    ("row-sum", "ij->j", "A"),
    ("col-sum", "ij->i", "A"),
    ("matrix-elementwise-mul", "ij,ij->ij", "A A"),
    ("matvec", "ij,j->i", "A x"),
    ("matmul", "ij,kj->ik", "A B"),
    ("matrix-outer", "ij,ab->ijab", "A E"),
    # Tensor operations
    ("batch-matmul", "Aij,Ajk->Aik", "C D"),
    ("tensor-matrix-1", "ijk,jk->i", "C A"),
    ("tensor-matrix-2", "aij,jk->aik", "D E"),
    ("tensor-tensor", "abCd,dFg->abCFg", "F G"),
    ("tensor-matrix-double-1", "ijk,jk->ik", "C A"),
    ("tensor-matrix-double-2", "ijk,jk->ij", "C A"),
    ("non-contiguous", "ijk,ik->j", "C B"),
    ("non-contiguous-double", "ijk,ik->jk", "C B"),
    # Test diagonals
    ("trace", "ii", "H"),
    ("diagonal", "ii->i", "H"),
    ("non-contiguous-trace", "iji->j", "I"),
    ("diag-ellipsis", "ngrg...->nrg...", "N21314"),
    # Test ellipsis
    ("ellipsis-sum-first", "i...->...", "H"),
    ("ellipsis-ki", "ki,...k->i...", "At B"),
    ("ellipsis-k", "k...,jk->...", "At B"),
    ("ellipsis-spaces", "...ik, ...j -> ...ij", "C x"),
    ("ellipsis-middle", "Bik,k...j->i...j", "C M53"),
    ("ellipsis-reorder", "i...j, ij... -> ...ij", "C M2523"),
    # torch.bilinear with noncontiguous tensors
    ("bilinear-noncontiguous", "bn,anm,bm->ba", "l w r"),
    # with strided tensors
    ("bilinear-strided", "bn,Anm,bm->bA", "l_s w_s r_s"),
    # test multiple inputs
    ("six-inputs", "...,be,b...,beg,gi,bc...->bi...", "A B C D E F"),
]


@pytest.mark.parametrize("dtype", [F64, C128], ids=["float64", "complex128"])
@pytest.mark.parametrize("eq,names", [c[1:] for c in TORCH_TEST_EINSUM], ids=[c[0] for c in TORCH_TEST_EINSUM])
def test_torch_test_einsum(eq, names, dtype):
    t = _torch_test_einsum_tensors(dtype)
    ops = [t[n] for n in names.split()]
    expected = torch.einsum(eq, *ops)
    got = axisdot.einsum(eq, *ops)
    check(got, expected)
    check_numpy(got, eq, *_np(ops))  # what torch's _check_einsum compares with


# torch's _check_einsum (at the commit above) also reruns every case under
# torch.backends.opt_einsum.flags(enabled=False), (strategy='greedy') and (strategy='optimal');
# axisdot's counterpart is the optimize= keyword.
@pytest.mark.parametrize("optimize", [False, "greedy", "optimal"], ids=["False", "greedy", "optimal"])
@pytest.mark.parametrize("eq,names", [c[1:] for c in TORCH_TEST_EINSUM], ids=[c[0] for c in TORCH_TEST_EINSUM])
def test_torch_test_einsum_opt_einsum_flags(eq, names, optimize):
    t = _torch_test_einsum_tensors(F64)
    ops = [t[n] for n in names.split()]
    expected = torch.einsum(eq, *ops)
    check(axisdot.einsum(eq, *ops, optimize=optimize), expected)


# ===================================================================================
# Group 2 -- the sublist format.
# 2a: pytorch/pytorch test/test_linalg.py :: TestLinalg.test_einsum_sublist_format
# ===================================================================================

def _sub_tensors(dtype):
    s = "test_einsum_sublist_format"
    t = {
        "x": _rand((5,), s, "x", dtype=dtype),
        "y": _rand((7,), s, "y", dtype=dtype),
        "A": _rand((3, 5), s, "A", dtype=dtype),
        "B": _rand((2, 5), s, "B", dtype=dtype),
        "C": _rand((2, 1, 3, 1, 4), s, "C", dtype=dtype),
        "l": _rand((5, 10), s, "l", dtype=dtype, noncontiguous=True),
        "r": _rand((5, 20), s, "r", dtype=dtype, noncontiguous=True),
        "w": _rand((15, 10, 20), s, "w", dtype=dtype),
    }
    t["At"] = t["A"].t()
    return t


E = Ellipsis  # short for the sublist cases below (torch and numpy write `Ellipsis`)
TORCH_SUBLIST = [
    ("x[0]-implicit", ("x", [0])),
    ("x[0]->[]", ("x", [0], [])),
    ("outer", ("x", [0], "y", [1], [0, 1])),
    ("transpose", ("A", [0, 1], [1, 0])),
    ("matvec", ("A", [0, 1], "x", [1], [0])),
    ("matmul-implicit", ("A", [0, 1], "B", [2, 1])),
    ("matmul", ("A", [0, 1], "B", [2, 1], [0, 2])),
    ("diag-ellipsis", ("C", [0, 1, 2, 1, E], [0, 2, 1, E])),
    ("ellipsis-implicit", ("At", [0, 1], "B", [E, 0])),
    ("ellipsis-explicit", ("At", [0, 1], "B", [E, 0], [1, E])),
    ("ellipsis-first-operand", ("At", [0, E], "B", [1, 0], [E])),
    # torch.bilinear with noncontiguous tensors, labels up to 50
    ("bilinear-labels-40-50", ("l", [40, 41], "w", [2, 41, 50], "r", [40, 50], [40, 2])),
]


def _materialize(spec, tensors):
    return tuple(tensors[a] if isinstance(a, str) else a for a in spec)


@pytest.mark.parametrize("dtype", [F64, C128], ids=["float64", "complex128"])
@pytest.mark.parametrize("spec", [c[1] for c in TORCH_SUBLIST], ids=[c[0] for c in TORCH_SUBLIST])
def test_torch_sublist_format(spec, dtype):
    args = _materialize(spec, _sub_tensors(dtype))
    expected = torch.einsum(*args)
    got = axisdot.einsum(*args)
    check(got, expected)
    check_numpy(got, *_np(args))


# 2b: numpy/numpy numpy/_core/tests/test_einsum.py :: TestEinsum.test_einsum_views (the sublist
#     twins of its equation cases), test_subscript_range (labels 20, 27, 51), and
#     test_einsum_sorting_behavior (27 labels, implicit output sorted as torch sorts: 0..25 = A..Z
#     before 26.. = a..z);
#     dgasmith/opt_einsum opt_einsum/tests/test_input.py :: test_ellipse_input1..4 and
#     test_input_formats_shapes (interleaved labels 1..4);
#     plus "added here" cases probing the implicit-output order of sublists and the full 0..51 range.
def _numpy_sublist_cases():
    a23 = _rand((2, 3), "np-sub", "a23")
    b34 = _rand((3, 4), "np-sub", "b34")
    a33 = _rand((3, 3), "np-sub", "a33")
    a333 = _rand((3, 3, 3), "np-sub", "a333")
    e = _rand((2, 3, 4), "oe-ellipse", "e")  # '...a' operands, as opt_einsum's build_views(replace_ellipsis=True)
    f = _rand((2, 3, 5), "oe-ellipse", "f")
    s1, s2 = _rand((2, 3, 4), "oe-shapes", 1), _rand((3, 4, 5), "oe-shapes", 2)
    ones27 = _rand((1,) * 25 + (2, 3), "np-sorting")
    # 52 distinct labels across two operands (torch and numpy accept labels in [0, 52))
    x26 = _rand((1,) * 20 + (2,) + (1,) * 5, "all-52", "x")
    y26 = _rand((1,) * 24 + (3, 1), "all-52", "y")
    return [
        # numpy test_einsum_views
        ("np-views-passthrough-ellipsis", (a23, [E])),
        ("np-views-identity", (a23, [0, 1])),
        ("np-views-transpose", (a23, [1, 0])),
        ("np-views-diagonal", (a33, [0, 0], [0])),
        ("np-views-...ii->...i", (a333, [E, 0, 0], [E, 0])),
        ("np-views-ii...->...i", (a333, [0, 0, E], [E, 0])),
        ("np-views-...ii->i...", (a333, [E, 0, 0], [0, E])),
        ("np-views-jii->ij", (a333, [1, 0, 0], [0, 1])),
        ("np-views-ii...->i...", (a333, [0, 0, E], [0, E])),
        ("np-views-i...i->i...", (a333, [0, E, 0], [0, E])),
        ("np-views-i...i->...i", (a333, [0, E, 0], [E, 0])),
        ("np-sums-...i->...", (a333, [E, 0], [E])),
        ("np-sums-i...->...", (a333, [0, E], [E])),
        ("np-sums-...,...", (a333, [E], a333, [E])),
        ("np-sums-...i,...i", (a333, [E, 0], a333, [E, 0])),
        ("np-sums-i...,i...", (a333, [0, E], a333, [0, E])),
        # numpy test_subscript_range
        ("np-range-label-20", (a23, [0, 20], b34, [20, 2], [0, 2])),
        ("np-range-label-27", (a23, [0, 27], b34, [27, 2], [0, 2])),
        ("np-range-label-51", (a23, [0, 51], b34, [51, 2], [0, 2])),
        # numpy test_einsum_sorting_behavior: implicit output over 27 labels
        ("np-sorting-27-labels-implicit", (ones27, list(range(27)))),
        ("np-sorting-27-labels-reversed", (ones27, list(range(27))[::-1])),
        # opt_einsum test_ellipse_input1..4
        ("oe-ellipse-1", (e, [E, 0], [E])),
        ("oe-ellipse-2", (e, [E, 0])),
        ("oe-ellipse-3", (e, [E, 0], [E, 0])),
        ("oe-ellipse-4", (e, [E, 1], f, [E, 0], [E])),
        # opt_einsum test_input_formats_shapes ("abc,bcd->da" as interleaved labels)
        ("oe-interleaved-1234", (s1, [1, 2, 3], s2, [2, 3, 4], [4, 1])),
        # added here: implicit output of sublists is sorted by integer label
        ("implicit-order-[30,2]", (a23, [30, 2])),
        ("implicit-order-[2,30]", (a23, [2, 30])),
        ("implicit-order-[26,25]", (a23, [26, 25])),
        ("implicit-order-mixed", (a23, [27, 1], b34, [1, 0])),
        ("implicit-ellipsis-first", (a333, [5, E, 0])),
        ("tuple-sublists", (a23, (0, 1), b34, (1, 2), (2, 0))),
        ("all-52-labels-outer", (x26, list(range(26)), y26, list(range(26, 52)))),
        ("all-52-labels-explicit-out", (x26, list(range(26)), y26, list(range(26, 52)), list(range(51, -1, -1)))),
    ]


NUMPY_SUBLIST = _numpy_sublist_cases()


@pytest.mark.parametrize("args", [c[1] for c in NUMPY_SUBLIST], ids=[c[0] for c in NUMPY_SUBLIST])
def test_sublist_more(args):
    expected = torch.einsum(*args)
    got = axisdot.einsum(*args)
    check(got, expected)
    check_numpy(got, *_np(args))


# ===================================================================================
# Group 3 -- pytorch/pytorch test/test_linalg.py :: TestLinalg.test_einsum_random
# The same generator (5 labels, 1..4 operands, 1..3 dims, sizes 1..8, diagonals, ellipsis with
# p=0.5, size-1 broadcasting with p=0.1), driven by a seeded random.Random, fewer cases (torch
# runs 500). Each case runs in equation form and sublist form, implicit and explicit output,
# compared with torch.einsum and (equation form, as torch does, numpy gh-10926) np.einsum.
# ===================================================================================

def _torch_random_cases(n=30, seed=20240601, n_labels=5, min_ops=1, max_ops=4, min_dims=1, max_dims=3,
                        min_size=1, max_size=8, max_out_dim=3, ellipsis_prob=0.5, broadcasting_prob=0.1):
    rng = random.Random(seed)
    cases = []
    for case in range(n):
        possible_labels = rng.sample(range(52), n_labels)
        labels_size = {lab: rng.randint(min_size, max_size) for lab in range(52)}
        ellipsis_shape = [rng.randint(min_size, max_size) for _ in range(max_dims - min_dims)]
        shapes, sublists, valid_labels, ell_size = [], [], set(), 0
        for _ in range(rng.randint(min_ops, max_ops)):
            n_dim = rng.randint(min_dims, max_dims)
            labels = [rng.choice(possible_labels) for _ in range(n_dim)]  # with replacement: diagonals
            valid_labels.update(labels)
            ones = {lab for lab in labels if rng.random() < broadcasting_prob}
            shape = [1 if lab in ones else labels_size[lab] for lab in labels]
            if n_dim < max_dims and rng.random() < ellipsis_prob:
                ell_num_dim = rng.randint(1, max_dims - n_dim)
                ell_size = max(ell_size, ell_num_dim)
                ell_shape = [1 if rng.random() < broadcasting_prob else s for s in ellipsis_shape[-ell_num_dim:]]
                at = rng.randint(0, n_dim)
                shape[at:at] = ell_shape
                labels.insert(at, Ellipsis)
            shapes.append(tuple(shape))
            sublists.append(labels)
        num_out = max(0, rng.randint(0, min(max_out_dim, len(valid_labels))) - ell_size)
        out = rng.sample(sorted(valid_labels), num_out) if num_out > 0 else []
        out.insert(rng.randint(0, num_out), Ellipsis)
        cases.append((f"random{case:02d}", shapes, sublists, out))
    return cases


TORCH_RANDOM = _torch_random_cases()


@pytest.mark.parametrize("form", ["equation", "sublist"])
@pytest.mark.parametrize("explicit", [False, True], ids=["implicit", "explicit"])
@pytest.mark.parametrize("case", TORCH_RANDOM, ids=[c[0] for c in TORCH_RANDOM])
def test_torch_random(case, explicit, form):
    name, shapes, sublists, out = case
    operands = [_rand(s, name, i) for i, s in enumerate(shapes)]
    equation = ",".join("".join(map(_label_char, sl)) for sl in sublists)
    if explicit:
        equation += "->" + "".join(map(_label_char, out))
    if form == "equation":
        args = (equation, *operands)
    else:
        args = tuple(itertools.chain(*zip(operands, sublists))) + ((out,) if explicit else ())
    expected = torch.einsum(*args)
    got = axisdot.einsum(*args)
    check(got, expected)
    check_numpy(got, equation, *_np(operands))


# ===================================================================================
# Group 4 -- pytorch/pytorch test/test_linalg.py :: TestLinalg.test_einsum_corner_cases
# float32, operands given as one list (as torch's check() does), expected values from torch's test.
# Covers spaces inside equations, scalars, zero-size dims, broadcasting and ellipsis broadcasting.
# ===================================================================================

TORCH_CORNER = [
    # Test equation variations
    ("space", " ", [1], 1),
    ("space-arrow-space", " -> ", [1], 1),
    ("space-comma-space", " , ", [2, 2], 4),
    ("three-scalars", " , , ", [2, 2, 2], 8),
    ("two-scalars-arrow", " , -> ", [2, 2], 4),
    ("spaced-i", " i ", [[1]], [1]),
    ("spaced-i-sum", " i -> ", [[1]], 1),
    ("spaced-i-i", " i -> i ", [[1]], [1]),
    ("spaced-dot", " i , i ", [[2], [2]], 4),
    ("spaced-mul", " i , i -> i ", [[2], [2]], [4]),
    # Test tensors with 0 size dimensions
    ("empty-i", "i", [[]], []),
    ("empty-ij->j", " i j -> j", [[[], []]], []),
    ("empty-ij->i", "ij->i", [[[], []]], [0.0, 0.0]),
    ("empty-ijk,k->ij", " i j k  ,  k  -> i j ", [(3, 0, 6), (6,)], [[], [], []]),
    # Test broadcasting
    ("broadcast-i,j", "i,j", [[2], [1, 2]], [[2, 4]]),
    ("broadcast-i,ij", "i,ij->ij", [[1, 2], [[1, 2, 3], [2, 3, 4]]], [[1, 2, 3], [4, 6, 8]]),
    # Test ellipsis broadcasting
    ("ellipsis-scalar", "...", [1], 1),
    ("ellipsis-scalar-sum", "...->", [1], 1),
    ("ellipsis-scalar-id", "...->...", [1], 1),
    ("ellipsis-vector", "...", [[1]], [1]),
    ("ellipsis-vector-sum", "...->", [[1]], 1),
    ("z...->z", "z...->z", [[1]], [1]),
    ("Z...->...Z", "Z...->...Z", [[1]], [1]),
    ("...a->", "...a->", [[[2], [4]]], 6),
    ("a...b->ab", "a...b->ab", [[[[1], [2]], [[3], [4]]]], [[3], [7]]),
]


def _corner_tensor(operand):
    if isinstance(operand, tuple):  # torch's check() builds make_tensor(shape) for tuples
        return _rand(operand, "corner", dtype=torch.float32)
    return torch.tensor(operand, dtype=torch.float32)


@pytest.mark.parametrize("eq,operands,expected_output", [c[1:] for c in TORCH_CORNER], ids=[c[0] for c in TORCH_CORNER])
def test_torch_corner_cases(eq, operands, expected_output):
    tensors = [_corner_tensor(op) for op in operands]
    expected = torch.einsum(eq, tensors)
    check(expected, torch.tensor(expected_output, dtype=torch.float32))  # the oracle agrees with torch's test
    got = axisdot.einsum(eq, tensors)  # one list of operands, as in torch's test
    check(got, expected)
    got_varargs = axisdot.einsum(eq, *tensors)
    check(got_varargs, expected)


# ===================================================================================
# Group 5 -- broadcasting of size-1 dims, implicit output, spaces; compared with torch and numpy.
# Sources per case in the id prefix:
#   oe-*  dgasmith/opt_einsum opt_einsum/tests/test_input.py :: test_singleton_dimension_broadcast,
#         test_compare; opt_einsum/tests/test_edge_cases.py :: test_broadcasting_contraction{,2,3,4},
#         test_can_blas_on_healed_broadcast_dimensions
#   np-*  numpy/numpy numpy/_core/tests/test_einsum.py :: test_einsum_misc, test_einsum_broadcast,
#         test_singleton_broadcasting, test_broadcasting_dot_cases, test_combined_views_mapping,
#         test_einsum_failed_on_p9_and_s390x, test_einsum_fixed_collapsingbug, test_einsum_fixedstridebug
#   add-* added here (cases the brief asked for with no upstream test of their own, and
#         implicit-output order probes with upper/lower case letters)
# ===================================================================================

BROADCAST = [
    ("oe-singleton-ij,ij->j", "ij,ij->j", [(10, 2), (1, 2)]),
    ("oe-singleton-...ij,...jk-pp", "...ij,...jk->...ik", [(1, 5), (1, 5)]),
    ("oe-singleton-...ij,...jk-pq", "...ij,...jk->...ik", [(1, 5), (5, 5)]),
    ("oe-compare-...a->...", "...a->...", [(2, 3, 4, 5)]),
    ("oe-compare-a...->...", "a...->...", [(5, 2, 3, 4)]),
    ("oe-compare-a...a->...a", "a...a->...a", [(5, 2, 3, 4, 5)]),
    ("oe-compare-...,...", "...,...", [(2, 3, 4), (2, 3, 4)]),
    ("oe-compare-a,b", "a,b", [(2,), (3,)]),
    ("oe-compare-...a,...b", "...a,...b", [(2, 3, 4, 5), (2, 3, 4, 3)]),
    ("oe-edge-ijk,kl,jl", "ijk,kl,jl", [(1, 5, 4), (4, 6), (5, 6)]),
    ("oe-edge-ijk,kl,jl,i->i", "ijk,kl,jl,i->i", [(1, 5, 4), (4, 6), (5, 6), (10,)]),
    ("oe-edge-abjk,kl,jl", "abjk,kl,jl", [(1, 1, 5, 4), (4, 6), (5, 6)]),
    ("oe-edge-abjk,kl,jl,ab->ab", "abjk,kl,jl,ab->ab", [(1, 1, 5, 4), (4, 6), (5, 6), (7, 7)]),
    ("oe-edge-ajk,kbl,jl,ab->ab", "ajk,kbl,jl,ab->ab", [(1, 5, 4), (4, 1, 6), (5, 6), (7, 7)]),
    ("oe-edge-obk,ijk->ioj", "obk,ijk->ioj", [(2, 4, 8), (2, 4, 8)]),
    ("oe-edge-healed-broadcast", "ab,bc,bd->acd", [(5, 4), (1, 5), (4, 20)]),
    ("np-misc-ij...,j...->i...", "ij...,j...->i...", [(1, 2), (2, 2, 1)]),
    ("np-misc-...i,...i", "...i,...i", [(3,), (3,)]),
    ("np-misc-ijklm,ijn,ijn->", "ijklm,ijn,ijn->", [(5, 12, 4, 2, 3), (5, 12, 11), (5, 12, 11)]),
    ("np-misc-x,yx,zx->xzy", "x,yx,zx->xzy", [(2,), (2, 2), (4, 2)]),
    ("np-bcast-ij...,j...->ij...", "ij...,j...->ij...", [(2, 3, 4), (3,)]),
    ("np-bcast-ij...,...j->ij...", "ij...,...j->ij...", [(2, 3, 4), (3,)]),
    ("np-bcast-ij...,j->ij...", "ij...,j->ij...", [(2, 3, 4), (3,)]),
    ("np-bcast-ik...,k...->i...", "ik...,k...->i...", [(4, 3), (3, 2)]),
    ("np-bcast-ik...,...kj->i...j", "ik...,...kj->i...j", [(4, 3), (3, 2)]),
    ("np-bcast-...k,kj", "...k,kj", [(4, 3), (3, 2)]),
    ("np-bcast-ik,k...->i...", "ik,k...->i...", [(4, 3), (3, 2)]),
    ("np-bcast-ijkl,k", "ijkl,k", [(2, 3, 4, 5), (4,)]),
    ("np-bcast-...kl,k", "...kl,k", [(2, 3, 4, 5), (4,)]),
    ("np-bcast-...kl,k...", "...kl,k...", [(2, 3, 4, 5), (4,)]),
    # numpy uses J, K, M = 160, 160, 120 here; smaller sizes, same structure
    ("np-bcast-...lmn,lmno->...o", "...lmn,lmno->...o", [(1, 1, 1, 4, 5, 3), (4, 5, 3, 3)]),
    ("np-singleton-ijp,ipq,ikq->ijk", "ijp,ipq,ikq->ijk", [(3, 1, 1), (3, 1, 3), (1, 3, 3)]),
    ("np-singleton-jhcabhijaci", "jhcabhijaci,dfijejgh->fgje",
     [(1, 1, 1, 1, 3, 1, 1, 1, 1, 1, 1), (3, 1, 3, 1, 1, 1, 1, 2)]),
    ("np-singleton-baegffahgc", "baegffahgc,hdggeff->dhg", [(2, 1, 4, 1, 1, 1, 1, 2, 1, 1), (1, 1, 1, 1, 4, 1, 1)]),
    ("np-singleton-cehgbaifff", "cehgbaifff,fhhdegih->cdghbi", [(1,) * 10, (2, 1, 1, 2, 4, 1, 1, 1)]),
    ("np-singleton-gah", "gah,cdbcghefg->ef", [(2, 3, 1), (1, 3, 1, 1, 1, 2, 1, 4, 1)]),
    ("np-singleton-cacc,bcb->", "cacc,bcb->", [(1, 1, 1, 1), (1, 4, 1)]),
    ("np-combined-views-bbcdc->d", "bbcdc->d", [(1, 1, 3, 1, 3)]),
    ("np-p9-ijij->", "ijij->", [(4, 5, 4, 5)]),
    ("np-collapsing-aabb->ab", "aabb->ab", [(5, 5, 5, 5)]),
    ("np-fixedstride-cl,cpx->lpx", "cl, cpx->lpx", [(2, 3), (2, 3, 7)]),
    # added here: the broadcasting cases the brief names
    ("add-i,i-(2,)(1,)", "i,i", [(2,), (1,)]),
    ("add-i,i->i-(2,)(1,)", "i,i->i", [(2,), (1,)]),
    ("add-cij,cjk->cik-batch1", "cij,cjk->cik", [(3, 4, 5), (1, 5, 6)]),
    ("add-...ij,...jk-batch1s", "...ij,...jk->...ik", [(3, 1, 2, 4), (1, 5, 4, 6)]),
    ("add-contracted-dim-size1", "ij,jk->ik", [(2, 1), (3, 4)]),
    ("add-ij,ij->ij-both-size1", "ij,ij->ij", [(2, 1), (1, 3)]),
    # added here: implicit output order (labels appearing once, sorted: A..Z before a..z; '...' first)
    ("add-implicit-ba,Ca", "ba,Ca", [(2, 3), (4, 3)]),
    ("add-implicit-Ab,bC", "Ab,bC", [(2, 3), (3, 4)]),
    ("add-implicit-bA", "bA", [(2, 3)]),
    ("add-implicit-zA", "zA", [(2, 3)]),
    ("add-implicit-Za", "Za", [(2, 3)]),
    ("add-implicit-aZ", "aZ", [(2, 3)]),
    ("add-implicit-a...,b...", "a...,b...", [(2, 5), (3, 5)]),
    ("add-implicit-b...a", "b...a", [(2, 5, 3)]),
    ("add-implicit-ji", "ji", [(2, 3)]),
    ("add-implicit-repeated-dropped", "ij,jk", [(2, 3), (3, 4)]),
]


@pytest.mark.parametrize("eq,shapes", [c[1:] for c in BROADCAST], ids=[c[0] for c in BROADCAST])
def test_broadcasting_and_implicit_output(eq, shapes):
    ops = [_rand(s, eq, i) for i, s in enumerate(shapes)]
    expected = torch.einsum(eq, *ops)
    got = axisdot.einsum(eq, *ops)
    check(got, expected)
    check_numpy(got, eq, *_np(ops))


# numpy/numpy numpy/_core/tests/test_einsum.py :: TestEinsumPath.test_spaces (gh-10794):
# '{}...a{}->{}...a{}' with every placement of spaces.
SPACES = ["{}...a{}->{}...a{}".format(*sp) for sp in itertools.product(["", " "], repeat=4)]


@pytest.mark.parametrize("eq", SPACES, ids=[repr(s) for s in SPACES])
def test_numpy_spaces(eq):
    arr = torch.tensor([[1.0]], dtype=F64)
    expected = torch.einsum(eq, arr)
    got = axisdot.einsum(eq, arr)
    check(got, expected)
    check_numpy(got, eq, arr.numpy())


# ===================================================================================
# Group 6 -- scalars, empty output, zero-size operands.
#   oe-*  dgasmith/opt_einsum opt_einsum/tests/test_contract.py :: tests ("Test scalar-like operations")
#         and opt_einsum/tests/test_edge_cases.py :: test_pathinfo_for_empty_contraction ("->" on a scalar)
#   np-*  numpy/numpy numpy/_core/tests/test_einsum.py :: test_different_paths (scalar operands)
#   add-* added here (empty output 'ij->', contractions over or into zero-size dims)
# ===================================================================================

SCALARS_AND_EMPTY = [
    ("oe-a,->a", "a,->a", [(2,), ()]),
    ("oe-ab,->ab", "ab,->ab", [(2, 3), ()]),
    ("oe-,ab,->ab", ",ab,->ab", [(), (2, 3), ()]),
    ("oe-,,->", ",,->", [(), (), ()]),
    ("oe-->", "->", [()]),
    ("np-i,->i", "i,->i", [(7,), ()]),
    ("np-,i->i", ",i->i", [(), (7,)]),
    ("np-,i->", ",i->", [(), (7,)]),
    ("np-i,->", "i,->", [(7,), ()]),
    ("np-i,i,i->", "i,i,i->", [(5,), (5,), (5,)]),
    ("np-i,i,i,i->", "i,i,i,i->", [(5,), (5,), (5,), (5,)]),
    ("add-empty-output-ij->", "ij->", [(2, 3)]),
    ("add-empty-output-ij,ij->", "ij,ij->", [(2, 3), (2, 3)]),
    ("add-empty-output-ijk,jk->", "ijk,jk->", [(2, 3, 4), (3, 4)]),
    ("add-scalar-implicit-''", "", [()]),
    ("add-scalar-implicit-','", ",", [(), ()]),
    ("add-scalar-...", "...", [()]),
    ("add-zero-contracted-dim", "ij,jk->ik", [(2, 0), (0, 3)]),
    ("add-zero-batch", "bij,bjk->bik", [(0, 2, 3), (0, 3, 4)]),
    ("add-zero-free-dim", "ij,jk->ik", [(0, 3), (3, 4)]),
    ("add-zero-sum-all", "i->", [(0,)]),
    ("add-zero-diag", "ii->i", [(0, 0)]),
    ("add-zero-trace", "ii", [(0, 0)]),
    ("add-zero-ellipsis", "...ij,...jk->...ik", [(0, 2, 3), (3, 4)]),
    ("add-zero-outer", "i,j->ij", [(0,), (3,)]),
]


@pytest.mark.parametrize("eq,shapes", [c[1:] for c in SCALARS_AND_EMPTY], ids=[c[0] for c in SCALARS_AND_EMPTY])
def test_scalars_empty_output_zero_size(eq, shapes):
    ops = [_rand(s, eq, i) for i, s in enumerate(shapes)]
    expected = torch.einsum(eq, *ops)
    got = axisdot.einsum(eq, *ops)
    check(got, expected)
    check_numpy(got, eq, *_np(ops))


# ===================================================================================
# Group 7 -- dtypes. The result dtype must equal torch.einsum's.
# pytorch/pytorch test/test_linalg.py runs test_einsum / test_einsum_sublist_format /
# test_einsum_random for double and cdouble only (covered above); these are added here, with
# values 0..3 so every dtype computes exactly. Cases where torch itself refuses the dtype are
# left out here (see test_torch_refuses_dtype below).
# ===================================================================================

ALL_NUMERIC = [torch.int8, torch.uint8, torch.int16, torch.int32, torch.int64, torch.float16, torch.bfloat16,
               torch.float32, torch.float64, torch.complex64, torch.complex128]
DTYPE_EQUATIONS = [
    ("matmul", "ij,jk->ik", [(2, 3), (3, 4)]),
    ("hadamard", "ij,ij->ij", [(2, 3), (2, 3)]),
    ("outer-implicit", "i,j", [(3,), (4,)]),
    ("dot", "i,i->", [(5,), (5,)]),
    ("rowdot", "ij,ij->i", [(2, 3), (2, 3)]),
    ("sum-all", "ij->", [(2, 3)]),
    ("sum-axis", "ij->j", [(2, 3)]),
    ("diagonal", "ii->i", [(3, 3)]),
    ("trace", "ii", [(3, 3)]),
    ("transpose", "ij->ji", [(2, 3)]),
    ("sum-one-operand-first", "ij,k->k", [(2, 3), (4,)]),
    ("batch-matmul-ellipsis", "...ij,...jk->...ik", [(2, 2, 3), (1, 3, 2)]),
]
DTYPE_CASES = [(f"{name}-{str(dt).replace('torch.', '')}", eq, shapes, dt)
               for name, eq, shapes in DTYPE_EQUATIONS for dt in ALL_NUMERIC]
# bool: only what torch computes (no sum of products between two bool operands; see below)
BOOL_EQUATIONS = [
    ("bool-a,a->a", "a,a->a", [(6,), (6,)]),
    ("bool-a,b", "a,b", [(3,), (4,)]),
    ("bool-ij,ij->ij", "ij,ij->ij", [(2, 3), (2, 3)]),
    ("bool-a->", "a->", [(6,)]),            # torch: an int64 count, not a bool 'any'
    ("bool-ij->j", "ij->j", [(4, 3)]),      # torch: int64
    ("bool-ii->i", "ii->i", [(3, 3)]),      # torch: bool
    ("bool-ii", "ii", [(3, 3)]),            # torch: int64
    ("bool-ij->ji", "ij->ji", [(2, 3)]),
    ("bool-ij,k->k", "ij,k->k", [(2, 3), (4,)]),  # torch: int64
]
DTYPE_CASES += [(name, eq, shapes, torch.bool) for name, eq, shapes in BOOL_EQUATIONS]


@pytest.mark.parametrize("eq,shapes,dtype", [c[1:] for c in DTYPE_CASES], ids=[c[0] for c in DTYPE_CASES])
def test_dtypes(eq, shapes, dtype):
    ops = [_small_ints(s, eq, i, dtype=dtype) for i, s in enumerate(shapes)]
    expected = torch.einsum(eq, *ops)
    got = axisdot.einsum(eq, *ops)
    check(got, expected)


# Mixed dtypes: torch promotes when no index is summed (the product is a broadcast mul) ...
MIXED_PROMOTED = [
    ("f32*f64-hadamard", "ij,ij->ij", [torch.float32, torch.float64]),
    ("f32*f64-outer", "i,j", [torch.float32, torch.float64]),
    ("i64*f32-outer", "i,j->ij", [torch.int64, torch.float32]),
    ("f64*c64-hadamard", "i,i->i", [torch.float64, torch.complex64]),
    ("bool*f32-outer", "i,j", [torch.bool, torch.float32]),
]


def _operands_of_dtypes(eq, dtypes):
    """One small-int operand of size 3 per term of ``eq``, operand i in ``dtypes[i]``."""
    return [_small_ints((3,) * len(term), eq, i, dtype=dt)
            for i, (term, dt) in enumerate(zip(eq.split("->")[0].split(","), dtypes))]


@pytest.mark.parametrize("eq,dtypes", [c[1:] for c in MIXED_PROMOTED], ids=[c[0] for c in MIXED_PROMOTED])
def test_mixed_dtypes_torch_promotes(eq, dtypes):
    ops = _operands_of_dtypes(eq, dtypes)
    expected = torch.einsum(eq, *ops)
    assert expected.dtype == torch.promote_types(*dtypes)
    check(axisdot.einsum(eq, *ops), expected)


# Pinned surprises of torch 2.x on CPU (all observed with torch 2.13): single-operand sums of
# integer/bool tensors come back int64 (torch.sum's promotion), products stay in the operand dtype
# and wrap around.
PINNED = [
    ("int8-dot-wraps", "i,i->", [torch.full((3,), 100, dtype=torch.int8)] * 2, torch.tensor(48, dtype=torch.int8)),
    ("int8-mul-wraps", "i,i->i", [torch.full((3,), 100, dtype=torch.int8)] * 2,
     torch.full((3,), 16, dtype=torch.int8)),
    ("int8-sum-promotes", "i->", [torch.full((3,), 100, dtype=torch.int8)], torch.tensor(300)),
    ("uint8-sum-promotes", "ij->j", [torch.full((2, 2), 200, dtype=torch.uint8)], torch.tensor([400, 400])),
    ("bool-sum-counts", "a->", [torch.tensor([True, False, True])], torch.tensor(2)),
    ("bool-trace-counts", "ii", [torch.eye(3, dtype=torch.bool)], torch.tensor(3)),
    ("bool-and", "a,a->a", [torch.tensor([True, False, True]), torch.tensor([True, True, False])],
     torch.tensor([True, False, False])),
]


@pytest.mark.parametrize("eq,ops,value", [c[1:] for c in PINNED], ids=[c[0] for c in PINNED])
def test_dtype_surprises_pinned(eq, ops, value):
    expected = torch.einsum(eq, *ops)
    check(expected, value)  # torch's behaviour, as observed
    check(axisdot.einsum(eq, *ops), expected)


# Inputs torch.einsum refuses because of their dtype (torch raises NotImplementedError "bmm not
# implemented for 'Bool'" / RuntimeError "expected scalar type Float but found Double"). A
# drop-in accepts the same inputs, so axisdot refuses them too -- with an AxisdotError.
TORCH_REFUSES_DTYPE = [
    ("bool-dot", "a,a->", [torch.bool, torch.bool]),             # "bmm" not implemented for 'Bool'
    ("bool-matmul", "ij,jk->ik", [torch.bool, torch.bool]),
    ("bool-rowdot", "ij,ij->i", [torch.bool, torch.bool]),
    ("uint16-matmul", "ij,jk->ik", [torch.uint16, torch.uint16]),  # "bmm" not implemented for 'UInt16'
    ("uint32-matmul", "ij,jk->ik", [torch.uint32, torch.uint32]),
]

# Mixed dtypes torch.einsum refuses in a contraction ("expected scalar type Float but found
# Double"): axisdot promotes them, as torch promotes them in an elementwise product (a
# documented extension of the drop-in). Oracle: torch.einsum on the promoted operands.
TORCH_REFUSES_MIXED = [
    ("f32-f64-matmul", "ij,jk->ik", [torch.float32, torch.float64]),
    ("f32-i64-matmul", "ij,jk->ik", [torch.float32, torch.int64]),
    ("f32-c64-matmul", "ij,jk->ik", [torch.float32, torch.complex64]),
    ("i32-i64-dot", "i,i->", [torch.int32, torch.int64]),
    ("f16-f32-batch", "bij,bjk->bik", [torch.float16, torch.float32]),
]


@pytest.mark.parametrize("eq,dtypes", [c[1:] for c in TORCH_REFUSES_MIXED], ids=[c[0] for c in TORCH_REFUSES_MIXED])
def test_mixed_dtypes_torch_refuses_are_promoted(eq, dtypes):
    ops = _operands_of_dtypes(eq, dtypes)
    with pytest.raises((RuntimeError, NotImplementedError)):
        torch.einsum(eq, *ops)
    common = functools.reduce(torch.promote_types, dtypes)
    expected = torch.einsum(eq, *[t.to(common) for t in ops])
    check(axisdot.einsum(eq, *ops), expected)


@pytest.mark.parametrize("eq,dtypes", [c[1:] for c in TORCH_REFUSES_DTYPE], ids=[c[0] for c in TORCH_REFUSES_DTYPE])
def test_torch_refuses_dtype(eq, dtypes):
    ops = _operands_of_dtypes(eq, dtypes)
    with pytest.raises((RuntimeError, NotImplementedError)):
        torch.einsum(eq, *ops)
    with pytest.raises(axisdot.AxisdotError) as info:
        axisdot.einsum(eq, *ops)
    assert isinstance(info.value, (ValueError, TypeError))


# ===================================================================================
# Group 8 -- errors. axisdot must raise axisdot.AxisdotError (also a ValueError or TypeError),
# never a raw RuntimeError / IndexError / KeyError.
# 8a: pytorch/pytorch test/test_linalg.py :: TestLinalg.test_einsum_error_cases, torch's inputs kept
#     (operands passed as one list, as torch's test does); torch's message in the comment.
# ===================================================================================

def _x():
    return _rand((2,), "errors", "x", dtype=torch.float32)


def _y():
    return _rand((2, 3), "errors", "y", dtype=torch.float32)


TORCH_ERRORS = [
    # ValueError: einsum(): must specify the equation string and at least one operand, ...
    ("no-operands", lambda: ("", [])),
    # found '.' for operand 0 that is not part of any ellipsis
    ("dot-not-ellipsis", lambda: (". ..", [_x()])),
    # found '.' for operand 0 for which an ellipsis was already found
    ("two-ellipses", lambda: ("... ...", [_x()])),
    # invalid subscript given at index 0 in the equation string, subscripts must be in [a-zA-Z]
    ("digit-subscript", lambda: ("1", [_x()])),
    # fewer operands were provided than specified in the equation
    ("fewer-operands", lambda: (",", [_x()])),
    # more operands were provided than specified in the equation
    ("more-operands", lambda: ("", [_x(), _x()])),
    # the number of subscripts in the equation (0) does not match the number of dimensions (1) ...
    ("too-few-subscripts", lambda: ("", [_x()])),
    # the number of subscripts in the equation (2) does not match the number of dimensions (1) ...
    ("too-many-subscripts", lambda: ("ai", [_x()])),
    # the number of subscripts in the equation (2) is more than the number of dimensions (1) for operand 0
    ("too-many-with-ellipsis", lambda: ("ai...", [_x()])),
    # found '.' for output but an ellipsis (...) was already found
    ("output-two-ellipses", lambda: ("a->... .", [_x()])),
    # found '.' for output that is not part of any ellipsis (...)
    ("output-dots", lambda: ("a->..", [_x()])),
    # invalid subscript given at index 3 in the equation string, subscripts must be in [a-zA-Z]
    ("output-digit", lambda: ("a->1", [_x()])),
    # output subscript a appears more than once in the output
    ("output-repeated", lambda: ("a->aa", [_x()])),
    # output subscript i does not appear in the equation for any input operand
    ("output-unknown", lambda: ("a->i", [_x()])),
    # subscript a is repeated for operand 0 but the sizes don't match, 3 != 2
    ("diagonal-sizes", lambda: ("aa", [_y()])),
    # dimension 1 covered by ellipsis in operand 1has size 3 which does not broadcast with previously seen ...
    ("ellipsis-no-broadcast", lambda: ("...,...", [_x(), _y()])),
    # subscript a has size 3 for operand 1 which does not broadcast with previously seen size 2
    ("sizes-no-broadcast", lambda: ("a,a", [_x(), _rand((3,), "errors", "z", dtype=torch.float32)])),
    # subscript a has size 3 for operand 1 which does not broadcast with previously seen size 2
    ("sizes-no-broadcast-2", lambda: ("a, ba", [_x(), _y()])),
    # ValueError: einsum(): subscript in subscript list is not within the valid range [0, 52)
    ("sublist-label-negative", lambda: (_x(), [-1])),
    # ValueError: einsum(): subscript in subscript list is not within the valid range [0, 52)
]


# 8b: dgasmith/opt_einsum opt_einsum/tests/test_input.py :: test_value_errors / test_type_errors and
#     numpy/numpy numpy/_core/tests/test_einsum.py :: test_einsum_errors, test_subscript_range --
#     the ones torch.einsum refuses as well (torch's message in the comment), operands as tensors.
def _m(*shape):
    return _rand(shape, "errors", "m", dtype=torch.float32)


UPSTREAM_ERRORS = [
    # invalid subscript given at index 3 ... (opt_einsum: "i->&")
    ("oe-invalid-output-char", lambda: ("i->&", _m(2))),
    # invalid subscript given at index 0 ... (opt_einsum: "&,a->")
    ("oe-invalid-input-char", lambda: ("&,a->", _m(2), _m(2))),
    # more operands were provided than specified in the equation (opt_einsum: "->,->", two '->')
    ("oe-two-arrows", lambda: ("->,->", _m(), _m())),
    # invalid subscript given at index 4 ... (a second '->')
    ("oe-two-arrows-2", lambda: ("a->a->a", _m(2))),
    # found '.' for operand 0 that is not part of any ellipsis
    ("oe-i..", lambda: ("i..", _m(2))),
    ("oe-.i...", lambda: (".i...", _m(2))),
    # found '.' for output that is not part of any ellipsis (...)
    ("oe-j->..j", lambda: ("j->..j", _m(2))),
    ("oe-j->.j...", lambda: ("j->.j...", _m(2))),
    # output subscript j appears more than once in the output
    ("oe-ij->jij", lambda: ("ij->jij", _m(2, 2))),
    # output subscript j does not appear in the equation for any input operand
    ("oe-i->ij", lambda: ("i->ij", _m(2))),
    # subscript i is repeated for operand 0 but the sizes don't match, 3 != 2
    ("oe-ii-2x3", lambda: ("ii", _m(2, 3))),
    ("oe-ii->i-2x3", lambda: ("ii->i", _m(2, 3))),
    # the number of subscripts in the equation (1) does not match the number of dimensions (2) ...
    ("oe-i-on-matrix", lambda: ("i", _m(2, 3))),
    # the number of subscripts in the equation (1) is more than the number of dimensions (0) for operand 0
    ("oe-...i-on-scalar", lambda: ("...i", _m())),
    ("oe-i...j-on-vector", lambda: ("i...j", _m(2))),
    # the number of subscripts ... (1) does not match the number of dimensions (0) (opt_einsum: "i", 0)
    ("oe-i-on-scalar", lambda: ("i", _m())),
    # fewer operands ... (numpy: ",", [0])
    ("np-comma-one-operand", lambda: (",", _m(1))),
    # invalid subscript given at index 1 ... ('-' without '>')
    ("add-dash", lambda: ("a-b", _m(2))),
    # invalid subscript given at index 3 ... ('- >' with a space)
    ("add-spaced-arrow", lambda: ("ij - > ji", _m(2, 3))),
    # invalid subscript given at index 0 ... (only ' ' is skipped, not tabs or newlines)
    ("add-tab", lambda: ("\ti", _m(2))),
    # TypeError: einsum(): argument 'equation' (position 1) must be str, not int (opt_einsum: contract(0, 0))
    ("oe-equation-int", lambda: (0, _m(2))),
    # TypeError: expected Tensor as element 0 in argument 1, but got float
    ("add-operand-list-of-floats", lambda: ("i", [1.0, 2.0])),
    # TypeError: expected Tensor as element 0 in argument 1, but got numpy.ndarray
    ("add-operand-ndarray", lambda: ("i", np.ones(2))),
    # TypeError: 'float' object cannot be interpreted as an integer (sublist label 0.5)
    ("add-sublist-float-label", lambda: (_m(2), [0.5])),
    # TypeError: '>=' not supported between instances of 'str' and 'int'
    # (opt_einsum accepts any hashable label here; torch does not)
    ("oe-sublist-str-label", lambda: (_m(2), ["a"])),
    # output subscript A appears more than once in the output (sublist output [0, 0])
    ("add-sublist-output-repeated", lambda: (_m(2), [0], [0, 0])),
    # output subscript B does not appear in the equation for any input operand
    ("add-sublist-output-unknown", lambda: (_m(2), [0], [1])),
    # ValueError ... not within the valid range [0, 52) (numpy test_subscript_range)
    ("np-sublist-range-minus1", lambda: (_m(2, 3), [-1, 5], _m(3, 4), [5, 2], [-1, 2])),
]


ERRORS = TORCH_ERRORS + UPSTREAM_ERRORS


@pytest.mark.parametrize("make_args", [c[1] for c in ERRORS], ids=[c[0] for c in ERRORS])
def test_error_cases(make_args):
    args = make_args()
    with pytest.raises((RuntimeError, ValueError, TypeError)):  # the oracle refuses it too
        torch.einsum(*args)
    with pytest.raises(axisdot.AxisdotError) as info:
        axisdot.einsum(*make_args())
    assert isinstance(info.value, (ValueError, TypeError)), type(info.value).__mro__


# ===================================================================================
# Group 9 -- opt_einsum's contraction tests.
# dgasmith/opt_einsum opt_einsum/tests/test_contract.py :: `tests` (used by test_compare,
# test_drop_in_replacement, test_compare_greek, ...), with the sizes of opt_einsum.testing's
# _default_dim_dict; the same list is in numpy/numpy numpy/_core/tests/test_einsum.py ::
# test_hadamard_like_products .. test_random_cases. Oracle: torch.einsum (all ASCII letters).
# ===================================================================================

OE_SIZES = dict(zip("abcdefghijklmnopqABC", [2, 3, 4, 5, 4, 3, 2, 6, 5, 4, 3, 2, 5, 7, 4, 3, 2, 3, 4, 9]))
OE_TESTS = [
    # Test scalar-like operations
    "a,->a", "ab,->ab", ",ab,->ab", ",,->",
    # Test hadamard-like products
    "a,ab,abc->abc", "a,b,ab->ab",
    # Test index-transformations
    "ea,fb,gc,hd,abcd->efgh", "ea,fb,abcd,gc,hd->efgh", "abcd,ea,fb,gc,hd->efgh",
    # Test complex contractions
    "acdf,jbje,gihb,hfac,gfac,gifabc,hfac", "cd,bdhe,aidb,hgca,gc,hgibcd,hgac", "abhe,hidj,jgba,hiab,gab",
    "bde,cdh,agdb,hica,ibd,hgicd,hiac", "chd,bde,agbc,hiad,hgc,hgi,hiad", "chd,bde,agbc,hiad,bdi,cgh,agdb",
    "bdhe,acad,hiab,agac,hibd",
    # Test collapse
    "ab,ab,c->", "ab,ab,c->c", "ab,ab,cd,cd->", "ab,ab,cd,cd->ac", "ab,ab,cd,cd->cd", "ab,ab,cd,cd,ef,ef->",
    # Test outer products
    "ab,cd,ef->abcdef", "ab,cd,ef->acdf", "ab,cd,de->abcde", "ab,cd,de->be", "ab,bcd,cd->abcd", "ab,bcd,cd->abd",
    # Random test cases that have previously failed
    "eb,cb,fb->cef", "dd,fb,be,cdb->cef", "bca,cdb,dbf,afc->", "dcc,fce,ea,dbf->ab", "fdf,cdd,ccd,afe->ae",
    "abcd,ad", "ed,fcd,ff,bcf->be", "baa,dcf,af,cde->be", "bd,db,eac->ace", "fff,fae,bef,def->abd",
    "efc,dbc,acf,fd->abe",
    # Inner products
    "ab,ab", "ab,ba", "abc,abc", "abc,bac", "abc,cba",
    # GEMM test cases
    "ab,bc", "ab,cb", "ba,bc", "ba,cb", "abcd,cd", "abcd,ab", "abcd,cdef", "abcd,cdef->feba", "abcd,efdc",
    # Inner than dot
    "aab,bc->ac", "ab,bcc->ac", "aab,bcc->ac", "baa,bcc->ac", "aab,ccb->ac",
    # Randomly build test cases
    "aab,fa,df,ecc->bde", "ecb,fef,bad,ed->ac", "bcf,bbb,fbf,fc->", "bb,ff,be->e", "bcb,bb,fc,fff->",
    "fbb,dfd,fc,fc->", "afd,ba,cc,dc->bf", "adb,bc,fa,cfc->d", "bbd,bda,fc,db->acf", "dba,ead,cad->bce",
    "aef,fbc,dca->bde",
    # numpy's test_edge_cases has one more
    "ba,ac,da->bcd",
]


def _oe_views(eq, tag=""):
    terms = eq.split("->")[0].split(",")
    return [_rand(tuple(OE_SIZES[c] for c in term), "oe-views", eq, tag, i) for i, term in enumerate(terms)]


@pytest.mark.parametrize("eq", OE_TESTS)
def test_opt_einsum_contract_tests(eq):
    views = _oe_views(eq)
    expected = torch.einsum(eq, *views)
    check(axisdot.einsum(eq, *views), expected)


# opt_einsum test_compare / numpy optimize_compare: every path optimizer gives the same result.
OPTIMIZE_KINDS = ["auto", "greedy", "optimal", "dp", "branch-2", False]
OE_MULTI = [eq for eq in OE_TESTS if eq.split("->")[0].count(",") >= 3]


@pytest.mark.parametrize("optimize", OPTIMIZE_KINDS, ids=[str(o) for o in OPTIMIZE_KINDS])
@pytest.mark.parametrize("eq", OE_MULTI)
def test_opt_einsum_compare_optimizers(eq, optimize):
    views = _oe_views(eq)
    expected = torch.einsum(eq, *views)
    check(axisdot.einsum(eq, *views, optimize=optimize), expected)


# opt_einsum test_compare_greek: every letter shifted by 848 code points (a -> U+03B1 alpha ...).
# torch.einsum only takes [a-zA-Z]; the oracle is torch.einsum on the ASCII equation (the shift is
# monotone, so the implicit output keeps its order), cross-checked with opt_einsum.contract.
OE_GREEK = ["a,ab,abc->abc", "ea,fb,gc,hd,abcd->efgh", "abhe,hidj,jgba,hiab,gab", "ab,ab,cd,cd->ac",
            "ab,cd,de->be", "dcc,fce,ea,dbf->ab", "abcd,ad", "ab,ba", "abcd,cdef->feba", "aab,bcc->ac",
            "bbd,bda,fc,db->acf"]


def _greek(eq):
    return "".join(chr(ord(c) + 848) if c not in ",->." else c for c in eq)


@pytest.mark.parametrize("optimize", ["auto", "greedy"])
@pytest.mark.parametrize("eq", OE_GREEK)
def test_opt_einsum_compare_greek(eq, optimize):
    views = _oe_views(eq)
    expected = torch.einsum(eq, *views)
    torch.testing.assert_close(oe.contract(_greek(eq), *views, backend="torch"), expected)
    check(axisdot.einsum(_greek(eq), *views, optimize=optimize), expected)


# Non-ASCII subscripts, added here (the brief's 'αβ,βγ->αγ') and from dgasmith/opt_einsum
# opt_einsum/tests/test_contract.py :: test_some_non_alphabet_maintains_order ('c β a' has the
# implicit output 'a c β', by code point, so it equals torch's 'cxa' -> 'acx').
# '×' (U+00D7) and '÷' (U+00F7) are symbols opt_einsum.get_symbol hands out (get_symbol(75),
# get_symbol(107)) in its 116-symbol chain below, although they are not letters.
UNICODE = [
    ("greek-matmul", "αβ,βγ->αγ", "ab,bc->ac", [(2, 3), (3, 4)]),
    ("greek-implicit-transpose", "βα", "ba", [(2, 3)]),
    ("greek-implicit-matmul", "αβ,βγ", "ab,bc", [(2, 3), (3, 4)]),
    ("greek-trace", "αα", "aa", [(3, 3)]),
    ("greek-ellipsis", "...αβ,...βγ->...γα", "...ab,...bc->...ca", [(2, 2, 3), (1, 3, 4)]),
    ("oe-non-alphabet-order", "c" + chr(ord("b") + 848) + "a", "cxa", [(2, 3, 4)]),
    ("ascii-then-greek-implicit", "αa,aB", "za,aB", [(2, 3), (3, 4)]),  # implicit output 'Bα' by code point
    ("times-divide-symbols", "a×,×÷->a÷", "ab,bc->ac", [(2, 3), (3, 4)]),
    ("get_symbol-60..62", oe.get_symbol(60) + oe.get_symbol(61) + "," + oe.get_symbol(61) + oe.get_symbol(62),
     "ab,bc", [(2, 3), (3, 4)]),
]


@pytest.mark.parametrize("eq,ascii_eq,shapes", [c[1:] for c in UNICODE], ids=[c[0] for c in UNICODE])
def test_non_ascii_subscripts(eq, ascii_eq, shapes):
    ops = [_rand(s, eq, i) for i, s in enumerate(shapes)]
    expected = torch.einsum(ascii_eq, *ops)
    torch.testing.assert_close(oe.contract(eq, *ops, backend="torch"), expected)  # the two oracles agree
    check(axisdot.einsum(eq, *ops), expected)


# ===================================================================================
# Group 10 -- dgasmith/opt_einsum opt_einsum/tests/test_paths.py :: test_large_path
# Chains 'ab,bc,cd,...' over num_symbols symbols from opt_einsum.get_symbol (beyond 52 these are
# chr(i + 140): 'À'.. for 116, up to U+01B7 for 300), sizes cycling 2, 3, 4, implicit output.
# opt_einsum only builds the path there; here the contraction runs on small float64 tensors
# (entries in [0.5, 1.5) / size, so the chain product stays O(1e-3..1)). Oracle:
# opt_einsum.contract(..., backend="torch"), cross-checked with numpy; torch.einsum too for <= 52.
# ===================================================================================

LARGE_PATH = [2, 3, 26, 26 + 26, 256 - 140, 300]


def _large_path_case(num_symbols):
    symbols = "".join(oe.get_symbol(i) for i in range(num_symbols))
    dims = dict(zip(symbols, itertools.cycle([2, 3, 4])))
    expression = ",".join(symbols[t: t + 2] for t in range(num_symbols - 1))
    ops = []
    for i, term in enumerate(expression.split(",")):
        g = torch.Generator().manual_seed(_seed("large_path", num_symbols, i))
        shape = tuple(dims[c] for c in term)
        ops.append((0.5 + torch.rand(shape, generator=g, dtype=F64)) / shape[-1])
    return expression, ops


@pytest.mark.parametrize("optimize", [None, "greedy"], ids=["default", "greedy"])
@pytest.mark.parametrize("num_symbols", LARGE_PATH)
def test_opt_einsum_large_path(num_symbols, optimize):
    expression, ops = _large_path_case(num_symbols)
    expected = oe.contract(expression, *ops, backend="torch")
    torch.testing.assert_close(expected, torch.from_numpy(oe.contract(expression, *[o.numpy() for o in ops])))
    if num_symbols <= 52:
        torch.testing.assert_close(expected, torch.einsum(expression, *ops))
    kwargs = {} if optimize is None else {"optimize": optimize}
    check(axisdot.einsum(expression, *ops, **kwargs), expected)


def test_opt_einsum_large_path_explicit_output():
    # added here: the 300-symbol chain with its output spelled out, reversed
    expression, ops = _large_path_case(300)
    out = oe.get_symbol(299) + oe.get_symbol(0)
    expected = oe.contract(expression + "->" + out, *ops, backend="torch")
    check(axisdot.einsum(expression + "->" + out, *ops), expected)


# ===================================================================================
# Group 11 -- optimize= and memory_limit= as opt_einsum.contract takes them.
#   dgasmith/opt_einsum opt_einsum/tests/test_contract.py :: test_contract_plain_types
#     ('ij,jk,kl->il', optimize True/False/None) and _PATH_OPTIONS;
#   numpy/numpy numpy/_core/tests/test_einsum.py :: TestEinsumPath.test_path_type_input
#     ('dcc,fce,ea,dbf->ab' with the explicit path (0, 2), (0, 2), (0, 1)),
#     test_path_type_input_internal_trace ('cab,cdd->ab' with (1,), (0, 1)),
#     test_memory_contraints ('a,b,c->abc', 'acdf,jbje,gihb,hfac' with a memory limit of 0 there).
# Oracle: torch.einsum without these keywords (they change the order of work, not the result).
# ===================================================================================

OPTIMIZE_EQUATIONS = ["ij,jk,kl->il", "dcc,fce,ea,dbf->ab", "acdf,jbje,gihb,hfac", "cab,cdd->ab", "a,b,c->abc"]
OPTIMIZE_VALUES = [
    ("auto", "auto"), ("auto-hq", "auto-hq"), ("greedy", "greedy"), ("optimal", "optimal"), ("dp", "dp"),
    ("dynamic-programming", "dynamic-programming"), ("branch-2", "branch-2"), ("branch-all", "branch-all"),
    ("eager", "eager"), ("False", False), ("True", True), ("None", None),
]


@pytest.mark.parametrize("optimize", [v for _, v in OPTIMIZE_VALUES], ids=[i for i, _ in OPTIMIZE_VALUES])
@pytest.mark.parametrize("eq", OPTIMIZE_EQUATIONS)
def test_optimize_strategies(eq, optimize):
    views = _oe_views(eq, "optimize")
    expected = torch.einsum(eq, *views)
    check(axisdot.einsum(eq, *views, optimize=optimize), expected)


def test_optimize_path_optimizer_instance():
    # opt_einsum takes a PathOptimizer object too (opt_einsum/tests/test_paths.py uses
    # oe.DynamicProgramming(), oe.RandomGreedy(), ...)
    eq = "acdf,jbje,gihb,hfac,gfac,gifabc,hfac"
    views = _oe_views(eq)
    expected = torch.einsum(eq, *views)
    check(axisdot.einsum(eq, *views, optimize=oe.DynamicProgramming()), expected)


EXPLICIT_PATHS = [
    ("plain-[(0,1),(0,1)]", "ij,jk,kl->il", [(0, 1), (0, 1)]),
    ("plain-[(1,2),(0,1)]", "ij,jk,kl->il", [(1, 2), (0, 1)]),
    ("plain-[(0,1,2)]", "ij,jk,kl->il", [(0, 1, 2)]),
    ("np-path_type_input", "dcc,fce,ea,dbf->ab", [(0, 2), (0, 2), (0, 1)]),
    ("np-internal-trace", "cab,cdd->ab", [(1,), (0, 1)]),
]


@pytest.mark.parametrize("eq,path", [c[1:] for c in EXPLICIT_PATHS], ids=[c[0] for c in EXPLICIT_PATHS])
def test_optimize_explicit_path(eq, path):
    views = _oe_views(eq, "path")
    expected = torch.einsum(eq, *views)
    check(axisdot.einsum(eq, *views, optimize=path), expected)


@pytest.mark.parametrize("strategy", ["greedy", "optimal"])
@pytest.mark.parametrize("eq", ["acdf,jbje,gihb,hfac,gfac,gifabc,hfac", "chd,bde,agbc,hiad,bdi,cgh,agdb"])
def test_optimize_path_from_contract_path(eq, strategy):
    views = _oe_views(eq, "path")
    path, _info = oe.contract_path(eq, *views, optimize=strategy)
    expected = torch.einsum(eq, *views)
    check(axisdot.einsum(eq, *views, optimize=path), expected)


MEMORY_LIMITS = [None, -1, "max_input", 1, 10, 10 ** 6]


@pytest.mark.parametrize("optimize", ["greedy", "optimal"])
@pytest.mark.parametrize("memory_limit", MEMORY_LIMITS, ids=[repr(m) for m in MEMORY_LIMITS])
@pytest.mark.parametrize("eq", ["a,b,c->abc", "acdf,jbje,gihb,hfac"])
def test_memory_limit(eq, memory_limit, optimize):
    views = _oe_views(eq, "memory")
    expected = torch.einsum(eq, *views)
    check(axisdot.einsum(eq, *views, optimize=optimize, memory_limit=memory_limit), expected)


# Misuse of optimize= / memory_limit=: opt_einsum raises KeyError (unknown strategy), ValueError
# (memory_limit 0 or a wrong string) or fails while running a path that does not fit; numpy's
# test_path_type_input_invalid expects RuntimeError for the path cases. axisdot: AxisdotError.
OPTIMIZE_ERRORS = [
    ("unknown-strategy", "ij,jk,kl->il", {"optimize": "not-a-strategy"}),
    ("memory-limit-0", "ij,jk,kl->il", {"memory_limit": 0}),
    ("memory-limit-str", "ij,jk,kl->il", {"memory_limit": "min_input"}),
    ("np-invalid-path-short", "ab,bc,cd,de->ae", {"optimize": [(2, 3), (0, 1)]}),
    ("np-invalid-path-trace", "a,a,a->a", {"optimize": [(1,), (0, 1)]}),
    ("path-index-out-of-range", "ij,jk,kl->il", {"optimize": [(0, 5), (0, 1)]}),
]


@pytest.mark.parametrize("eq,kwargs", [c[1:] for c in OPTIMIZE_ERRORS], ids=[c[0] for c in OPTIMIZE_ERRORS])
def test_optimize_errors(eq, kwargs):
    views = _oe_views(eq, "optimize-errors")
    with pytest.raises(axisdot.AxisdotError) as info:
        axisdot.einsum(eq, *views, **kwargs)
    assert isinstance(info.value, (ValueError, TypeError))


# Sublist labels beyond torch's and NumPy's [0, 52): opt_einsum takes any label, and so does
# axisdot (the issue asks for large networks in the sublist form). Oracle: opt_einsum's
# interleaved input with the torch backend.
@pytest.mark.parametrize("labels", [
    ([0, 52], [52, 2], [0, 2]),            # numpy test_subscript_range's case, beyond 52
    ([1000, 7], [7, 2000], [1000, 2000]),   # far beyond
    ([62, 61], [61, 60], None),             # implicit output: sorted by label value, 60 before 62
    ([Ellipsis, 99], [99, 5], None),        # with an ellipsis, implicit output
], ids=["label-52", "labels-1000", "implicit-order", "ellipsis-implicit"])
def test_sublist_labels_beyond_52(labels):
    a = _rand((2, 3), "big", "a")
    b = _rand((3, 4), "big", "b")
    args = [a, labels[0], b, labels[1]] + ([] if labels[2] is None else [labels[2]])
    expected = oe.contract(*args, backend="torch")
    check(axisdot.einsum(*args), expected)
