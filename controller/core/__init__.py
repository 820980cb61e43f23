"""The pure placement core: the city graph, its files and generator, the capacity ledger, placement, admission, the planner and what-if. No I/O with servers."""
