"""common.atomic: a writer killed half-way leaves the previous file whole under its name, never half a file."""

from __future__ import annotations

from pathlib import Path

from common.atomic import part_path, write_text_atomic
from tests.killed_write import kill_mid_write


def test_a_writer_killed_half_way_leaves_the_previous_file(tmp_path: Path) -> None:
    target = tmp_path / "stamps.json"
    target.write_text('{"previous": "complete"}\n')
    first = kill_mid_write(target, "from pathlib import Path\nfrom common.atomic import write_text_atomic\n"
                                   f"write_text_atomic(Path({str(target)!r}), '0123456789' * 1_000_000)\n")
    assert first.startswith(b"0123456789")  # killed with most of its 10 MB still to write
    assert target.read_text() == '{"previous": "complete"}\n'


def test_a_writer_killed_before_the_first_version_leaves_no_file(tmp_path: Path) -> None:
    target = tmp_path / "new.txt"
    kill_mid_write(target, "from pathlib import Path\nfrom common.atomic import write_text_atomic\n"
                           f"write_text_atomic(Path({str(target)!r}), 'x' * 10_000_000)\n")
    assert not target.exists()
    part_path(target).unlink()  # what a crash leaves (here the FIFO) is only ever the temporary name
    write_text_atomic(target, "the next run writes it whole\n")
    assert target.read_text() == "the next run writes it whole\n" and not part_path(target).exists()
