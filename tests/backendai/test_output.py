"""common.backendai.output: the command's own output and exit status out of a container log."""

from __future__ import annotations

import subprocess

from common.backendai.output import FileFollower, FramedCommand, OutputFollower, clean

# What a 23.09 agent's container log holds around a batch command (seen in the sandbox, shortened).
NOISE_BEFORE = ("chpasswd: (user work) pam_chauthtok() failed, error:\r\n"
                "\x1b[1;32m2026/12/01 08:51:27 [ttyd] \x1b[0mstarting on port 7681\r\n")
NOISE_AFTER = "\x1b[33msshd: exiting\x1b[0m\r\n"


def _container_log(framed: FramedCommand) -> str:
    """Run the framed command in a real shell, then dress its output as the container log does."""
    result = subprocess.run(["sh", "-c", framed.startup_command()], capture_output=True, text=True, check=False)
    return NOISE_BEFORE + result.stdout.replace("\n", "\r\n") + NOISE_AFTER


def test_only_the_commands_output_is_kept_with_its_exit_status() -> None:
    framed = FramedCommand("""printf 'to-stdout 42\\n\\033[31mred\\033[0m\\n'; exit 3""")
    log = _container_log(framed)
    assert framed.program_output(log) == "to-stdout 42\nred\n"
    assert framed.exit_status(log) == 3


def test_the_command_keeps_its_shell_syntax_and_quotes() -> None:
    framed = FramedCommand("""python3 -c "print('a' + \\"b\\")" && echo 'it''s' | tr a-z A-Z""")
    log = _container_log(framed)
    assert framed.program_output(log) == "ab\nITS\n"
    assert framed.exit_status(log) == 0


def test_a_running_command_shows_complete_lines_only() -> None:
    framed = FramedCommand("true")
    partial = f"{NOISE_BEFORE}\r\n{framed.begin}\r\nepoch 1\r\nepoch 2 lo"
    assert framed.program_output(partial) == "epoch 1\n"
    assert framed.exit_status(partial) is None


def test_the_follower_hands_on_each_line_once() -> None:
    framed = FramedCommand("true")
    follower = OutputFollower(framed)
    head = f"{NOISE_BEFORE}\r\n{framed.begin}\r\n"
    assert follower.feed(NOISE_BEFORE) == []
    assert follower.feed(head + "one\r\ntw") == ["one"]
    assert follower.feed(head + "one\r\ntwo\r\nthree\r\n") == ["two", "three"]
    assert follower.feed(head + f"one\r\ntwo\r\nthree\r\nfour\r\n\r\n{framed.end} 0\r\n") == ["four"]
    assert follower.feed(head + f"one\r\ntwo\r\nthree\r\nfour\r\n\r\n{framed.end} 0\r\n") == []


def test_another_sessions_markers_are_not_ours() -> None:
    ours, theirs = FramedCommand("true"), FramedCommand("true")
    assert ours.token != theirs.token
    assert ours.program_output(_container_log(theirs)) == ""


def test_clean_removes_escapes_and_carriage_returns() -> None:
    assert clean("\x1b]0;title\x07\x1b[2K\x1b[1;31mok\x1b[0m\r\n") == "ok\n"
    assert clean("progress 10%\rprogress 100%\r\n") == "progress 100%\n"


def test_the_sshd_lines_of_a_cluster_session_are_not_the_programs() -> None:
    framed = FramedCommand("true")
    sshd = ("[97] Dec 01 12:20:10 Child connection from 172.18.0.3:46256\r\n"
            "[97] Dec 01 12:20:10 Pubkey auth succeeded for 'work' with ssh-rsa key from 172.18.0.3:46256\r\n")
    log = (f"{NOISE_BEFORE}\r\n{framed.begin}\r\nlauncher: node sub1 answers SSH\r\n{sshd}epoch 1\r\n"
           f"[1] Dec 01 is a date, not sshd\r\nloss [3] Dec 01 12:20:10 quoted\r\n{sshd}\r\n"
           f"\repoch 2:  4%|4 | 1/24{sshd}\repoch 2: 100%|##| 24/24\r\n\r\n{framed.end} 0\r\n")
    assert framed.program_output(log) == ("launcher: node sub1 answers SSH\nepoch 1\n[1] Dec 01 is a date, not sshd\n"
                                          "loss [3] Dec 01 12:20:10 quoted\n\nepoch 2: 100%|##| 24/24\n")


def test_a_log_cut_by_the_agents_cap_still_gives_the_tail_and_the_exit_status() -> None:
    """The agent keeps only the end of a long log: the begin marker is gone, the end marker is not."""
    framed = FramedCommand("true")
    lines = [f"step {n}" for n in range(5000)] + ["RESULT,OBJECT_DETECTION,1,7,user,now"]
    log = f"{NOISE_BEFORE}\r\n{framed.begin}\r\n" + "".join(f"{line}\r\n" for line in lines) + f"\r\n{framed.end} 3\r\n"
    capped = log[-4096:]
    assert framed.exit_status(capped) == 3
    tail = framed.program_output(capped)
    assert tail.endswith("step 4999\nRESULT,OBJECT_DETECTION,1,7,user,now\n") and framed.begin not in tail


def test_the_follower_finds_its_place_again_in_a_capped_log() -> None:
    """Shown live from the whole log, then the last read is the capped copy: only the lines not yet shown."""
    framed = FramedCommand("true")
    body = "".join(f"line {n}\r\n" for n in range(3000))
    follower = OutputFollower(framed)
    live = f"{framed.begin}\r\n{body}"
    assert follower.feed(live)[-1] == "line 2999"
    ended = f"{live}line 3000\r\nRESULT,x\r\n\r\n{framed.end} 0\r\n"
    assert follower.feed(ended[-3000:]) == ["line 3000", "RESULT,x"]


def test_with_an_output_file_the_output_goes_to_both_and_the_file_is_read_piece_by_piece(tmp_path) -> None:
    """What a run in a session with its results folder mounted does: the file has every line and the end
    marker with the status; the follower reads it in pieces cut anywhere, multi-byte characters too."""
    out = tmp_path / "session" / "output.txt"
    framed = FramedCommand("printf 'épreuve 1\\n\\033[32mgreen\\033[0m\\n50%%\\r100%%\\n'; echo err >&2; exit 4",
                           output_file=str(out))
    log = _container_log(framed)
    assert {"épreuve 1", "green", "err"} <= set(framed.program_output(log).splitlines())
    assert framed.exit_status(log) == 4
    data = out.read_bytes()
    follower = FileFollower(framed)
    seen = [line for start in range(0, len(data), 3) for line in follower.feed(data[start:start + 3])]
    assert seen == ["épreuve 1", "green", "100%", "err"]
    assert follower.exit_code == 4 and follower.ended and follower.offset == len(data)
    assert follower.feed(b"more after the end\n") == []


def test_a_file_that_stopped_short_is_completed_from_the_container_log(tmp_path) -> None:
    """Seen on a 26.9 sandbox: the output file in the results folder stopped growing while the run went on.
    What the file gave is kept and the rest, RESULT line included, comes from the container log."""
    out = tmp_path / "session" / "output.txt"
    framed = FramedCommand("for n in $(seq 1 50); do echo \"line $n\"; done; echo RESULT,x; exit 0",
                           output_file=str(out))
    log = _container_log(framed)
    data = out.read_bytes()
    short = data[:data.index(b"line 21\n")]  # what the file held when it stopped
    follower = FileFollower(framed)
    assert follower.feed(short)[-1] == "line 20" and not follower.ended
    rest = OutputFollower(framed).after(log, follower.output)
    assert rest == [f"line {n}" for n in range(21, 51)] + ["RESULT,x"]
    follower.extend(rest)
    assert follower.output.splitlines() == [f"line {n}" for n in range(1, 51)] + ["RESULT,x"]
    assert framed.exit_status(log) == 0
