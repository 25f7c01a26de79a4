"""``benchmarks/einsum_corpus.py`` runs, and its temporaries measure counts what a call
allocates beyond its operands and output (checked on calls whose allocations are known)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.slow  # subprocesses, compiles or whole models: seconds each

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "einsum_corpus.py"
_spec = importlib.util.spec_from_file_location("einsum_corpus", _PATH)
corpus = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(corpus)


def test_temporaries_count_a_dead_intermediate_and_not_the_output():
    x = torch.rand(1000, 10)
    assert corpus.temporaries(lambda: (x * 2).sum(0)) == x.nbytes  # x * 2 is a temporary, the sum the output
    assert corpus.temporaries(lambda: x * 2) == 0
    assert corpus.temporaries(lambda: x.t()) == 0  # a view creates nothing


def test_temporaries_count_the_peak_of_two_live_intermediates():
    x = torch.rand(1000, 10)

    def two():
        a, b = x * 2, x * 3
        return (a + b).sum(0)

    assert corpus.temporaries(two) == 3 * x.nbytes  # a, b and a + b alive together


def test_every_case_cites_its_source_and_the_benchmark_runs(capsys):
    assert len(corpus.CORPUS) >= 30
    assert all(case.source.startswith("https://github.com/") for case in corpus.CORPUS)
    threads = torch.get_num_threads()
    try:
        corpus.main(["--rounds", "1", "--only", "MPS site"])  # sets one thread, as it measures
    finally:
        torch.set_num_threads(threads)
    assert "MPS site times operator" in capsys.readouterr().out
