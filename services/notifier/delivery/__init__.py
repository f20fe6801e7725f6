"""Delivery: durable consumers, per-key ordered dispatch with retries, leases between replicas."""
