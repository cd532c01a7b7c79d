"""Policy backends: the interface, the registry, shared blocks and one folder per backend."""
