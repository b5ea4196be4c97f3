"""Reading an implementation folder: benchmark, launch, configs (sources followed by bash), mounts, what the
SLURM host does; and every folder it refuses, with the reason in one line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from implementations import importer, shell
from implementations.scripts import UnmappableLaunchError


def test_a_submission_folder_says_what_it_is_and_how_it_launches(submission: Path) -> None:
    impl = importer.read_implementation(submission)
    assert (impl.org, impl.benchmark, impl.name) == ("Backend.AI", "llama31_8b", "cpu_gloo")
    assert impl.framework == "PyTorch"
    assert (impl.ruleset, impl.ruleset_source) == ("5.1.0", "run.sub (MLPERF_RULESET)")
    assert impl.config_names == ("config_CPU_1x2x4.sh", "config_CPU_2x1x8.sh")  # config_common.sh is shared
    launch = impl.launch
    assert (launch.entry, launch.per_gpu, launch.tasks_var, launch.workdir) == (
        "./run_and_time.sh", True, "DGXNGPU", "/workspace/impl")
    assert launch.line is not None and launch.line.where == "run.sub:20"
    assert impl.workdir == "/workspace/impl"  # the Dockerfile's final WORKDIR
    assert [(m.container_path, m.host, m.read_only) for m in impl.static_mounts] == [
        ("/data", "${DATADIR}/tiny", True), ("/results", "${LOGDIR}", False)]
    assert {f.what: f.where for f in impl.findings} == {
        "enroot/pyxis container set-up": "run.sub:15", "page-cache drop on the host": "run.sub:18",
        "compliance check after each run": "run.sub:23"}


def test_configs_are_sourced_by_bash_following_their_sources(submission: Path) -> None:
    impl = importer.read_implementation(submission)
    one, two = (impl.config(name) for name in impl.config_names)
    assert (one.nodes, one.gpus_per_node, one.batch) == (1, 2, ("BATCHSIZE", "4"))
    assert (two.nodes, two.gpus_per_node, two.batch) == (2, 1, ("BATCHSIZE", "8"))
    assert [Path(p).name for p in one.sourced.sourced] == ["config_CPU_1x2x4.sh", "config_common.sh"]
    # values the shared config computes the way bash does: BASH_SOURCE of the sourcing config, arithmetic
    assert one.exports["DGXSYSTEM"] == "CPU_1x2x4" and one.exports["WALLTIME"] == "5"
    assert one.exports["RENDEZVOUS_PORT"] == "29571"
    assert impl.config("CPU_2x1x8").name == "config_CPU_2x1x8.sh"  # the system name alone works too
    described = importer.describe(impl, [one, two])
    assert "config_CPU_1x2x4.sh: 1 node(s) x 2 GPU(s) x batch 4 (BATCHSIZE) (sources config_common.sh)" in described


def test_a_config_that_unsets_and_fails_is_reported(submission: Path) -> None:
    (submission / "config_broken.sh").write_text("export A=1\nsource $(dirname ${BASH_SOURCE[0]})/missing.sh\n")
    with pytest.raises(shell.ConfigError, match=r"config_broken.sh: bash could not source it: .*missing.sh"):
        importer.read_implementation(submission).config("config_broken.sh")
    sourced = shell.source_config(submission / "config_CPU_1x2x4.sh", {**shell.CLEAN_ENV, "OMP_NUM_THREADS": "4",
                                                                       "GONE": "x"})
    assert sourced.exports["OMP_NUM_THREADS"] == "1" and "GONE" in sourced.environ


@pytest.mark.parametrize(("remove", "missing"), [
    (["Dockerfile"], "it has no Dockerfile"),
    (["config_CPU_1x2x4.sh", "config_CPU_2x1x8.sh", "config_common.sh"], "no config_<SYSTEM>.sh files"),
])
def test_a_folder_without_what_an_implementation_has_is_refused_naming_it(submission: Path, remove: list[str],
                                                                          missing: str) -> None:
    for name in remove:
        (submission / name).unlink()
    with pytest.raises(importer.NotAnImplementationError, match=missing):
        importer.read_implementation(submission)


def test_a_folder_with_nothing_of_an_implementation_names_every_missing_part(tmp_path: Path) -> None:
    folder = tmp_path / "Org" / "benchmarks" / "llama31_8b" / "implementations" / "empty"
    folder.mkdir(parents=True)
    (folder / "README.md").write_text("nothing here\n")
    with pytest.raises(importer.NotAnImplementationError) as error:
        importer.read_implementation(folder)
    assert str(error.value).endswith("is not an MLPerf implementation: it has no Dockerfile, no config_<SYSTEM>.sh "
                                     "files, no run_and_time.sh or run.sub")


def test_the_benchmark_must_be_one_mlperf_logging_knows(tmp_path: Path, submission: Path) -> None:
    outside = tmp_path / "somewhere"
    shutil.copytree(submission, outside)
    with pytest.raises(importer.NotAnImplementationError, match="not in the submission layout"):
        importer.read_implementation(outside)
    assert importer.read_implementation(outside, benchmark="llama31_8b").benchmark == "llama31_8b"
    with pytest.raises(importer.NotAnImplementationError, match="benchmark 'llama4' is not one mlperf-logging knows"):
        importer.read_implementation(outside, benchmark="llama4")


def test_a_config_it_does_not_have_is_refused_with_the_ones_it_has(submission: Path) -> None:
    with pytest.raises(importer.UnknownConfigError, match=r"has no config config_DGXH100.sh \(it has: "
                                                          r"config_CPU_1x2x4.sh, config_CPU_2x1x8.sh\)"):
        importer.read_implementation(submission).config("config_DGXH100.sh")


def test_a_launch_without_tasks_per_node_is_refused_naming_the_line(submission: Path) -> None:
    run_sub = submission / "run.sub"
    run_sub.write_text(run_sub.read_text().replace('--ntasks-per-node="${DGXNGPU}"', "--ntasks=16"))
    with pytest.raises(UnmappableLaunchError, match=r"^run.sub:20: `srun -l --mpi=pmix --ntasks=16 .*` gives "
                                                    r"--ntasks=16 without --ntasks-per-node"):
        importer.read_implementation(submission)


def test_a_launch_from_outside_the_cluster_is_refused_naming_the_line(submission: Path) -> None:
    for name in ("run.sub", "run_and_time.sh"):
        (submission / name).unlink()
    (submission / "launch.sh").write_text("#!/bin/bash\nset -e\nsbatch --nodes=$NNODES --wrap 'python3 train.py'\n")
    with pytest.raises(UnmappableLaunchError, match=r"^launch.sh:3: `sbatch --nodes=\$NNODES --wrap 'python3 "
                                                    r"train.py'`: the project maps a run.sub srun line"):
        importer.read_implementation(submission)


def test_a_run_and_time_alone_is_one_task_per_gpu_unless_it_starts_its_own_workers(submission: Path) -> None:
    (submission / "run.sub").unlink()
    assert importer.read_implementation(submission).launch.per_gpu
    entry = submission / "run_and_time.sh"
    entry.write_text(entry.read_text().replace("exec python -u train.py", "torchrun --nproc_per_node=2 train.py"))
    launch = importer.read_implementation(submission).launch
    assert (launch.per_gpu, launch.fixed_tasks) == (False, 1)


def test_what_run_sub_assumes_fills_what_a_config_leaves_unset(submission: Path) -> None:
    run_sub = submission / "run.sub"
    run_sub.write_text(run_sub.read_text().replace(': "${NEXP:=1}"', ': "${NEXP:=1}"\n: "${DGXNGPU:=8}"')
                       .replace("MLPERF_RULESET:=5.1.0", "MLPERF_RULESET:=5.0.0"))
    config = submission / "config_CPU_2x1x8.sh"
    config.write_text(config.read_text().replace("export DGXNGPU=1\n", ""))
    impl = importer.read_implementation(submission)
    two = impl.config("config_CPU_2x1x8.sh")
    assert (two.gpus_per_node, impl.tasks_per_node(two)) == (8, 8)
    assert "DGXNGPU" not in two.exports  # run.sub's default is its own, srun's tasks do not get it
    assert impl.tasks_per_node(impl.config("config_CPU_1x2x4.sh")) == 2  # a config's own value wins
    assert (impl.ruleset, impl.ruleset_source) == (
        "5.1.0", "run.sub names 5.0.0, which has no llama31_8b rules; the first round with it from there on")


def test_the_srun_line_of_run_and_time_is_the_launch_not_an_earlier_one(submission: Path) -> None:
    (submission / "expected-mounts.csv").write_text("key,type\n")
    (submission / "run_comm_gemm_overlap_tests.sh").write_text("#!/bin/bash\n")
    run_sub = submission / "run.sub"
    run_sub.write_text(run_sub.read_text().replace(
        "srun --ntasks-per-node=1 --container-image", "srun --ntasks-per-node=1 python3 -m mlperf_common.mountcheck "
        "--expected_mounts_csv expected-mounts.csv\n"  # NVIDIA's run.sub checks the mounts, tests overlap first
        'srun --ntasks-per-node="${DGXNGPU}" slurm2pytorch ./run_comm_gemm_overlap_tests.sh\n'
        "srun --ntasks-per-node=1 --container-image"))
    launch = importer.read_implementation(submission).launch
    assert (launch.entry, launch.wrapper, launch.tasks_var) == ("./run_and_time.sh", (), "DGXNGPU")


def test_what_a_task_does_that_a_container_may_refuse_is_found_with_its_line(submission: Path) -> None:
    entry = submission / "run_and_time.sh"
    entry.write_text(entry.read_text().replace("exec python -u train.py",
                                               'ln -sTf "${DATA_DIR}/coco2017" /coco\n${BINDCMD:-} python -u train.py'))
    found = {f.what: f.where for f in importer.read_implementation(submission).task_findings}
    assert found == {"a link at the top of the file system": "run_and_time.sh:16",
                     "CPU/IB binding helper (bindpcie)": "run_and_time.sh:17"}
