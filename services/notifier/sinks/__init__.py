"""Notifier sinks: one small interface (``base.Sink``) and keepalived's delivery channels behind it."""

from services.notifier.sinks.base import ClosableSink, DeliveryContext, DeliveryError, HandoverSink, Sink

__all__ = ["ClosableSink", "DeliveryContext", "DeliveryError", "HandoverSink", "Sink"]
