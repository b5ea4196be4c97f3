import pytest

from common.labels.service_ports import ServicePort, ServicePortsError, parse_service_ports


def test_the_default_service_ports_parse_and_pty_is_skipped():
    ports = parse_service_ports("ipython:pty:3000,jupyter:http:8080,jupyterlab:http:8090")
    assert ports == [ServicePort("jupyter", "http", (8080,)), ServicePort("jupyterlab", "http", (8090,))]


def test_port_lists_preopen_and_one_trailing_comma_are_accepted():
    ports = parse_service_ports("tb:tcp:[6006,6007],mlflow:preopen:5000,")
    assert ports == [ServicePort("tb", "tcp", (6006, 6007)), ServicePort("mlflow", "preopen", (5000,))]


@pytest.mark.parametrize(("value", "message"), [
    ("jupyter:http:8080, lab:http:8090", "Invalid service-ports format"),
    ("tb:tcp:[6006, 6007]", "Invalid service-ports format"),
    ("a:http:8080,,b:http:8081", "Invalid service-ports format"),
    ("jupyter:http", "Invalid service-ports format"),
    (":http:8080", "Invalid service-ports format"),
    ("a:udp:8080", "Unsupported service port protocol: udp"),
    ("a:internal:8080", "Unsupported service port protocol: internal"),
    ("a:vnc:5901", "Unsupported service port protocol: vnc"),
    ("a:http:8080,b:tcp:8080", "The port 8080 is already used by another service port."),
    ("a:http:[8080,8080]", "The port 8080 is already used by another service port."),
    ("a:http:1024", "The service port number 1024 must be larger than 1024 to run without the root privilege."),
    ("a:http:65535", "The service port number 65535 must be smaller than 65535."),
    ("a:http:2002", "The service ports 2000 to 2003, 2200 and 7681 are reserved for internal use."),
    ("a:http:2200", "The service ports 2000 to 2003, 2200 and 7681 are reserved for internal use."),
    ("a:http:7681", "The service ports 2000 to 2003, 2200 and 7681 are reserved for internal use."),
])
def test_every_agent_error_is_raised_with_the_agents_wording(value, message):
    with pytest.raises(ServicePortsError) as error:
        parse_service_ports(value)
    assert str(error.value) == message


def test_port_range_boundaries():
    assert parse_service_ports("a:http:1025,b:http:65534")[1].ports == (65534,)


def test_newer_protocols_only_when_asked():
    assert parse_service_ports("desk:vnc:5901", accept_newer_protocols=True)[0].protocol == "vnc"
