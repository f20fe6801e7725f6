"""The VRRP core: sans-IO state machines, timers, priorities and plans, driven by inputs and a clock."""
