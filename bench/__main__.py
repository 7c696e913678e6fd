"""``python -m bench [--quick] [--only host]``: run the benchmarks and write bench/RESULTS.md."""

from __future__ import annotations

import argparse
import datetime
import tempfile
from pathlib import Path

from . import host_cases
from .harness import Case, command_line, table, versions


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run (CI)")
    parser.add_argument("--output", default=str(Path(__file__).with_name("RESULTS.md")))
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    args = parser.parse_args()
    quick = args.quick
    cases: list[Case] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="brokers-bench-", dir=str(Path.home())) as tmp:
        work = Path(tmp)
        copy = host_cases.copy_case(work, (16 if quick else 1024) << 20, 3 if quick else 5)
        host_cases.warm(work / "ws" / "big.bin")
        cases.append(copy)
        usage = host_cases.usage_case(work, 2_000 if quick else 200_000, 3 if quick else 5)
        usage.contenders["du -sb"]()  # warm the dentry cache for both
        cases.append(usage)
        n = 100 if quick else 1000
        validation = host_cases.validation_case(n, 3)
        cases.append(validation)
        for case in cases:
            print(f"running {case.name} ...", flush=True)
            case.run()
        notes.append(f"validation throughput: {host_cases.per_second(validation, 2 * n)}")
    text = table(cases)
    print(text)
    print("\n".join(notes))
    if not args.no_write:
        Path(args.output).write_text(
            f"# Benchmark results\n\nCommand: `{command_line()}`  \nDate: {datetime.date.today()}  \n"
            f"Machine: {versions()}\n\nEach case runs its contenders alternately, repeated; medians shown. "
            f"Ratios are broker time / contender time (< 1: the broker is faster).\n\n{text}\n\n"
            + "\n".join(f"- {n}" for n in notes) + "\n")


if __name__ == "__main__":
    main()
