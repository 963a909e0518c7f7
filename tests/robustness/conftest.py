"""Counts the robustness probes' verdicts and prints them as one table at the end of the run."""
from collections import Counter

VERDICTS: Counter = Counter()


def pytest_terminal_summary(terminalreporter):
    if VERDICTS:
        from tests.robustness.harness import DEFECTS, FINE

        line = ", ".join(f"{k}: {VERDICTS.get(k, 0)}" for k in FINE + DEFECTS)
        terminalreporter.write_line(f"robustness probes: {sum(VERDICTS.values())} ({line})")
