"""Whether DVC may draw its transfer progress bars (on stderr, when that is a terminal).

Off by default: the core never prints. The CLI turns it on for a command run on a terminal
without --json; the server never does.
"""

from __future__ import annotations

import logging

_enabled = False


def transfer_progress(enabled: bool) -> None:
    """Let DVC draw its progress bars for the transfers this process makes from now on, or not."""
    global _enabled
    _enabled = enabled
    apply()


def apply() -> None:
    # DVC's Tqdm bars (its own and dvc-data's) are off when their module's logger is above ERROR,
    # and when stderr is no terminal.
    for name in ("dvc.progress", "dvc_data.callbacks"):
        logging.getLogger(name).setLevel(logging.ERROR if _enabled else logging.CRITICAL)
