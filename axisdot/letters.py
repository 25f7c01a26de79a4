"""Turn a :class:`~axisdot.spec.Spec` into an einsum equation with readable letters (torch-free).

Letters are given in order of first appearance, scanning x's axes then y's: batch axes
take ``b`` first, every other axis continues with ``i j k l ...``, so a batched matmul
reads ``bij,bjk->bik``. The same spec always gives the same equation.
"""
from __future__ import annotations

from .errors import EquationError
from .spec import Spec

__all__ = ["LETTERS", "letters", "einsum_equation"]

#: The 52 letters torch.einsum accepts, in the order axisdot hands them out.
LETTERS = "bijklmnopqrstuvwxyzacdefghABCDEFGHIJKLMNOPQRSTUVWXYZ"


def letters(spec: Spec) -> tuple[str, str, str]:
    """The subscripts of x, y and the output (before any Keras (batch, 1) reshape)."""
    pool = LETTERS if spec.batch[0] else LETTERS[1:] + LETTERS[0]
    needed = spec.x_rank + spec.y_rank - len(spec.batch[0]) - len(spec.contract[0])
    if needed > len(pool):
        raise EquationError(
            f"this contraction has {needed} distinct axes but einsum has only "
            f"{len(pool)} letters; axisdot's own functions run it without einsum"
        )
    x_sub = [""] * spec.x_rank
    y_sub = [""] * spec.y_rank
    given = iter(pool)
    x_batch = set(spec.batch[0])
    order = sorted(range(spec.x_rank), key=lambda a: (a not in x_batch, a))
    for a in order:
        x_sub[a] = next(given)
    for pairs in (spec.batch, spec.contract):
        for xa, ya in zip(*pairs):
            y_sub[ya] = x_sub[xa]
    for a in spec.y_free:
        y_sub[a] = next(given)
    out = (
        [x_sub[a] for a in spec.batch[0]]
        + [x_sub[a] for a in spec.x_free]
        + [y_sub[a] for a in spec.y_free]
    )
    return "".join(x_sub), "".join(y_sub), "".join(out)


def einsum_equation(spec: Spec) -> str:
    """``"bij,bjk->bik"``: the equation torch.einsum needs to compute ``spec``."""
    x_sub, y_sub, out = letters(spec)
    return f"{x_sub},{y_sub}->{out}"
