"""A diagnostic wrapper backend that injects faults (exceptions, NaN/inf, wrong shapes, slowness)
into another backend's output, to test the nodes' fault handling. Not a policy: never deploy it."""
