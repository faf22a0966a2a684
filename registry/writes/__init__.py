"""The writes: one module per kind (models, versions, pointers), each built on `registry.commits`."""
