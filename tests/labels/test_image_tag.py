import pytest

from common.labels.image_tag import ImageReferenceError, parse_image_reference, tag_errors, validate_image_reference


@pytest.mark.parametrize("tag", [
    "2.3.0-cuda12.1-cudnn8-runtime", "0.1.0-cuda12.4-py3.11", "0.1.0-cuda12.4-py3.11-g1a2b3c4d5e6f", "latest",
    "24.05-py3",
])
def test_tags_backend_ai_accepts(tag):
    assert tag_errors(tag) == []


@pytest.mark.parametrize(("tag", "fragment"), [
    ("1.0.0-rc.1", "part 'rc.1'"),
    ("main-1a2b3c", "part '1a2b3c'"),
    ("1.0-2", "part '2'"),
    ("x-y-y", "platform tag name 'y' appears twice"),
    ("1.0-ubuntu22.04-x86_64", "part 'x86_64'"),
    ("1.0-cuda12.1-cuda11.8", "platform tag name 'cuda' appears twice"),
    ("-1.0", "must match"),
    ("1.0_", "must match"),
    ("1.0-py_3", "part 'py_3'"),
])
def test_tags_backend_ai_rejects_name_the_part(tag, fragment):
    errors = tag_errors(tag)
    assert errors and fragment in errors[0] and repr(tag) in errors[0]


def test_references_split_like_the_docker_cli():
    ref = parse_image_reference("harbor.example.com:8443/mlperf/mlperf-maskrcnn:0.1.0-cuda12.4-py3.11")
    assert (ref.registry, ref.repository, ref.tag) == ("harbor.example.com:8443", "mlperf/mlperf-maskrcnn",
                                                       "0.1.0-cuda12.4-py3.11")
    assert parse_image_reference("library/python").registry == "docker.io"
    assert parse_image_reference("localhost/x:1").registry == "localhost"
    digest = "sha256:" + "a" * 64
    assert parse_image_reference(f"127.0.0.1:5000/a/b@{digest}").digest == digest


@pytest.mark.parametrize("ref", ["", " x", "127.0.0.1:5000/UPPER:1", "r.io/a/b@sha256:12"])
def test_malformed_references(ref):
    with pytest.raises(ImageReferenceError):
        parse_image_reference(ref)


def test_validate_full_reference():
    assert validate_image_reference("127.0.0.1:5000/mlperf/mlperf-gnmt:0.1.0-cuda12.4-py3.11") == []
    assert "has no tag" in validate_image_reference("127.0.0.1:5000/mlperf/mlperf-gnmt")[0]
    assert "part 'rc.1'" in validate_image_reference("r.io/a/b:1.0-rc.1")[0]
