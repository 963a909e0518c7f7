"""Prints the robustness probes' verdict counts (tests/robustness/harness.py keeps them) at the end of the run."""


def pytest_terminal_summary(terminalreporter):
    from tests.robustness.harness import DEFECTS, FINE, VERDICTS

    if VERDICTS:
        line = ", ".join(f"{k}: {VERDICTS.get(k, 0)}" for k in FINE + DEFECTS)
        terminalreporter.write_line(f"robustness probes: {sum(VERDICTS.values())} ({line})")
