"""The ``axisdot`` command line: ``explain`` a contraction, ``port`` a saved Keras model.

Parsing the command needs nothing but the standard library: ``--help`` and usage
errors answer before torch is imported (the commands import what they need).
Errors are reported in the command's own terms, with the command that failed.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from typing import Any, Optional, Sequence

from .errors import ArgumentError, AxisdotError

EPILOG = """\
examples:
  axisdot explain --x 32,64,10,128 --y 32,128,32,15 --axes 3,1
  axisdot explain --x 32,64,10,128 --y 32,32,15,128 --axes=-1 --normalize
  axisdot explain --x 8,5,6 --y 8,6,5 --axes 1,2:2,1          (several axes: x axes:y axes)
  axisdot explain --x 3,4,5 --y 4,5,6 --mode tensordot --axes 2
  axisdot explain --x 8,10,1152 --y 8,10,1152,16 --mode batch_dot --axes 2,2 --semantics legacy
  axisdot explain --x 4,3,2 --y 2,4 --mode dot_general --contract 0:1 --batch 2:0
  axisdot explain "bij,bjk,bkl->bil" --shapes 8,32,64 8,64,16 8,16,4
  axisdot explain "ab,cbe,ae->ac" --shapes 20000,100 20,100,100 20000,100 --max-memory 64MiB
  axisdot port model.keras --json
  axisdot port model.keras --weights ported.pt   (state dicts keyed by layer path)

axes forms: -1 (one int), 3,1 (a pair), 1,2:2,1 (x axes:y axes), none (batch_dot's
default). Write a value starting with '-' followed by more as --axes=-1,-2.
shapes: sizes separated by commas; ? or None for an unknown size; "" for a scalar.
exit status: 0 on success, 2 on bad input (the error says why), 3 when port found
layers holding weights that it could not port (the report names them)."""


def _ints(text: str, what: str) -> tuple[Optional[int], ...]:
    text = text.strip().strip("()[]")
    if not text:
        return ()
    out: list[Optional[int]] = []
    for part in text.split(","):
        part = part.strip()
        if part in ("?", "None", "none"):
            out.append(None)
            continue
        try:
            out.append(int(part))
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what}: {part!r} is not an integer (in {text!r})") from None
    return tuple(out)


def parse_shape(text: str) -> tuple[Optional[int], ...]:
    return _ints(text, "shape")


def parse_axes(text: str) -> Any:
    """``-1`` -> -1, ``3,1`` -> (3, 1), ``1,2:2,1`` -> ((1, 2), (2, 1)), ``none`` -> None."""
    text = text.strip()
    if text.lower() == "none":
        return None
    if ":" in text:
        left, _, right = text.partition(":")
        return (_ints(left, "axes"), _ints(right, "axes"))
    values = _ints(text, "axes")
    if None in values:
        raise argparse.ArgumentTypeError(f"axes: {text!r} holds an unknown entry")
    return values[0] if len(values) == 1 else values


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="axisdot", description="See what a Keras-style contraction runs, and port Dot layers to PyTorch.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="{explain,port}")
    ex = sub.add_parser("explain", help="explain a contraction", epilog=EPILOG,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    ex.add_argument("equation", nargs="?", help="an einsum equation (then give --shapes)")
    ex.add_argument("--x", type=parse_shape, help="shape of x, e.g. 32,64,10,128")
    ex.add_argument("--y", type=parse_shape, help="shape of y")
    ex.add_argument("--axes", type=parse_axes, default=argparse.SUPPRESS, help="axes, e.g. -1, 3,1 or 1,2:2,1")
    ex.add_argument("--mode", choices=["dot", "batch_dot", "tensordot", "dot_general"], default="dot")
    ex.add_argument("--contract", type=parse_axes, help="dot_general: x axes:y axes")
    ex.add_argument("--batch", type=parse_axes, help="dot_general: x axes:y axes")
    ex.add_argument("--normalize", nargs="?", const=True, default=False, choices=[True, "keras3", "tf_keras", "torch"],
                    help="dot: L2-normalize first (cosine similarity); optionally the mode: keras3, tf_keras, torch")
    ex.add_argument("--semantics", choices=["keras3", "legacy"], default="keras3",
                    help="batch_dot: Keras 3 rules (default) or legacy Keras 2.2.4 rules")
    ex.add_argument("--shapes", type=parse_shape, nargs="+", help="einsum: one shape per operand")
    ex.add_argument("--max-memory", metavar="BYTES", help="einsum: a bound on the peak of temporaries, in bytes or "
                                                          "as 512MiB; the report shows the slices that keep it")
    ex.add_argument("--json", action="store_true", help="print JSON only")
    po = sub.add_parser("port", help="list the Dot, EinsumDense and MultiHeadAttention layers of a saved Keras model "
                                     "and the axisdot modules that replace them")
    po.add_argument("model", help="a .keras file or a model.to_json() file")
    po.add_argument("--json", action="store_true", help="print JSON only")
    po.add_argument("--weights", metavar="OUT.pt", help="also write the modules' state dicts, keyed by layer path, "
                                                        "with the file's weights (torch.save; needs h5py)")
    po.add_argument("--import", dest="packages", action="append", default=[], metavar="PACKAGE",
                    help="a package whose Keras classes the model uses, for Keras to import and build them "
                         "(keras_hub and its kin are imported without asking; this runs the package's code)")
    po.add_argument("--no-keras", action="store_true", help="never load the model with Keras: port what the config "
                                                             "describes and name the custom layers it hides")
    return parser


def _explain(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Any:
    if args.equation is not None:
        if args.shapes is None:
            parser.error("explain EQUATION needs --shapes, one shape per operand")
    elif args.x is None or args.y is None:
        parser.error("explain needs --x and --y (or an einsum equation with --shapes)")
    from .explanation import build_explanation as explain

    if args.equation is not None:
        return explain(args.equation, *args.shapes, max_memory=args.max_memory)
    if args.max_memory is not None:
        parser.error("--max-memory applies to an einsum equation (explain EQUATION --shapes ...)")
    if args.mode == "dot_general":
        batch = args.batch if args.batch is not None else ((), ())
        return explain(args.x, args.y, mode="dot_general", contract=args.contract, batch=batch)
    kwargs = {"axes": args.axes} if hasattr(args, "axes") else {}
    if args.semantics != "keras3":
        kwargs["semantics"] = args.semantics
    return explain(args.x, args.y, mode=args.mode, normalize=args.normalize, **kwargs)


def _port(args: argparse.Namespace) -> tuple[str, int]:
    from . import port

    read = port.load if args.weights else port.port
    layers = read(args.model, keras=False if args.no_keras else None, packages=args.packages)
    status = 3 if layers.not_ported else 0
    if args.weights:
        import torch

        try:  # plain tensors keyed by strings: torch.load(..., weights_only=True) reads it
            torch.save({layer.name: layer.module.state_dict() for layer in layers}, args.weights)
        except OSError as err:
            raise ArgumentError(f"--weights {args.weights}: cannot be written ({err.strerror or err})") from None
    if args.json:
        return json.dumps({"layers": [layer.to_dict() for layer in layers],
                           "not_ported": [item.to_dict() for item in layers.not_ported]}, indent=2), status
    from .port.report import report

    text = report(layers, layers.not_ported)
    if args.weights:
        text += f"\n\nwrote the state dicts of {len(layers)} layer{'s' if len(layers) != 1 else ''} to {args.weights}"
    return text, status


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "explain":
            result = _explain(args, parser)
            print(json.dumps(result.to_dict(), indent=2) if args.json else str(result))
        else:
            text, status = _port(args)
            print(text)
            return status
    except AxisdotError as err:
        command = shlex.join(argv)
        if args.command == "port":  # one line: a model file's refusal is read by scripts
            message = "; ".join(line.strip() for line in str(err).splitlines() if line.strip())
            print(f"axisdot: error: {message} (in the command: axisdot {command})", file=sys.stderr)
        else:
            print(f"axisdot: error: {err}\nin the command: axisdot {command}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader (e.g. `| head`) went away: not an error of ours
        sys.stderr.close()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
