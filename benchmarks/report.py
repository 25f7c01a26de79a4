"""The report: the tables, the notes, the machine's header, and the markdown, JSON and
chart files."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "torch")

from harness import Case, GROUPS  # noqa: E402


def fmt_time(seconds: float) -> str:
    for unit, scale in (("s", 1), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def group_table(group: str, group_cases: list[Case]) -> str:
    if group == "import":
        lines = ["| import | median s | − import torch | − bare python |", "|---|---|---|---|"]
        for c in group_cases:
            med = c.seconds or {}
            for label, s in med.items():
                over_torch = f"{s - med['import torch']:+.3f}" if "torch," in label else ""
                over_bare = f"{s - med['python -c pass']:+.3f}" if label != "python -c pass" else ""
                lines.append(f"| `{label}` | {s:.3f} | {over_torch} | {over_bare} |")
        return "\n".join(lines)
    present = {k for c in group_cases for k in list(c.results) + list(c.ratios())}
    columns = [col for col in GROUPS[group][1] if col in present]
    columns += sorted(present - set(columns) - {"axisdot"})  # anything a case added beyond the list
    lines = [f"| {group} | axisdot | " + " | ".join(f"÷ {col}" for col in columns) + " |",
             "|---" * (2 + len(columns)) + "|"]
    for c in group_cases:
        ratios = c.ratios()
        cells = [f"{ratios[col]:.2f}" if col in ratios else "" for col in columns]
        lines.append(f"| {c.name} | {fmt_time(c.results['axisdot'])} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def tables(all_cases: list[Case]) -> list[tuple[str, str]]:
    out = []
    for group in GROUPS:
        mine = [c for c in all_cases if c.group == group]
        if mine:
            out.append((group, group_table(group, mine)))
    return out


def notes_of(all_cases: list[Case]) -> list[str]:
    lines = []
    for c in all_cases:
        note = c.note
        if c.group == "cold" and "clear only" in c.results:
            miss = c.results["axisdot"] - c.results["clear only"]
            note += f"; the miss costs about {fmt_time(miss)} beyond the clearing ({fmt_time(c.results['clear only'])})"
        if c.group == "import":
            diffs = c.facts["differences_s"]
            note += "; " + "; ".join(f"{k}: {v:+.3f} s" for k, v in diffs.items())
        if c.rounds and c.rounds < c.facts.get("_rounds_asked", c.rounds):
            note += f"; {c.rounds} rounds"
        if note:
            lines.append(f"- {c.group} / {c.name}: {note}")
    return lines


def header_lines(env: dict[str, Any]) -> list[str]:
    return [
        f"- **Date**: {env['date']}",
        f"- **Device**: {env['device']} — {env['device_name']} ({env['cpu_count']} CPUs, torch on "
        f"{env['threads']} thread(s)); {env['platform']}",
        f"- **Versions**: Python {env['python']}, torch {env['torch']}, opt_einsum {env['opt_einsum']}, "
        f"Keras: {env['keras_status']}, axisdot {env['axisdot']}",
        f"- **Load average** at the end (1, 5, 15 min): {env['load_average']} — on a shared machine, other "
        f"processes stall torch's parallel regions and every ratio moves toward 1",
        f"- **Method**: {env['rounds']} interleaved rounds (fewer for cases that would outlast the time budget; "
        f"see notes), blocks of at least {env['min_time_s']} s, medians; ratios are axisdot ÷ other "
        f"(below 1: axisdot is faster)",
        f"- **Command**: `{env['command']}`",
    ]


def write(path: str, text: str) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)


def markdown(env: dict[str, Any], all_cases: list[Case], skipped: list[str]) -> str:
    parts = ["# axisdot benchmark", "", *header_lines(env), ""]
    for group, text in tables(all_cases):
        parts += [f"## {group}", "", GROUPS[group][0] + ".", "", text, ""]
    if skipped:
        parts += ["Skipped: " + "; ".join(skipped) + ".", ""]
    notes = notes_of(all_cases)
    if notes:
        parts += ["## Notes", "", *notes, ""]
    return "\n".join(parts)


def results_json(env: dict[str, Any], all_cases: list[Case], skipped: list[str]) -> str:
    out = []
    for c in all_cases:
        out.append({
            "group": c.group,
            "case": c.name,
            "dtype": c.dtype,
            "median_s": c.seconds if c.seconds is not None else c.results,
            "ratios": c.ratios(),
            "rounds": c.rounds,
            "note": c.note,
            "facts": {k: v for k, v in c.facts.items() if not k.startswith("_")},
        })
    return json.dumps({"environment": env, "skipped": skipped, "cases": out}, indent=2, default=str) + "\n"


def chart(all_cases: list[Case], path: str) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(no chart: matplotlib is not installed; pip install 'axisdot[bench]')", file=sys.stderr)
        return
    panels = [
        ("batch-matmul", "side n of (8,n,n)x(8,n,n)", ("hand-written", "torch.einsum")),
        ("vector dot 64", "batch b of (b,64)x(b,64)", ("hand-written", "torch.einsum")),
        ("vector dot 1024", "batch b of (b,1024)x(b,1024)", ("faster hand", "mul+sum", "bmm", "torch.einsum")),
    ]
    panels = [p for p in panels if any(c.facts.get("sweep") == p[0] for c in all_cases)]
    if not panels:
        print("(no chart: no sweep case was run)", file=sys.stderr)
        return
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4), squeeze=False)
    for ax, (sweep, xlabel, others) in zip(axes[0], panels):
        mine = sorted((c for c in all_cases if c.facts.get("sweep") == sweep), key=lambda c: c.facts["size"])
        for other in others:
            pts = [(c.facts["size"], c.ratios()[other]) for c in mine if other in c.ratios()]
            if pts:
                style = "--" if other in ("mul+sum", "bmm") else "-"
                ax.plot(*zip(*pts), style, marker="o", label=f"axisdot ÷ {other}")
        ax.axhline(1.0, color="grey", lw=0.8)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("time ratio (below 1: axisdot faster)")
        ax.set_title(sweep)
        ax.legend(fontsize=8)
    fig.tight_layout()
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, dpi=110)
    print(f"chart written to {path}", file=sys.stderr)

