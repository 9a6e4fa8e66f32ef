"""The controller plugin protocol.

A controller turns the controls a policy set on the entities into
hypervisor calls.  The policy engine calls ``process(host, guests)`` once
per evaluation that succeeded.  A controller handles its own per-guest
errors (log and go on with the next guest); an exception that escapes is
logged by the engine and does not stop the other controllers.
"""
from __future__ import annotations

import configparser
from dataclasses import dataclass

from mom.entity import Entity
from mom.hypervisor.base import Hypervisor


@dataclass
class ControllerContext:
    config: configparser.ConfigParser
    hypervisor: Hypervisor


class Controller:
    def __init__(self, ctx: ControllerContext) -> None:
        self.ctx = ctx

    def process(self, host: Entity, guests: list[Entity]) -> None:
        raise NotImplementedError
