import torch
from hypothesis import find, given, settings

from axisdot.testing.strategies import dot_problems
from my_attention import my_attention_scores

# Problems whose axes are those of the function under test: Dot(axes=(2, 2)) on rank-3 inputs.
SCORES = dot_problems(axes=(2, 2), min_rank=3, max_rank=3, max_side=5)


def scores(q, k, axes):
    return my_attention_scores(q, k)


@settings(derandomize=True, deadline=None)
@given(problem=SCORES)
def test_my_attention_scores_matches_the_keras_rules(problem, assert_matches):
    assert_matches(scores, problem)


def transposed_scores(q, k, axes):
    """A known-wrong port: the contraction taken the other way round, (batch, k_len, q_len)."""
    return torch.matmul(k, q.transpose(1, 2))


def test_the_kit_finds_and_shrinks_a_transposed_contraction(assert_matches):
    def wrong(problem) -> bool:
        try:
            assert_matches(transposed_scores, problem)
        except AssertionError:
            return True
        return False

    counterexample = find(SCORES, wrong, settings=settings(derandomize=True, database=None, max_examples=500))
    # shrunk to the smallest shapes that tell the two contractions apart
    assert max(counterexample.x_shape + counterexample.y_shape) <= 2, counterexample
    assert counterexample.x_shape[1] != counterexample.y_shape[1] or counterexample.x_shape[1] > 1
    try:
        assert_matches(transposed_scores, counterexample)
    except AssertionError as report:
        assert "does not match the reference" in str(report)
        assert "bij,bkj->bik" in str(report)  # the report names the equation the call means
    else:
        raise AssertionError("the shrunk counterexample must still fail")
