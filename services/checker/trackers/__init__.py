"""VRRP trackers run by the checker: ``vrrp_script``, ``vrrp_track_process``, ``track_file``.

Each tracker is an asyncio task that reports a ``TrackerOutcome`` through a
callback whenever it has a *real* observation; the service turns outcomes into
``TrackerResult`` events (``publish.py``).  Trackers know nothing of NATS.
"""
