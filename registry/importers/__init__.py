"""Importers: bring models from other registries into mreg, one commit per version."""
