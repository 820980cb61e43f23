"""The controller's end of the agent link: sessions and leases, site configs and their generations, KPIs and the SLA verdicts."""
