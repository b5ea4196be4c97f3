import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.labels.dockerfile import DockerfileError, final_stage_labels, inject_labels, parse
from common.labels.rules import PREFIX, resolve_labels

CORPUS = sorted((Path(__file__).parent / "corpus").glob("*.Dockerfile"))
LABELS = resolve_labels("cuda")


def read(path: Path) -> str:
    with open(path, newline="") as handle:
        return handle.read()


def instruction_texts(text: str, skip: frozenset[str] = frozenset({"LABEL"})) -> list[str]:
    doc = parse(text)
    return [text[i.start:i.heredoc_end].rstrip("\r\n") for i in doc.instructions if i.keyword not in skip]


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_corpus_gets_exactly_the_intended_labels_and_keeps_everything_else(path):
    original = read(path)
    result = inject_labels(original, LABELS)
    final = final_stage_labels(result.text)
    assert {k: v for k, v in final.items() if k.startswith(PREFIX)} == LABELS
    before = {k: v for k, v in final_stage_labels(original).items() if not k.startswith(PREFIX)}
    assert {k: v for k, v in final.items() if not k.startswith(PREFIX)} == before
    kept = instruction_texts(result.text, frozenset({"LABEL", "USER"}))
    assert kept == instruction_texts(original, frozenset({"LABEL", "USER"}))
    if "\r\n" in original:
        assert re.search(r"(?<!\r)\n", result.text) is None
    assert not inject_labels(result.text, LABELS).changed


def test_heredoc_bodies_are_not_instructions():
    text = read(Path(__file__).parent / "corpus" / "heredoc.Dockerfile")
    doc = parse(text)
    assert [i.keyword for i in doc.instructions] == ["FROM", "RUN", "COPY", "RUN"]
    result = inject_labels(text, LABELS)
    assert "echo \"LABEL ai.backend.kernelspec=5\"" in result.text
    assert "\tUSER nobody\n" in result.text and not result.text.rstrip().endswith("USER root")


def test_labels_land_in_the_final_stage_only():
    text = read(Path(__file__).parent / "corpus" / "multi-stage.Dockerfile")
    result = inject_labels(text, LABELS)
    assert 'LABEL ai.backend.kernelspec="9" stage="builder"' in result.text
    assert result.text.startswith(text)


def test_existing_labels_are_updated_where_they_stand():
    text = 'FROM x\nLABEL a="1" ai.backend.kernelspec="2" \\\n    b="2"\nRUN true\n'
    result = inject_labels(text, {"ai.backend.kernelspec": "1"})
    assert result.text == 'FROM x\nLABEL a="1" ai.backend.kernelspec="1" \\\n    b="2"\nRUN true\n'


def test_old_label_form_is_rewritten_in_place():
    text = "FROM x\nLABEL ai.backend.features batch  uid-match\nRUN true\n"
    result = inject_labels(text, {"ai.backend.features": "batch uid-match"})
    assert result.text == 'FROM x\nLABEL ai.backend.features="batch uid-match"\nRUN true\n'


def test_escape_directive_is_used_for_continuations_and_quotes():
    text = "# escape=`\nFROM x\nRUN echo C:\\dir\n"
    result = inject_labels(text, {"ai.backend.kernelspec": "1", "note": 'say "hi"'})
    assert result.text.endswith('LABEL ai.backend.kernelspec="1" `\n      note="say `"hi`""\n')
    doc = parse(result.text)
    pairs = [p for i in doc.final_stage() if i.keyword == "LABEL" for p in doc.label_pairs(i)]
    assert {p.key: p.value for p in pairs} == {"ai.backend.kernelspec": "1", "note": 'say "hi"'}


def test_non_root_user_gets_user_root_appended_once():
    result = inject_labels("FROM x\nUSER 1000:1000\n", {"ai.backend.kernelspec": "1"})
    assert result.text.endswith("USER root\n")
    assert any("USER 1000:1000" in w for w in result.warnings)
    assert not inject_labels(result.text, {"ai.backend.kernelspec": "1"}).changed
    assert not inject_labels("FROM x\nUSER root\n", {}).changed


def test_entrypoint_warns_or_moves_into_bootstrap():
    text = 'FROM x\nENTRYPOINT ["/init", "--serve"]\nCMD ["bash"]\n'
    warned = inject_labels(text, {})
    assert [w.split(":")[0] for w in warned.warnings] == ["line 2", "line 3"]
    assert "--move-entrypoint" in warned.warnings[0]
    moved = inject_labels(text, {}, move_entrypoint=True)
    assert "ENTRYPOINT" not in moved.text
    assert "COPY bootstrap.sh /opt/container/bootstrap.sh\n" in moved.text
    assert "nohup /init --serve > /tmp/bootstrap-entrypoint.log 2>&1 &" in moved.bootstrap_script


def test_missing_final_newline_is_added_before_the_new_instruction():
    result = inject_labels("FROM x\nRUN true", {"a": "1"})
    assert result.text == 'FROM x\nRUN true\nLABEL a="1"\n'


@pytest.mark.parametrize(("text", "message"), [
    ("# just a comment\n", "no FROM"),
    ("FROM x\nRUN <<EOF\necho\n", "heredoc <<EOF of RUN at line 2 is never closed"),
    ("# escape=!\nFROM x\n", "escape directive '!'"),
])
def test_unsafe_input_is_refused(text, message):
    with pytest.raises(DockerfileError, match=re.escape(message)):
        inject_labels(text, {"a": "1"})


words = st.from_regex(r"[a-z0-9_./-]{1,12}", fullmatch=True)
instruction = st.one_of(
    st.builds(lambda w: f"RUN echo {w}", words),
    st.builds(lambda a, b: f"RUN echo {a} && \\\n    echo {b}", words, words),
    st.builds(lambda a, b: f"ENV {a.upper().replace('.', '_').replace('/', '_').replace('-', '_')}X={b}",
              words, words),
    st.builds(lambda w: f"WORKDIR /{w}", words),
    st.builds(lambda a, b: f"COPY {a} /{b}", words, words),
    st.builds(lambda w: f"# comment {w}", words),
    st.just(""),
    st.builds(lambda k, v: f'LABEL org.example.{k.replace("/", "")}x="{v}"', words, words),
    st.builds(lambda w: f"RUN <<EOF\necho {w}\nFROM inside-heredoc\nEOF", words),
)
stage = st.builds(lambda image, body: "\n".join([f"FROM {image}", *body]), words, st.lists(instruction, max_size=6))
dockerfile = st.builds(lambda stages, crlf: ("\r\n" if crlf else "\n").join(stages).replace(
    "\n", "\r\n" if crlf else "\n") + ("\r\n" if crlf else "\n"), st.lists(stage, min_size=1, max_size=3),
    st.booleans())
backend_values = st.dictionaries(st.sampled_from(sorted(LABELS)), words, max_size=4)


@settings(max_examples=150, deadline=None)
@given(dockerfile, backend_values)
def test_random_dockerfiles_keep_every_other_instruction_and_injection_is_idempotent(text, existing):
    if existing:
        newline = "\r\n" if "\r\n" in text else "\n"
        text += "LABEL " + " ".join(f'{k}="{v}"' for k, v in existing.items()) + newline
    result = inject_labels(text, LABELS)
    assert instruction_texts(result.text) == instruction_texts(text)
    final = final_stage_labels(result.text)
    assert {k: v for k, v in final.items() if k.startswith(PREFIX)} == LABELS
    if not existing:
        assert result.text.startswith(text)
    assert inject_labels(result.text, LABELS).text == result.text
