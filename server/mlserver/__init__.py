"""An MLServer runtime for mreg artifacts (`mreg[mlserver]`): see server/mlserver/runtime.py."""
