"""Slot amounts as Backend.AI writes them, read for the preflight's comparison with the key's limits."""

from __future__ import annotations

from decimal import Decimal

import pytest

from common.backendai import preflight
from common.backendai.preflight import PreflightError, amount


def test_counts_sizes_and_fractions() -> None:
    assert amount(8) == 8 and amount("0.5") == Decimal("0.5")
    assert amount("900g") == 900 * 2**30 and amount("6G") == 6 * 2**30 and amount("1GiB") == 2**30
    assert amount("256m") == 256 * 2**20 and amount("24209522688") == 24209522688
    with pytest.raises(PreflightError, match="'lots' is not a number or size"):
        amount("lots")


class PresetsAnswer:
    """An API whose /resource/check-presets answers as a manager of a two-agent group of 2 CPUs each does."""

    def __init__(self, using_cpu: str) -> None:
        self.answer = {"keypair_limits": {"cpu": "Infinity", "mem": "Infinity"},
                       "scaling_group_remaining": {"cpu": str(4 - int(using_cpu)), "mem": str(12 * 2**30)},
                       "scaling_groups": {"default": {"using": {"cpu": using_cpu, "mem": "0"},
                                                      "remaining": {"cpu": str(4 - int(using_cpu)),
                                                                    "mem": str(12 * 2**30)}}}}

    def call(self, method: str, path: str, *, json_body: dict, **_kwargs: object) -> dict:
        assert (method, path) == ("POST", "/resource/check-presets")
        # a 26.x manager answers 400 (schema validation) to a check without the project
        assert json_body.get("group"), json_body
        return self.answer


def request(cpus: int, containers: int = 1) -> preflight.Request:
    return preflight.Request(image="img", architecture="x86_64", resources={"cpu": cpus, "mem": "6g"},
                             containers=containers, resource_group="default", project=None)


def test_more_than_the_groups_agents_have_in_all_is_refused_before_any_session() -> None:
    said: list[str] = []
    with pytest.raises(PreflightError, match=r"refused before any session: 2 container\(s\) .*\(cpu 6 > 4\)"):
        preflight._limits(PresetsAnswer("0"), request(3, containers=2), said.append)  # type: ignore[arg-type]
    # what the group has, but not free now, waits (the scheduler places it once the others end)
    preflight._limits(PresetsAnswer("3"), request(2, containers=2), said.append)  # type: ignore[arg-type]
    assert said and "will wait for resources" in said[0]
