"""Statistical process control: data collection plans at the steps, subgroups, control
limits, the Western Electric rules and the reaction plan (out-of-control events)."""
