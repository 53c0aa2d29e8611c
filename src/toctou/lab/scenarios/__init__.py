"""The registry: every scenario the lab serves, in catalogue order.

A scenario is a package here whose ``__init__`` defines ``SCENARIO`` (a ``toctou.lab.scenario.
Scenario``); registering it is one line in ``PACKAGES``. Nothing else in the lab names a scenario.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import import_module

from toctou.lab.errors import UnknownScenario
from toctou.lab.scenario import Scenario

__all__ = ["PACKAGES", "SCENARIOS", "get_scenario"]

PACKAGES = (
    "inventory",
    "wallet",
    "payment",
    "coupon",
    "signup",
    "counter",
    "cart",
    "login",
)


def _load(package: str) -> Scenario:
    scenario = getattr(import_module(f"{__name__}.{package}"), "SCENARIO", None)
    if not isinstance(scenario, Scenario) or scenario.name != package:
        raise TypeError(f"{__name__}.{package} must define SCENARIO = Scenario(name={package!r})")
    return scenario


SCENARIOS: Mapping[str, Scenario] = {name: _load(name) for name in PACKAGES}


def get_scenario(name: str) -> Scenario:
    """The scenario called ``name``; a 404 naming the valid ones otherwise."""
    scenario = SCENARIOS.get(name)
    if scenario is None:
        raise UnknownScenario(name, list(SCENARIOS))
    return scenario
