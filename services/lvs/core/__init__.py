"""The lvs core: desired table, pools (quorum, hysteresis), reconcile diffs; no kernel, no bus."""
