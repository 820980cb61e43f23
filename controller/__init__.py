"""The control plane: topology, ledger, admission and placement, runtime, realisation and CLI."""
