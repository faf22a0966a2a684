"""mreg commands: placeholder until this module lands."""
