"""Kubernetes: manifests, the one gateway to the API server, the realiser, the NetworkSlice CRD and leader election."""
