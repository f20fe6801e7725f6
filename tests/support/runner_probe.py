"""A minimal service run by the real runner, so the runner's own promises can be tested.

It is a service like the four real ones as far as ``shared/runner`` can tell:
a ``Publisher``, a ``start`` that takes ``--start-delay`` seconds (the window a
signal must not be fatal in), an ``apply`` that reports the instance names of
the new file, and a ``stop``.  Everything it does is printed on stdout, so a
test reads what the runner made of signals, reloads and errors.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from nats.aio.client import Client

from shared.bus import connect, register_service
from shared.config.model import Config
from shared.runner.run import ReloadRefused, ServiceContext, ServiceSpec


class ProbeService:
    def __init__(self, ctx: ServiceContext, config: Config) -> None:
        self.ctx = ctx
        self.publisher = ctx.publisher()
        self.names = sorted(config.vrrp.instances)
        self.nc: Client | None = None

    async def start(self) -> None:
        print(f"probe starting with {self.names}", flush=True)
        if not self.ctx.args.no_bus:
            self.nc = await connect(self.ctx.nats_url, self.ctx.client_name, settings=self.ctx.settings)
            await self.publisher.start(self.nc)
            await register_service(
                self.nc,
                node=self.ctx.node,
                service="probe",
                version="0.0.1",
                status=self.status,
                reload=self.ctx.reload_request,
                publisher=self.publisher,
            )
        await asyncio.sleep(self.ctx.args.start_delay)
        if self.ctx.args.fail_start:
            raise OSError("the probe was told to fail its start")

    async def status(self) -> dict[str, object]:
        return {"instances": self.names}

    async def apply(self, config: Config) -> str:
        names = sorted(config.vrrp.instances)
        if "REFUSE_ME" in names:
            raise ReloadRefused(["the probe refuses an instance named REFUSE_ME"])
        self.names = names
        return "instances " + ",".join(names)

    async def stop(self) -> None:
        print("probe stopping", flush=True)
        with contextlib.suppress(Exception):
            await self.publisher.close(flush_timeout=2.0)
        if self.nc is not None:
            await self.nc.close()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--start-delay", type=float, default=0.0)
    parser.add_argument("--no-bus", action="store_true")
    parser.add_argument("--fail-start", action="store_true")


SPEC = ServiceSpec(
    name="probe", description="runner test service", build=ProbeService, add_arguments=add_arguments
)
