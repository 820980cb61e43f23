"""The agent link: agent-facing gRPC service, reference agent, simulator, SLA evaluation, metrics."""
