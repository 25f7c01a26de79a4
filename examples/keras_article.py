"""The article's three cases ("What is the PyTorch equivalent of TensorFlow's
tf.keras.dot() function?"), done right: each prints the einsum equation axisdot runs
and the output shape, which is Keras's.

1. x (32, 64, 10, 128), y (32, 32, 15, 128), axes=-1: the article's recipe fails with a
   broadcasting error; Keras gives (32, 64, 10, 32, 15).
2. x (32, 64, 10, 128), y (32, 128, 32, 15), axes=(3, 1): same failure, same Keras shape.
3. The torch.mul + torch.sum recipe runs only when the other axes already agree, e.g.
   x and y both (32, 64, 10, 128) with axes=-1, and then returns (32, 64, 10): Keras
   pairs every free axis of x with every free axis of y, giving (32, 64, 10, 64, 10).
"""
import torch

import axisdot

torch.manual_seed(0)
cases = [
    ("1. axes=-1", torch.randn(32, 64, 10, 128), torch.randn(32, 32, 15, 128), -1),
    ("2. axes=(3, 1)", torch.randn(32, 64, 10, 128), torch.randn(32, 128, 32, 15), (3, 1)),
    ("3. axes=-1, equal shapes", torch.randn(32, 64, 10, 128), torch.randn(32, 64, 10, 128), -1),
]

for title, x, y, axes in cases:
    out = axisdot.dot(x, y, axes=axes)
    print(title)
    print(f"   x {tuple(x.shape)}, y {tuple(y.shape)}")
    print(f"   equation     {axisdot.equation(x, y, axes)}")
    print(f"   output shape {tuple(out.shape)}")
