"""Parse-time benchmark: lifeline's loader against ``keepalived -t`` on the same generated file.

The file has 1,000 vrrp_instances (over four interfaces, since a VRID is unique per
interface) and 1,000 virtual_servers of 10 real servers each with a TCP_CHECK.
Both tools run in one throwaway network namespace that has exactly those four
interfaces, so both do the same host checks.  Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

INTERFACES = ("eth0", "eth1", "eth2", "eth3")


def generate(instances: int, servers: int, reals: int) -> str:
    """A config in the shape real deployments have, sized by the arguments."""
    out = ["global_defs {", "  router_id bench", "}"]
    for i in range(instances):
        iface, vrid = INTERFACES[i // 250], i % 250 + 1
        out += [
            f"vrrp_instance VI_{i} {{",
            "  state BACKUP",
            f"  interface {iface}",
            f"  virtual_router_id {vrid}",
            f"  priority {100 + i % 50}",
            "  advert_int 1",
            "  virtual_ipaddress {",
            f"    10.{i // 250}.{i % 250}.1/32 dev {iface}",
            "  }",
            "}",
        ]
    for v in range(servers):
        out += [f"virtual_server 172.16.{v // 250}.{v % 250 + 1} 80 {{", "  lb_algo rr", "  lb_kind NAT"]
        out += ["  protocol TCP", "  delay_loop 6"]
        for r in range(reals):
            out += [f"  real_server 192.168.{v // 250}.{r + 1} 80 {{", "    weight 1", "    TCP_CHECK {"]
            out += ["      connect_timeout 3", "    }", "  }"]
        out.append("}")
    return "\n".join(out) + "\n"


def timed(argv: list[str], runs: int) -> tuple[list[float], int]:
    times, code = [], 0
    for _ in range(runs):
        start = time.perf_counter()
        code = subprocess.run(
            argv, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        ).returncode
        times.append(time.perf_counter() - start)
    return times, code


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--servers", type=int, default=1000)
    parser.add_argument("--reals", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    keepalived = shutil.which("keepalived")
    if keepalived is None:
        print(json.dumps({"error": "keepalived not installed (apt-get install keepalived)"}))
        return 1
    ns = f"llbench{os.getpid()}"
    with tempfile.TemporaryDirectory() as tmp:
        conf = Path(tmp) / "keepalived.conf"
        conf.write_text(generate(args.instances, args.servers, args.reals))
        subprocess.run(["ip", "netns", "add", ns], check=True)
        try:
            for iface in INTERFACES:
                subprocess.run(
                    ["ip", "-n", ns, "link", "add", iface, "type", "veth", "peer", "name", f"{iface}p"],
                    check=True,
                )
            ours, our_code = timed(
                [
                    "ip",
                    "netns",
                    "exec",
                    ns,
                    sys.executable,
                    "-m",
                    "shared.cli.main",
                    "config",
                    "check",
                    str(conf),
                ],
                args.runs,
            )
            theirs, their_code = timed(
                ["ip", "netns", "exec", ns, keepalived, "-t", "-f", str(conf)], args.runs
            )
        finally:
            subprocess.run(["ip", "netns", "del", ns], check=False)
        lines = conf.read_text().count("\n")
    result = {
        "benchmark": "config_parse",
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cpus",
        "config_lines": lines,
        "instances": args.instances,
        "virtual_servers": args.servers,
        "real_servers": args.servers * args.reals,
        "lifeline_s_median": round(statistics.median(ours), 3),
        "keepalived_s_median": round(statistics.median(theirs), 3),
        "ratio_lifeline_over_keepalived": round(statistics.median(ours) / statistics.median(theirs), 2),
        "lifeline_exit": our_code,
        "keepalived_exit": their_code,
        "runs": args.runs,
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
