"""The program's own output out of a Backend.AI container log.

A batch session's log is the container's: the kernel runner's start-up lines (chpasswd errors, ttyd's
coloured banner, sshd) around the command's output, every line ending in CRLF (the kernel's pty) and
colour escapes that bleed into the next line. The startup command is therefore framed by two marker
lines that carry a token of this session only; what lies between them is the program's, cleaned of
carriage returns and terminal escapes, and of the log lines of the container's sshd (dropbear writes
them for every connection a cluster session's launcher makes while the program runs). The end marker
also carries the command's exit status, which a 23.09 manager does not store.

A long run outgrows what the agent keeps of a log (10 MiB by default, cut from the start, which takes the
begin marker with it), and fetching the whole log every few seconds loads the manager for hours. So where
the session mounts a writable folder, the command's output also goes to a file in it (`tee`), which the
client reads from where it stopped (FileFollower); the container log keeps the markers for the rest.
"""

from __future__ import annotations

import codecs
import re
import shlex
import uuid
from dataclasses import dataclass, field

# CSI (colours, cursor), OSC (titles) and two-character escapes, as terminals parse them.
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")

# dropbear's log lines on the container's stderr: "[97] Dec 01 12:20:10 Child connection from ...", also
# where one lands in the middle of a line the program had not ended yet (a progress bar's, before its next
# carriage return: so they go before the CRs are resolved).
_SSHD_LOG = re.compile(r"\[\d+\] [A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2} (?:Child connection|Pubkey auth|"
                       r"Password auth|Exit|Early exit|Failed|Bad) [^\n]*\n")


def clean(text: str) -> str:
    """Text as a person would read it in a terminal: no escapes, no CR of CRLF line ends."""
    text = _ESCAPES.sub("", text).replace("\r\n", "\n")
    # A bare CR returns the cursor: what follows overwrites the line (progress bars).
    return "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n"))


@dataclass
class FramedCommand:
    """A shell command wrapped in begin/end markers, and the reader of its output in the log."""

    command: str
    token: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    # A file in a writable mount (path inside the container) that gets a copy of the output.
    output_file: str | None = None

    @property
    def begin(self) -> str:
        return f"::mlperf-bai:{self.token}:begin::"

    @property
    def end(self) -> str:
        return f"::mlperf-bai:{self.token}:end::"

    def startup_command(self) -> str:
        """What the session runs: the markers on lines of their own, the command's status kept."""
        begin, end, command = (shlex.quote(self.begin), shlex.quote(self.end), shlex.quote(self.command))
        if self.output_file is None:
            return (f"printf '\\n%s\\n' {begin}; sh -c {command}; status=$?; "
                    f"printf '\\n%s %s\\n' {end} \"$status\"; exit $status")
        out = shlex.quote(self.output_file)
        status = shlex.quote(f"/tmp/mlperf-bai-{self.token}.status")
        return (f"printf '\\n%s\\n' {begin}; mkdir -p \"$(dirname {out})\" && : > {out}; "
                f"( sh -c {command} 2>&1; echo $? > {status} ) | tee -a {out}; "
                f"status=$(cat {status} 2>/dev/null || echo 1); "
                f"printf '\\n%s %s\\n' {end} \"$status\" | tee -a {out}; exit $status")

    def program_output(self, log: str) -> str:
        """The command's output so far (complete lines only while it runs). Where the agent's cap took the
        begin marker, what remains before the end marker is the output's tail."""
        text = clean(_SSHD_LOG.sub("", log))
        start = text.find(self.begin)
        if start < 0:
            stop = text.find(self.end)
            return text[:stop].removesuffix("\n") if stop >= 0 else ""
        body = text[start + len(self.begin):].removeprefix("\n")
        stop = body.find(self.end)
        if stop >= 0:
            return body[:stop].removesuffix("\n")
        return body[: body.rfind("\n") + 1] if "\n" in body else ""

    def exit_status(self, log: str) -> int | None:
        """The command's exit status, once its end marker is in the log."""
        found = re.search(re.escape(self.end) + r" (-?\d+)", clean(log))
        return int(found.group(1)) if found else None


class OutputFollower:
    """Hands each new complete line of the program's output to a callback, as the log grows.

    While the log holds the begin marker, what is new is what lies past the output already shown. Once
    the agent's cap has cut the log's start (the begin marker with it), the output is found again by the
    last lines already shown."""

    ANCHOR = 2000

    def __init__(self, framed: FramedCommand) -> None:
        self.framed = framed
        self.shown = 0
        self.tail = ""

    def feed(self, log: str) -> list[str]:
        output = self.framed.program_output(log)
        if self.framed.begin in clean(log) or not self.tail:
            new = output[self.shown:]
        else:
            found = output.rfind(self.tail)
            new = output[found + len(self.tail):] if found >= 0 else output
        if not new:
            return []
        self.shown = len(output)
        self.tail = (self.tail + new)[-self.ANCHOR:]
        return new.removesuffix("\n").split("\n")

    def after(self, log: str, shown: str) -> list[str]:
        """The lines of the log's output past those already `shown` (found again by their last lines)."""
        output = self.framed.program_output(log)
        lines = shown.removesuffix("\n").split("\n")
        for anchor in (shown[-self.ANCHOR:], "\n".join(lines[-3:]) + "\n", lines[-1] + "\n"):
            found = output.rfind(anchor) if anchor.strip() else -1
            if found >= 0:
                new = output[found + len(anchor):]
                return new.removesuffix("\n").split("\n") if new else []
        return []


class FileFollower:
    """The program's output read from its file in a folder, a piece at a time as the file grows."""

    def __init__(self, framed: FramedCommand) -> None:
        self.framed = framed
        self.offset = 0
        self.ended = False
        self.exit_code: int | None = None
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""
        # empty lines held back: the last one before the end marker is the marker's own
        self._blank = 0
        self._lines: list[str] = []

    @property
    def output(self) -> str:
        return "".join(line + "\n" for line in self._lines)

    def feed(self, data: bytes) -> list[str]:
        """New complete lines of the program (none once its end marker was read)."""
        self.offset += len(data)
        if self.ended:
            return []
        self._pending += self._decoder.decode(data)
        *complete, self._pending = self._pending.split("\n")
        lines: list[str] = []
        for raw in complete:
            line = clean(raw)
            found = re.fullmatch(re.escape(self.framed.end) + r" (-?\d+)", line.strip())
            if found:
                self.ended, self.exit_code = True, int(found.group(1))
                lines += [""] * max(0, self._blank - 1)
                break
            if line == "":
                self._blank += 1
                continue
            lines += [""] * self._blank + [line]
            self._blank = 0
        self._lines.extend(lines)
        return lines

    def extend(self, lines: list[str]) -> None:
        """Lines of the program's output that reached us another way (the container log)."""
        self._lines.extend(lines)
