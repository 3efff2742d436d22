"""Processes of a process group, read from /proc (Linux): for cancel tests and CPU accounting."""
from __future__ import annotations

import os
from pathlib import Path


def group_stats(pgid: int) -> list[tuple[int, str, float]]:
    """``(pid, state, cpu seconds)`` of every process in group ``pgid``; state ``"Z"`` is a zombie."""
    tick = os.sysconf("SC_CLK_TCK")
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                # Fields after the parenthesised command name: state, ppid, pgrp, ..., utime (12), stime (13).
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # the process ended while we looked
            if int(fields[2]) == pgid:
                found.append((int(entry.name), fields[0], (int(fields[11]) + int(fields[12])) / tick))
    return found
