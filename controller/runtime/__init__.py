"""The controller's runtime: the durable store, the world it rebuilds, the reconciler, the service every API calls, and the process that wires them."""
