"""The lab: network namespaces, real daemons and the wire, for tests, benchmarks and ``lifeline demo``.

Why in ``shared/``: ``lifeline demo`` builds a real two-node segment on the
operator's machine and the benchmarks build the same segments as the tests;
product code and benchmarks must not import the test tree.  Nothing here
imports ``tests/`` or ``bench/``, and the pytest fixtures stay in
``tests/support/`` on top of this package.

One module per responsibility, imported directly (this file exports nothing):

- :mod:`shared.lab.wait`: the one wait helper, ``wait_until`` / ``await_until``;
- :mod:`shared.lab.errors`: ``LabError``;
- :mod:`shared.lab.netns`: namespace names, ``ip``, ``Lab`` (owns namespaces),
  running things inside one, the stale sweep;
- :mod:`shared.lab.daemon`: ``Daemon``, a process the lab started, and where keepalived is;
- :mod:`shared.lab.nats`: ``NatsServer`` (a real nats-server), ``NatsProxy``, ``free_port``;
- :mod:`shared.lab.segment`: ``Segment`` of ``Host`` on a bridge, each running keepalived or lifeline;
- :mod:`shared.lab.capture`: ``Capture`` of frames with kernel timestamps, adverts and GARPs;
- :mod:`shared.lab.report`: a benchmark's JSON report (machine facts, load, quantiles);
- :mod:`shared.lab.vm`: Debian's kernel booted once in a VM (virtme-ng) for IPVS.

Protocol arithmetic (skew, Master_Down_Interval) is not the lab's: it is
:mod:`services.vrrp.core.timers`, which the machine itself uses.
"""
