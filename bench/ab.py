"""Interleaved A/B runs whose ratios hold on a shared, noisy machine.

Each variant is a command that prints one JSON object of figures (its last stdout line) and runs in a fresh process,
so its peak RSS is its own. Rounds alternate the variants (A B C, A B C, ...), so drift and neighbours hit all of
them alike; each figure is reported as median and min-max over the rounds, and ratios against the baseline are taken
per round (paired) before their median is taken. The report names the machine (CPU model and the SIMD flags that
matter for inference), the load average before and after, the date and the command line.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

SIMD_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_tile", "asimd", "sve", "i8mm", "bf16")


@dataclass
class Variant:
    name: str
    command: list[str]


@dataclass
class Results:
    variants: list[str]
    rounds: list[dict[str, dict[str, float]]] = field(default_factory=list)  # round -> variant -> figure -> value
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def values(self, variant: str, figure: str) -> list[float]:
        return [r[variant][figure] for r in self.rounds if variant in r and figure in r[variant]]

    def paired_ratios(self, variant: str, baseline: str, figure: str, *, invert: bool = False) -> list[float]:
        """Per round: baseline / variant if invert (a speed-up from times), else variant / baseline."""
        out = []
        for r in self.rounds:
            if variant in r and baseline in r:
                a, b = r[variant][figure], r[baseline][figure]
                out.append(b / a if invert else a / b)
        return out


def machine() -> str:
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model in ("", platform.machine(), platform.processor()):
                model = value.strip()
            elif key.strip() in ("flags", "Features") and not flags:
                flags = set(value.split())
    except OSError:
        pass
    simd = [f for f in SIMD_FLAGS if f in flags]
    return f"{model}, {os.cpu_count()} CPUs, SIMD: {' '.join(simd) or 'none of ' + '/'.join(SIMD_FLAGS)}"


def run(
    variants: Sequence[Variant],
    rounds: int,
    *,
    cwd: Path,
    progress: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
) -> Results:
    results = Results([v.name for v in variants], load_before=os.getloadavg())
    for index in range(rounds):
        row: dict[str, dict[str, float]] = {}
        for variant in variants:
            done = subprocess.run(variant.command, cwd=cwd, check=True, capture_output=True, text=True)
            row[variant.name] = json.loads(done.stdout.strip().splitlines()[-1])
            progress(f"round {index + 1}/{rounds} {variant.name}: {json.dumps(row[variant.name])}")
        results.rounds.append(row)
    results.load_after = os.getloadavg()
    return results


def spread(values: Sequence[float], fmt: str = "{:.3f}") -> str:
    """'median (min-max)'."""
    if not values:
        return "-"
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def header(title: str, results: Results) -> list[str]:
    lb, la = results.load_before, results.load_after
    return [
        f"# {title}",
        "",
        f"- Date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC; machine: {machine()}",
        f"- Command: `{shlex.join(['uv', 'run', 'python', *sys.argv])}`",
        f"- Rounds: {len(results.rounds)}, variants interleaved in this order each round, each in a fresh process: "
        + ", ".join(results.variants),
        f"- Load average before: {lb[0]:.2f} {lb[1]:.2f} {lb[2]:.2f}; after: {la[0]:.2f} {la[1]:.2f} {la[2]:.2f}",
        "- Figures: median (min-max) over rounds; ratios are paired per round, then their median (min-max).",
        "",
    ]
