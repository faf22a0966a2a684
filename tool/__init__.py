"""The `mreg` command line."""

# The package version (pyproject.toml reads it from here); `mreg --version` prints it
# without importlib.metadata, which costs more than the rest of a read.
__version__ = "0.1.0"
