"""The crash harness's reading of a killed writer's log (tests/crash/crash_harness.py).

A SIGKILL can stop write(2) between two pages of the file, leaving a line torn;
the harness must drop it and end it, so that a successor's lines parse.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

HARNESS = Path(__file__).resolve().parents[1] / "crash" / "crash_harness.py"


def _harness() -> ModuleType:
    spec = importlib.util.spec_from_file_location("crash_harness", HARNESS)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def test_whole_lines_advance_the_offset(tmp_path: Path) -> None:
    log = tmp_path / "w0.log"
    log.write_bytes(b"I 1 a 1:2\nA 1\n")
    lines, off = _harness().read_new_lines(str(log), 0)
    assert lines == ["I 1 a 1:2", "A 1"]
    assert off == log.stat().st_size
    assert _harness().read_new_lines(str(log), off) == ([], off)


def test_torn_last_line_is_dropped_and_ended(tmp_path: Path) -> None:
    h = _harness()
    log = tmp_path / "w0.log"
    log.write_bytes(b"I 1 a 1:2\nA 1\nI 2 a 3:4 5:")  # killed inside the last write(2)
    lines, off = h.read_new_lines(str(log), 0)
    assert lines == ["I 1 a 1:2", "A 1"]
    assert log.read_bytes().endswith(b"5:\n")
    assert off == log.stat().st_size
    with open(log, "ab") as f:  # the successor's lines start on their own
        f.write(b"O 3\nI 4 u 6:7\n")
    lines, off2 = h.read_new_lines(str(log), off)
    assert lines == ["O 3", "I 4 u 6:7"]
    assert off2 == log.stat().st_size
