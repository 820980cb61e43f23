"""The agent link's settings (:class:`AgentSettings`) and the fixed vocabularies it uses."""

from __future__ import annotations

from dataclasses import dataclass

from slices import errors

#: Which sites' acks make a slice Realised: "all" (every site its config goes to), "edge" (its edge
#: sites only: cells and aggregation run no agent, e.g. the RAN is managed elsewhere), "none" (no
#: agent confirms anything; Realised says so).
AGENT_POLICIES = ("all", "edge", "none")
#: Refusal reasons counted by name in metrics; anything else counts as "Other" (bounded labels).
KNOWN_REFUSALS = (
    "ApplyFailed",
    "BackendUnavailable",
    "InsufficientResources",
    "InvalidConfig",
    "Timeout",
    "Unsupported",
)


@dataclass(frozen=True)
class AgentSettings:
    lease_s: float = 3.0
    heartbeat_interval_s: float = 1.0
    telemetry_interval_s: float = 1.0
    resend_after_s: float = 2.0  # an unacked config is pushed again this often; a refused one backs off
    hello_timeout_s: float = 30.0  # generous: a busy agent host must not be turned into a reconnect storm
    max_message_bytes: int = 256 * 1024
    rate_per_s: float = 20.0  # messages per agent, sustained
    rate_burst: float = 40.0
    kpi_window: int = 60  # telemetry batches kept per site (so at most this many samples per slice there)
    # Streams the gRPC core queues before the handler takes them. Its default (1,000 soft, 3,000
    # hard) silently stalls new streams when a city (re)connects at once, bare grpcio included
    # (bench/README.md, telemetry ingest). A whole city must fit.
    max_pending_streams: int = 100_000
    # ... and how long one may wait there before the core cancels it (its default, 30 s, cancels
    # a city's Hellos while the loop works through a reconnect storm; each then retries, adding load).
    max_unrequested_s: int = 120
    max_link_reports: int = 256
    # After a controller restart, how long a site whose agent had connected before may take to
    # come back before it is marked down: a whole city reconnecting takes about a minute (see
    # bench/README.md), and marking sites down early would heal slices away from live sites.
    reconnect_grace_s: float = 120.0
    sla_window_s: float = 10.0  # KPIs are judged over this rolling window, once per window
    sla_sustain_windows: int = 3  # violating windows in a row before a re-placement attempt
    sla_hold_down_s: float = 600.0  # a slice moved away from an edge for its SLA does not go back sooner
    agent_policy: str = "all"  # see AGENT_POLICIES

    def __post_init__(self) -> None:
        if self.agent_policy not in AGENT_POLICIES:
            raise errors.InvalidSpec(
                f"agent policy {self.agent_policy!r}: must be one of {', '.join(AGENT_POLICIES)}"
            )
