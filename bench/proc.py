"""What Linux's ``/proc`` says about another process: its CPU time and its memory."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


@dataclass(frozen=True)
class Memory:
    """Resident set sizes in MiB."""

    peak: float
    """``VmHWM``: the largest resident set the process has had."""
    now: float
    """``VmRSS``: its resident set now."""


def memory_mib(pid: int) -> Memory:
    """``VmHWM`` and ``VmRSS`` of ``pid`` (0 when the kernel does not report one)."""
    found = {"VmHWM": 0.0, "VmRSS": 0.0}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in found:
            found[name] = int(value.split()[0]) / 1024  # kB
    return Memory(peak=found["VmHWM"], now=found["VmRSS"])
