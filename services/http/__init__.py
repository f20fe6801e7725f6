"""The http service: the node's state for load balancers, Prometheus and people (docs/operations.md)."""
