"""Prometheus metrics: the families, the collectors that read the controller and the agent registry, and their exposition."""
