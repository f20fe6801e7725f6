"""Boot Debian's kernel once (virtme-ng over the host filesystem) and run a command inside it.

Why a VM at all: the host kernel has no IPVS, and the lvs service is only
proven against the real kernel module.  Why *one* boot: under TCG emulation
(KVM is unavailable here) a boot costs ~17 s and every Python start ~15-20 s,
so the whole in-VM suite runs as one pytest invocation whose junit XML comes
back through a shared read-write directory; host-side tests then assert on
each in-VM result by name.

The guest sees the host's root filesystem read-only (9p), with tmpfs overlays
on /tmp and friends, and ``outdir`` mounted read-write at the same path.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
BOOT = Path("/boot")
MODULES = Path("/lib/modules")


def find_kernel() -> Path | None:
    """A bootable Debian vmlinuz whose modules are installed (``ip_vs`` must be loadable)."""
    for image in sorted(BOOT.glob("vmlinuz-*"), reverse=True):
        release = image.name.removeprefix("vmlinuz-")
        if (MODULES / release / "kernel" / "net" / "netfilter" / "ipvs").is_dir() and os.access(
            image, os.R_OK
        ):
            return image
    return None


def find_vng() -> str | None:
    local = Path(sys.executable).parent / "vng"
    if local.exists():
        return str(local)
    return shutil.which("vng")


def missing_tools() -> list[str]:
    """Missing VM prerequisites (apt: qemu-system-x86 linux-image-amd64; pip: virtme-ng)."""
    missing = []
    if find_kernel() is None:
        missing.append("linux-image-amd64 (a /boot/vmlinuz-* with ipvs modules)")
    if shutil.which("qemu-system-x86_64") is None:
        missing.append("qemu-system-x86")
    if find_vng() is None:
        missing.append("virtme-ng (pip)")
    if shutil.which("ipvsadm") is None:
        missing.append("ipvsadm")
    if shutil.which("busybox") is None:
        missing.append("busybox")
    return missing


@dataclass
class VmRun:
    returncode: int
    seconds: float
    output: str
    outdir: Path


def run_in_vm(
    command: list[str],
    outdir: Path,
    *,
    timeout: float = 600.0,
    memory: str = "2G",
    cpus: int = 2,
    env: dict[str, str] | None = None,
) -> VmRun:
    """Boot once, run ``command`` (cwd = repo) as root, return its exit code and console output."""
    kernel, vng = find_kernel(), find_vng()
    if kernel is None or vng is None:
        raise RuntimeError(f"cannot boot a VM, missing: {', '.join(missing_tools())}")
    outdir.mkdir(parents=True, exist_ok=True)
    # The guest's root is read-only: compile bytecode here so no process compiles in emulation.
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "shared", "services", "tests", "bench"],
        cwd=REPO,
        check=False,
        capture_output=True,
    )
    exports = " ".join(f"{k}={v}" for k, v in (env or {}).items())
    inner = f"cd {REPO} && env {exports} {' '.join(command)}"
    argv = [
        vng,
        "--run",
        str(kernel),
        "--user",
        "root",
        "--disable-kvm",
        "--memory",
        memory,
        "--cpus",
        str(cpus),
        "--rwdir",
        str(outdir),
        "--",
        "bash",
        "-c",
        inner,
    ]
    path = f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}"
    started = time.monotonic()
    # vng forks qemu: in a session of its own, a timeout kills the whole group, never leaving an
    # orphaned qemu that would eat a core of every later run.
    with subprocess.Popen(
        argv,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PATH": path},
        start_new_session=True,
    ) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except BaseException:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise
    return VmRun(proc.returncode, time.monotonic() - started, out + err, outdir)


VM_LABEL = "qemu TCG (no KVM), 2 vCPU, 2 GiB, virtme-ng"


def bench_in_vm(module: str, argv: list[str], *, prefix: str, timeout: float) -> dict[str, Any] | None:
    """Run ``python -m MODULE --inside ARGV --out FILE`` in one VM boot; its JSON, or None (output on stderr).

    Every in-VM benchmark has the same outer half: boot, run itself with
    ``--inside``, read back the JSON it wrote into the shared directory.
    """
    outdir = Path(tempfile.mkdtemp(prefix=prefix))
    path = outdir / "bench.json"
    run = run_in_vm(
        [".venv/bin/python", "-m", module, "--inside", *argv, "--out", str(path)], outdir, timeout=timeout
    )
    if not path.exists():
        print(run.output[-5000:], file=sys.stderr)
        return None
    result: dict[str, Any] = json.loads(path.read_text())
    return {**result, "vm_seconds": round(run.seconds, 1), "vm": VM_LABEL}
