"""CPU seconds and RSS of processes, read from /proc (Linux)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of one process (all its threads); None once it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: split after the last ')'.
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_mib(pid: int) -> float | None:
    try:
        pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except OSError:
        return None
    return pages * PAGE_SIZE / (1024 * 1024)


def parent_of(pid: int) -> int | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(raw[raw.rindex(")") + 2 :].split()[1])


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def descendants(root: int) -> list[int]:
    """Every live process below ``root`` (children, grandchildren...)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            ppid = parent_of(int(entry.name))
            if ppid is not None:
                children.setdefault(ppid, []).append(int(entry.name))
    out: list[int] = []
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), []):
            out.append(child)
            stack.append(child)
    return out


def pids_named(fragment: str) -> list[int]:
    return [
        int(e.name)
        for e in Path("/proc").iterdir()
        if e.name.isdigit() and fragment in cmdline(int(e.name))
    ]


@dataclass
class CpuMeter:
    """CPU seconds spent by a changing set of processes between two snapshots.

    Processes that appear between the snapshots count from zero; ones that exit are lost
    (their last reading is kept when seen at the first snapshot only).
    """

    start: dict[int, float]

    @classmethod
    def snapshot(cls, pids: list[int]) -> CpuMeter:
        return cls({p: c for p in pids if (c := cpu_seconds(p)) is not None})

    def spent(self, pids_now: list[int]) -> float:
        total = 0.0
        for pid in set(pids_now) | set(self.start):
            now = cpu_seconds(pid)
            if now is None:
                continue
            total += now - self.start.get(pid, 0.0)
        return total
