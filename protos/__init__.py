"""Wire contracts (.proto) and their generated Python stubs."""
