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
    label_setup: Callable[[str], object] | None = None
    """Called (untimed) with the contender's label before each of its runs."""
    unit: str = "s"
    max_runs: dict[str, int] = field(default_factory=dict)
    """Contenders too slow to repeat: run at most this many times (their median is of fewer runs)."""
    times: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    """Contenders that raised: the error (they are not run again)."""

    def run(self) -> None:
        self.times = {k: [] for k in self.contenders}
        self.errors = {}
        for _ in range(self.repeat):
            for label, fn in self.contenders.items():
                if label in self.errors or len(self.times[label]) >= self.max_runs.get(label, self.repeat):
                    continue
                if self.setup is not None:
                    self.setup()
                if self.label_setup is not None:
                    self.label_setup(label)
                start = time.perf_counter()
                try:
                    fn()
                except Exception as exc:  # reported in the table; the run goes on with the others
                    self.errors[label] = f"{type(exc).__name__}: {str(exc)[:200]}"
                    print(f"  {label} failed: {self.errors[label]}", flush=True)
                    continue
                self.times[label].append(time.perf_counter() - start)

    def rows(self) -> list[tuple[str, str, float | None, float | None]]:
        medians = {k: statistics.median(v) if v else None for k, v in self.times.items()}
        broker_label = next(iter(medians))
        broker = medians[broker_label]
        # Peers: every row but the broker's own (labels starting with "brokers" are broker variants).
        peers = [v for k, v in medians.items() if not k.startswith("brokers") and v is not None]
        fastest_peer = min(peers, default=None)
        out: list[tuple[str, str, float | None, float | None]] = []
        for label, med in medians.items():
            if broker is None or med is None:
                ratio = None
            elif label != broker_label:
                ratio = broker / med
            else:
                ratio = broker / fastest_peer if fastest_peer else None
            out.append((self.name, label, med, ratio))
        return out


def versions(extra: str = "") -> str:
    def tool(cmd: list[str]) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.splitlines()[0]
        except (OSError, IndexError):
            return "n/a"

    import brokers

    return (f"Python {platform.python_version()}, brokers {brokers.__version__}, kernel {platform.release()}, "
            f"{tool(['nproc'])} cores, cp: {tool(['cp', '--version'])}{extra}")


def table(cases: list[Case]) -> str:
    lines = ["| case | contender | median | runs | broker / this (first row: broker / fastest peer) |",
             "|---|---|---|---|---|"]
    for case in cases:
        for name, label, med, ratio in case.rows():
            shown = f"{med * 1000:.1f} ms" if med is not None else f"failed: {case.errors.get(label, '?')}"
            lines.append(f"| {name} | {label} | {shown} | {len(case.times[label])} | "
                         f"{'' if ratio is None else f'{ratio:.2f}'} |")
    return "\n".join(lines)


def command_line() -> str:
    return "python -m bench " + " ".join(sys.argv[1:])


def replace_section(text: str, section: str, begin: str, end: str) -> str:
    """Put ``section`` (its markers included) in place of the one between ``begin`` and ``end``, or append it."""
    start, stop = text.find(begin), text.find(end)
    if start != -1 and stop > start:
        rest = text[stop + len(end):].lstrip("\n")
        return text[:start] + section + ("\n" + rest if rest else "")
    return (text.rstrip("\n") + "\n\n" if text.strip() else "") + section
