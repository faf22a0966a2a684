"""Inference protocols other than mreg's own `/v1`, each over the runtime's invoker."""
