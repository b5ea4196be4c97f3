import os
from pathlib import Path

from common.labels.dockerfile import final_stage_labels
from common.labels.rules import resolve_labels

CORPUS = Path(__file__).parent / "corpus"


def test_label_writes_dest_and_second_run_changes_nothing(invoke, tmp_path: Path):
    dest = tmp_path / "Dockerfile"
    first = invoke("images.label", str(CORPUS / "pytorch-official.Dockerfile"), str(dest), "--profile", "cuda",
                   "--label", "ai.backend.resource.min.mem=4g")
    assert first.returncode == 0, first.stderr
    assert "appended USER root" in first.stderr
    labels = final_stage_labels(dest.read_text())
    assert labels["ai.backend.resource.min.mem"] == "4g"
    assert labels["ai.backend.accelerators"] == "cuda"
    mtime = dest.stat().st_mtime_ns
    second = invoke("images.label", str(dest), str(dest), "--profile", "cuda",
                    "--label", "ai.backend.resource.min.mem=4g")
    assert second.returncode == 0 and "already up to date" in second.stderr
    assert dest.stat().st_mtime_ns == mtime


def test_dash_writes_to_stdout_and_leaves_the_source(invoke):
    source = CORPUS / "crlf.Dockerfile"
    before = source.read_bytes()
    result = invoke("images.label", str(source), "-", "--profile", "cpu")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("FROM ubuntu:22.04")
    assert "ai.backend.runtime-path" in result.stdout
    assert "Backend.AI replaces ENTRYPOINT" in result.stderr
    assert source.read_bytes() == before


def test_invalid_labels_write_nothing_and_exit_non_zero(invoke, tmp_path: Path):
    dest = tmp_path / "Dockerfile"
    result = invoke("images.label", str(CORPUS / "ngc-pytorch.Dockerfile"), str(dest),
                    "--label", "ai.backend.service-ports=web:http:80",
                    "--label", "ai.backend.resource.min.mem=2Gi")
    assert result.returncode == 1
    assert "nothing written" in result.stderr
    assert "ai.backend.service-ports='web:http:80'" in result.stderr
    assert "must be larger than 1024" in result.stderr
    assert "'2Gi' is not a binary size" in result.stderr
    assert not dest.exists() and not list(tmp_path.iterdir())


def test_existing_bad_label_in_the_dockerfile_is_overwritten_not_kept(invoke, tmp_path: Path):
    dest = tmp_path / "Dockerfile"
    dest.write_text('FROM x\nLABEL ai.backend.kernelspec="7"\n')
    assert invoke("images.label", str(dest), str(dest), "--profile", "cpu").returncode == 0
    assert final_stage_labels(dest.read_text())["ai.backend.kernelspec"] == "1"
    dest.write_text('FROM x\nLABEL ai.backend.role="Compute"\n')
    refused = invoke("images.label", str(dest), str(dest), "--profile", "cpu")
    assert refused.returncode == 1 and "ai.backend.role='Compute'" in refused.stderr
    assert dest.read_text() == 'FROM x\nLABEL ai.backend.role="Compute"\n'


def test_move_entrypoint_writes_an_executable_bootstrap(invoke, tmp_path: Path):
    dest = tmp_path / "Dockerfile"
    result = invoke("images.label", str(CORPUS / "ngc-pytorch.Dockerfile"), str(dest), "--move-entrypoint")
    assert result.returncode == 0, result.stderr
    bootstrap = tmp_path / "bootstrap.sh"
    assert os.access(bootstrap, os.X_OK)
    assert "/opt/nvidia/nvidia_entrypoint.sh" in bootstrap.read_text()
    assert "ENTRYPOINT" not in dest.read_text()


def test_check_reports_errors_and_exit_codes(invoke, tmp_path: Path):
    good = tmp_path / "good.Dockerfile"
    good.write_text("FROM x\n" + "".join(f'LABEL {k}="{v}"\n' for k, v in resolve_labels("cpu").items()))
    ok = invoke("images.check", str(good))
    assert ok.returncode == 0 and "Backend.AI labels valid" in ok.stdout
    bad = tmp_path / "bad.Dockerfile"
    bad.write_text(good.read_text() + 'LABEL ai.backend.features="batch  uid-match"\nUSER nobody\n')
    result = invoke("images.check", str(bad))
    assert result.returncode == 1
    assert "ai.backend.features='batch  uid-match'" in result.stderr
    assert "USER='nobody'" in result.stderr and "2 error(s)" in result.stderr


def test_check_of_an_unknown_target_says_so(invoke):
    result = invoke("images.check", "no-such-image-or-file:0")
    assert result.returncode == 1
    assert "no-such-image-or-file:0" in result.stderr
