"""Inject Backend.AI labels into a Dockerfile, keeping every other byte as it was.

dockerfile-parse resolves what a Dockerfile means (the final stage's labels, quoting, variables), but
it reads heredoc bodies as instructions and rewrites files in its own style, so the positions of
instructions come from a small scanner here that knows parser directives, line continuations with the
file's escape character, comment lines inside continuations, heredocs and CRLF endings. Edits are
splices into the original text: an existing label is updated where it stands, new labels go in one
LABEL instruction at the end of the final stage, and a second run changes nothing.
"""

from __future__ import annotations

import io
import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field

from dockerfile_parse import DockerfileParser

from common.labels.rules import is_root_user

DIRECTIVE = re.compile(r"^#\s*(?P<name>[A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?P<value>.*?)\s*$")
HEREDOC = re.compile(r"<<(?P<dash>-?)(?P<quote>[\"']?)(?P<word>[A-Za-z_][A-Za-z0-9_]*)(?P=quote)")
HEREDOC_INSTRUCTIONS = frozenset({"RUN", "COPY", "ADD"})
SAFE_VALUE = re.compile(r"^[A-Za-z0-9_./:,+@%-]+$")
BOOTSTRAP_PATH = "/opt/container/bootstrap.sh"


class DockerfileError(ValueError):
    """A Dockerfile this module cannot edit safely (no FROM, unterminated heredoc, ...)."""


@dataclass
class Instruction:
    keyword: str
    start: int
    end: int
    args_start: int
    heredoc_end: int


@dataclass
class LabelPair:
    key: str
    value: str
    start: int
    end: int
    old_form: bool


@dataclass
class Dockerfile:
    text: str
    escape: str
    newline: str
    instructions: list[Instruction]

    def final_stage(self) -> list[Instruction]:
        froms = [i for i, ins in enumerate(self.instructions) if ins.keyword == "FROM"]
        if not froms:
            raise DockerfileError("no FROM instruction: not a Dockerfile that builds an image")
        return self.instructions[froms[-1]:]

    def label_pairs(self, instruction: Instruction) -> list[LabelPair]:
        return _label_pairs(self.text, instruction, self.escape)

    def words(self, instruction: Instruction) -> list[str]:
        return [value for value, _, _ in _words(self.text, instruction.args_start,
                                                 instruction.end, self.escape)]

    def args_text(self, instruction: Instruction) -> str:
        return " ".join(self.words(instruction))


@dataclass
class InjectionResult:
    text: str
    changed: bool
    warnings: list[str] = field(default_factory=list)
    bootstrap_script: str | None = None


def _lines(text: str) -> list[tuple[int, str]]:
    """(offset, line with its ending) for every line; the last may lack an ending."""
    return [(m.start(), m.group()) for m in re.finditer(r"[^\n]*\n|[^\n]+$", text)]


def _continues(line: str, escape: str) -> bool:
    return re.search(re.escape(escape) + r"[ \t]*\r?\n?$", line) is not None


def parse(text: str) -> Dockerfile:
    lines = _lines(text)
    escape = "\\"
    index = 0
    while index < len(lines):
        match = DIRECTIVE.match(lines[index][1].rstrip("\r\n"))
        if match is None:
            break
        if match["name"].lower() == "escape":
            if match["value"] not in ("\\", "`"):
                raise DockerfileError(f"escape directive {match['value']!r}: must be \\ or `")
            escape = match["value"]
        index += 1
    instructions: list[Instruction] = []
    while index < len(lines):
        offset, line = lines[index]
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            index += 1
            continue
        keyword_match = re.match(r"\s*(\S+)", line)
        assert keyword_match is not None
        keyword = keyword_match.group(1).upper()
        args_start = offset + keyword_match.end()
        logical = [line]
        while _continues(lines[index][1], escape) and index + 1 < len(lines):
            index += 1
            following = lines[index][1].strip()
            if following.startswith("#") or not following:
                continue
            logical.append(lines[index][1])
        end = lines[index][0] + len(lines[index][1])
        heredoc_end = end
        if keyword in HEREDOC_INSTRUCTIONS:
            for marker in HEREDOC.finditer("".join(logical)):
                index += 1
                while index < len(lines):
                    body = lines[index][1].rstrip("\r\n")
                    if (body.lstrip("\t") if marker["dash"] else body) == marker["word"]:
                        break
                    index += 1
                else:
                    raise DockerfileError(f"heredoc <<{marker['word']} of {keyword} at line "
                                          f"{text.count(chr(10), 0, offset) + 1} is never closed")
                heredoc_end = lines[index][0] + len(lines[index][1])
        instructions.append(Instruction(keyword, offset, end, args_start, heredoc_end))
        index += 1
    newline = "\r\n" if "\r\n" in text else "\n"
    return Dockerfile(text, escape, newline, instructions)


def _words(text: str, start: int, end: int, escape: str) -> list[tuple[str, int, int]]:
    """Shell-like words of an instruction's arguments: (decoded value, start, end offsets)."""
    words: list[tuple[str, int, int]] = []
    pos = start
    current: list[str] | None = None
    word_start = pos
    quote: str | None = None
    at_line_start = False
    while pos < end:
        char = text[pos]
        if at_line_start and quote is None:
            rest = text[pos:end]
            blank = re.match(r"[ \t]*", rest)
            assert blank is not None
            if rest[blank.end():blank.end() + 1] == "#":
                newline_at = text.find("\n", pos, end)
                pos = end if newline_at < 0 else newline_at + 1
                continue
            at_line_start = False
        continuation = re.match(re.escape(escape) + r"[ \t]*\r?\n", text[pos:end])
        if continuation and quote != "'":
            pos += continuation.end()
            at_line_start = True
            if current is not None and quote is None:
                words.append(("".join(current), word_start, pos - continuation.end()))
                current = None
            continue
        if quote is None and char in " \t\r\n":
            if current is not None:
                words.append(("".join(current), word_start, pos))
                current = None
            pos += 1
            continue
        if current is None:
            current, word_start = [], pos
        if quote is None and char in "\"'":
            quote = char
        elif quote is not None and char == quote:
            quote = None
        elif char == escape and quote != "'" and pos + 1 < end:
            current.append(text[pos + 1])
            pos += 1
        else:
            current.append(char)
        pos += 1
    if current is not None:
        words.append(("".join(current), word_start, pos))
    return words


def _label_pairs(text: str, instruction: Instruction, escape: str) -> list[LabelPair]:
    words = _words(text, instruction.args_start, instruction.end, escape)
    if not words:
        return []
    first_raw = text[words[0][1]:words[0][2]]
    if "=" not in first_raw:
        value = " ".join(word for word, _, _ in words[1:])
        return [LabelPair(words[0][0], value, words[0][1], words[-1][2], old_form=True)]
    pairs = []
    for value, start, end in words:
        key, sep, label_value = value.partition("=")
        if sep:
            pairs.append(LabelPair(key, label_value, start, end, old_form=False))
    return pairs


def format_label(key: str, value: str, escape: str) -> str:
    if SAFE_VALUE.match(value):
        return f'{key}="{value}"'
    quoted = "".join(escape + c if c in ('"', "$", escape) else c for c in value)
    return f'{key}="{quoted}"'


def final_stage_labels(text: str) -> dict[str, str]:
    """The labels the final stage sets, as the builder resolves them (ARG/ENV substituted)."""
    doc = parse(text)
    doc.final_stage()
    kept, cursor = [], 0
    for ins in doc.instructions:
        if ins.heredoc_end > ins.end:
            kept.append(text[cursor:ins.end])
            cursor = ins.heredoc_end
    kept.append(text[cursor:])
    parser = DockerfileParser(fileobj=io.BytesIO("".join(kept).encode()))
    return dict(parser.labels)


def final_user(doc: Dockerfile) -> str | None:
    users = [ins for ins in doc.final_stage() if ins.keyword == "USER"]
    return doc.args_text(users[-1]) if users else None


def entrypoint_command(doc: Dockerfile, instruction: Instruction) -> str:
    raw = doc.text[instruction.args_start:instruction.end].strip()
    try:
        argv = json.loads(raw)
    except json.JSONDecodeError:
        return doc.args_text(instruction)
    if isinstance(argv, list) and all(isinstance(a, str) for a in argv):
        return shlex.join(argv)
    return doc.args_text(instruction)


def bootstrap_script(command: str) -> str:
    return (
        "#!/bin/sh\n"
        "# Backend.AI replaces the image's ENTRYPOINT; the agent sources this file as root when a\n"
        "# session starts, so the former entrypoint runs here, in the background, and returns at once.\n"
        f"nohup {command} > /tmp/bootstrap-entrypoint.log 2>&1 &\n"
    )


def inject_labels(text: str, labels: Mapping[str, str], *, move_entrypoint: bool = False,
                  ensure_root: bool = True) -> InjectionResult:
    """Return the Dockerfile with `labels` in its final stage; idempotent."""
    doc = parse(text)
    final = doc.final_stage()
    edits: list[tuple[int, int, str]] = []
    warnings: list[str] = []
    remaining = dict(labels)
    for ins in final:
        if ins.keyword != "LABEL":
            continue
        for pair in doc.label_pairs(ins):
            if pair.key not in labels:
                continue
            remaining.pop(pair.key, None)
            if pair.value != labels[pair.key] or pair.old_form:
                edits.append((pair.start, pair.end, format_label(pair.key, labels[pair.key], doc.escape)))
    appended: list[str] = []
    if remaining:
        body = f" {doc.escape}{doc.newline}      ".join(
            format_label(key, value, doc.escape) for key, value in remaining.items())
        appended.append(f"LABEL {body}")
    bootstrap = None
    for ins in final:
        if ins.keyword not in ("ENTRYPOINT", "CMD"):
            continue
        line = text.count("\n", 0, ins.start) + 1
        if ins.keyword == "ENTRYPOINT" and move_entrypoint:
            bootstrap = bootstrap_script(entrypoint_command(doc, ins))
            edits.append((ins.start, ins.end,
                          f"COPY bootstrap.sh {BOOTSTRAP_PATH}{doc.newline}"))
            warnings.append(f"line {line}: ENTRYPOINT moved into {BOOTSTRAP_PATH} "
                            "(bootstrap.sh beside the Dockerfile; it must be in the build context)")
        else:
            warnings.append(f"line {line}: Backend.AI replaces {ins.keyword} with its own kernel "
                            "runner; it will not run in sessions"
                            + ("" if ins.keyword == "CMD" else
                               " (use --move-entrypoint to run it from /opt/container/bootstrap.sh)"))
    user = final_user(doc)
    if ensure_root and user is not None and not is_root_user(user):
        appended.append("USER root")
        warnings.append(f"the final stage switches to USER {user}; appended USER root because "
                        "Backend.AI's entrypoint must start as root (it drops to the session user)")
    new_text = text
    for start, end, replacement in sorted(edits, reverse=True):
        new_text = new_text[:start] + replacement + new_text[end:]
    if appended:
        if new_text and not new_text.endswith("\n"):
            new_text += doc.newline
        new_text += "".join(line + doc.newline for line in appended)
    return InjectionResult(new_text, new_text != text, warnings, bootstrap)
