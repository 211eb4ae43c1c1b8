"""Clocks for the tests that need each write at its own time (tests/ is on the path)."""


class StepClock:
    """Each call one second later than the last (seconds since the epoch), so every write
    of a tier under test has its own update time. Who uses it: the plaintext-tier tests."""

    def __init__(self, now_s: float = 1_700_000_000.0):
        self.now_s = now_s

    def __call__(self) -> float:
        self.now_s += 1.0
        return self.now_s
