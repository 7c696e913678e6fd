"""Run benchmark cases side by side: each contender alternates with its peers, repeated; report medians/ratios."""

from __future__ import annotations

import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Case:
    """One benchmark: the broker's contender and its peers, run alternately ``repeat`` times."""

    name: str
    contenders: dict[str, Callable[[], object]]
    repeat: int = 5
    setup: Callable[[], object] | None = None
    unit: str = "s"
    times: dict[str, list[float]] = field(default_factory=dict)

    def run(self) -> None:
        self.times = {k: [] for k in self.contenders}
        for _ in range(self.repeat):
            for label, fn in self.contenders.items():
                if self.setup is not None:
                    self.setup()
                start = time.perf_counter()
                fn()
                self.times[label].append(time.perf_counter() - start)

    def rows(self) -> list[tuple[str, str, float, float | None]]:
        medians = {k: statistics.median(v) for k, v in self.times.items()}
        broker = next(iter(medians))
        fastest_peer = min((v for k, v in medians.items() if k != broker), default=None)
        out = []
        for label, med in medians.items():
            ratio = medians[broker] / med if label != broker else (
                medians[broker] / fastest_peer if fastest_peer else None)
            out.append((self.name, label, med, ratio))
        return out


def versions() -> str:
    def tool(cmd: list[str]) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.splitlines()[0]
        except (OSError, IndexError):
            return "n/a"

    import brokers

    return (f"Python {platform.python_version()}, brokers {brokers.__version__}, kernel {platform.release()}, "
            f"{tool(['nproc'])} cores, cp: {tool(['cp', '--version'])}")


def table(cases: list[Case]) -> str:
    lines = ["| case | contender | median | broker / this (first row: broker / fastest peer) |",
             "|---|---|---|---|"]
    for case in cases:
        for name, label, med, ratio in case.rows():
            lines.append(f"| {name} | {label} | {med * 1000:.1f} ms | {'' if ratio is None else f'{ratio:.2f}'} |")
    return "\n".join(lines)


def command_line() -> str:
    return "python -m bench " + " ".join(sys.argv[1:])
