"""The vrrp tests that need Debian's kernel (ipvlan): collected inside the VM only (``LIFELINE_IN_VM=1``).

They boot apart from the LVS suite (``tests/kernel/test_vrrp_vm.py``): each
cold Python service costs ~20 s under emulation, and that suite's one boot
has its own time budget.
"""

from __future__ import annotations

import os

if os.environ.get("LIFELINE_IN_VM") != "1":
    collect_ignore_glob = ["test_*.py"]
