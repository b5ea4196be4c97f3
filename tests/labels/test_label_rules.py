from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.labels.rules import (
    LabelValidationError,
    ProfileError,
    load_profiles,
    parse_assignments,
    resolve_labels,
    validate_labels,
)

B = "ai.backend."


def valid(**changes: str) -> dict[str, str]:
    labels = resolve_labels("cuda")
    for key, value in changes.items():
        labels[B + key.replace("_", "-")] = value
    return labels


def errors_of(labels):
    return [(f.label, f.rule, f.message) for f in validate_labels(labels).errors]


def test_defaults_hold_the_seed_values_and_every_profile_validates():
    defaults, profiles = load_profiles()
    assert defaults[B + "kernelspec"] == "1"
    assert defaults[B + "envs.corecount"] == "OPENBLAS_NUM_THREADS,OMP_NUM_THREADS,NPROC"
    assert defaults[B + "features"] == "batch query uid-match user-input"
    assert defaults[B + "resource.min.mem"] == "1g"
    assert defaults[B + "service-ports"] == "ipython:pty:3000,jupyter:http:8080,jupyterlab:http:8090"
    assert {"cpu", "cuda"} <= set(profiles)
    for name in profiles:
        report = validate_labels(resolve_labels(name))
        assert report.ok, (name, report.errors)
    assert resolve_labels("cuda")[B + "accelerators"] == "cuda"
    assert B + "accelerators" not in resolve_labels("cpu")


def test_overrides_win_and_an_empty_value_drops_the_label():
    labels = resolve_labels("cpu", {B + "resource.min.mem": "4g", B + "service-ports": ""})
    assert labels[B + "resource.min.mem"] == "4g"
    assert B + "service-ports" not in labels


def test_unknown_profile_names_the_file_and_the_choices():
    with pytest.raises(ProfileError, match=r"unknown label profile 'tpu'.*labels.yaml.*'cpu'"):
        resolve_labels("tpu")


def test_malformed_profiles_file(tmp_path: Path):
    bad = tmp_path / "labels.yaml"
    bad.write_text("defaults: {a: [1]}\nprofiles: {}\n")
    with pytest.raises(ProfileError, match="scalar values"):
        resolve_labels(path=bad)


@pytest.mark.parametrize(("changes", "label", "rule", "fragment"), [
    ({"kernelspec": "2"}, "kernelspec", "kernelspec", "must be 1"),
    ({"kernelspec": "one"}, "kernelspec", "kernelspec", "must be an integer"),
    ({"features": "batch  uid-match"}, "features", "features", "single spaces"),
    ({"features": " uid-match"}, "features", "features", "single spaces"),
    ({"features": ""}, "features", "features", "single spaces"),
    ({"base-distro": "debian12"}, "base-distro", "base-distro", "no kernel runner for 'debian'"),
    ({"base-distro": "ubuntu"}, "base-distro", "base-distro", "<family><version>"),
    ({"base-distro": ""}, "base-distro", "base-distro", "<family><version>"),
    ({"runtime-type": "pyton"}, "runtime-type", "runtime-type", "container exit"),
    ({"runtime-path": ""}, "runtime-path", "runtime-path", "must not be empty"),
    ({"service-ports": "a:http:80"}, "service-ports", "service-ports", "must be larger than 1024"),
    ({"service-ports": "a:http:7681"}, "service-ports", "service-ports", "reserved for internal use"),
    ({"resource.min.mem": "1Gi"}, "resource.min.mem", "binary-size", "'1Gi' is not a binary size"),
    ({"resource.min.mem": "1e9"}, "resource.min.mem", "binary-size", "'1e9'"),
    ({"resource.min.cpu": "two"}, "resource.min.cpu", "resource-decimal", "decimal"),
    ({"resource.min.cuda.shares": "-1"}, "resource.min.cuda.shares", "resource-decimal", ">= 0"),
    ({"resource.preferred.shmem": "64Mi"}, "resource.preferred.shmem", "binary-size", "'64Mi'"),
    ({"role": "compute"}, "role", "role", "case-sensitive"),
    ({"customized-image.owner": "user:1"}, "customized-image.owner", "customized-image", "committed"),
    ({"session-id": "x"}, "session-id", "container-only", "set by the agent"),
    ({"accelerators": "cuda,,rocm"}, "accelerators", "accelerators", "device names"),
    ({"envs.corecount": "OMP NUM"}, "envs.corecount", "envs.corecount", "'OMP NUM'"),
])
def test_each_rule_names_label_value_and_rule(changes, label, rule, fragment):
    labels = valid(**{k.replace("-", "_"): v for k, v in changes.items()})
    found = validate_labels(labels).errors
    assert [(f.label, f.rule) for f in found] == [(B + label, rule)]
    assert fragment in found[0].message
    assert found[0].value == next(iter(changes.values()))
    text = str(found[0])
    assert B + label in text and f"[{rule}]" in text


def test_labels_23_09_requires_are_reported_missing():
    report = validate_labels({B + "kernelspec": "1"})
    assert {f.label for f in report.errors} == {B + k for k in
                                                ("features", "base-distro", "runtime-type", "runtime-path")}
    assert all(f.value is None and f.rule == "required" for f in report.errors)


def test_inference_images_need_their_extra_labels():
    labels = valid(role="INFERENCE", service_ports="api:http:8000")
    assert {(label, rule) for label, rule, _ in errors_of(labels)} == {
        (B + "endpoint-ports", "inference"), (B + "model-path", "inference"), (B + "model-format", "inference")}
    labels.update({B + "endpoint-ports": "api,missing", B + "model-path": "/models", B + "model-format": "onnx"})
    messages = [m for _, _, m in errors_of(labels)]
    assert messages == ["The endpoint-port api must be a preopen service-port.",
                        "ai.backend.endpoint-ports contains an undefined service port: missing"]
    labels[B + "service-ports"] = "api:preopen:8000"
    labels[B + "endpoint-ports"] = "api"
    assert errors_of(labels) == []


@pytest.mark.parametrize(("changes", "rule", "fragment"), [
    ({"features": "batch query"}, "features", "uid-match"),
    ({"features": "uid-match fancy"}, "features", "unknown feature token(s) ['fancy']"),
    ({"base-distro": "ubuntu24.04"}, "base-distro", "falls back to ubuntu22.04"),
    ({"runtime-path": "python3"}, "runtime-path", "relative path"),
    ({"runtime-type": "nodejs"}, "runtime-type", "removed in 25.19"),
    ({"resource.min.cuda.device": "1"}, "resource-gpu-minimum", "every session request a GPU"),
    ({"resource.preferred.shmem": "1g"}, "shmem", "smaller than the memory"),
    ({"kernelsepc": "1"}, "unknown-label", "spelling"),
])
def test_warnings_for_labels_that_load_but_misbehave(changes, rule, fragment):
    labels = valid(**{k.replace("-", "_"): v for k, v in changes.items()})
    report = validate_labels(labels)
    assert report.ok
    assert [(f.rule, fragment in f.message) for f in report.warnings] == [(rule, True)]


def test_non_backend_labels_are_left_alone():
    labels = valid()
    labels["org.opencontainers.image.version"] = "not checked"
    assert validate_labels(labels).ok and not validate_labels(labels).warnings


def test_raise_for_errors_lists_every_finding():
    report = validate_labels(valid(kernelspec="3", base_distro="debian12"))
    with pytest.raises(LabelValidationError) as error:
        report.raise_for_errors("Dockerfile.gpu")
    assert str(error.value).startswith("Dockerfile.gpu: 2 invalid Backend.AI label(s)")
    assert error.value.report is report


def test_assignments_from_the_command_line():
    assert parse_assignments(["a=b=c", "d="]) == {"a": "b=c", "d": ""}
    with pytest.raises(ValueError, match="'nokey': expected KEY=VALUE"):
        parse_assignments(["nokey"])


ports = st.integers(min_value=1025, max_value=65534).filter(lambda p: p not in {2000, 2001, 2002, 2003, 2200})
names = st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True)


@given(st.lists(st.tuples(names, st.sampled_from(["http", "tcp", "preopen"]), ports),
                min_size=1, max_size=6, unique_by=lambda t: t[2]),
       st.sampled_from(["1g", "256m", "1GiB", "512 MiB", "2048"]),
       st.lists(st.sampled_from(["batch", "query", "user-input", "tty"]), unique=True))
def test_generated_valid_label_sets_validate_clean(entries, mem, extra_features):
    service_ports = ",".join(f"{n}:{p}:{port}" for n, p, port in entries if port != 7681)
    labels = valid(features=" ".join(["uid-match", *extra_features]))
    labels[B + "resource.min.mem"] = mem
    if service_ports:
        labels[B + "service-ports"] = service_ports
    report = validate_labels(labels)
    assert report.ok, report.errors
