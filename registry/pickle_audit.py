"""Reading a scikit-learn pickle without running it: audit its globals first, then load only those.

A pickle runs code through the globals it names (`os.system`, `builtins.eval`,
any class whose `__reduce__` does harm). `pickle_globals` lists them from the
opcodes alone (`pickletools.genops`, nothing is executed); `load_trusted`
loads a pickle only when every global is a type mreg trusts in a skops file
(scikit-learn's estimators, registry.skops_trust, NumPy's array builders),
and even then through an unpickler that can resolve nothing else. A global
whose name the audit cannot tell (built at run time on the pickle's stack)
counts as untrusted.
"""

from __future__ import annotations

import functools
import io
import pickle
import pickletools
from pathlib import Path
from typing import Any

from registry.errors import LoaderError
from registry.skops_trust import SKOPS_TRUSTED_TYPES

UNKNOWN = "<a global built at run time>"

# What NumPy and the standard library name to rebuild arrays, dtypes and plain objects.
_PICKLE_BUILDERS = frozenset(
    f"{module}.{name}"
    for module in ("numpy.core.multiarray", "numpy._core.multiarray")
    for name in ("_reconstruct", "scalar")
) | frozenset(
    {
        "numpy.ndarray",
        "numpy.dtype",
        "numpy.core.numeric._frombuffer",
        "numpy._core.numeric._frombuffer",
    }
)
_STRINGS = {
    "SHORT_BINUNICODE",
    "BINUNICODE",
    "BINUNICODE8",
    "UNICODE",
    "SHORT_BINSTRING",
    "BINSTRING",
    "STRING",
}


def pickle_globals(data: bytes) -> list[str]:
    """Every global (`module.name`) the pickle `data` names, read from its opcodes only."""
    found: list[str] = []
    # The values pushed by the opcodes since the last one that may have consumed the stack:
    # so the last two are surely the stack's top two when STACK_GLOBAL comes.
    pushed: list[str | None] = []
    memo: dict[int, str | None] = {}
    for op, arg, _ in pickletools.genops(io.BytesIO(data)):
        name = op.name
        if name in _STRINGS:
            pushed.append(arg.decode("latin-1") if isinstance(arg, bytes) else str(arg))
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            pushed.append(memo.get(int(str(arg))))
        elif name == "MEMOIZE":
            memo[len(memo)] = pushed[-1] if pushed else None
        elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
            memo[int(str(arg))] = pushed[-1] if pushed else None
        elif name in ("PROTO", "FRAME"):
            continue
        else:
            if name in ("GLOBAL", "INST"):
                module, _, attr = str(arg).partition(" ")
                found.append(f"{module}.{attr}")
            elif name == "STACK_GLOBAL":
                last = pushed[-2:]
                ok = len(last) == 2 and all(isinstance(v, str) for v in last)
                found.append(f"{last[0]}.{last[1]}" if ok else UNKNOWN)
            elif name.startswith("EXT"):
                found.append(UNKNOWN)  # the copyreg extension registry: a global by number
            pushed = [None]  # this opcode may have consumed the stack; its top is unknown now
    return found


@functools.cache
def trusted_pickle_globals() -> frozenset[str]:
    """scikit-learn's estimators, the types of registry.skops_trust and NumPy's array builders."""
    from sklearn.utils import all_estimators

    estimators = {f"{cls.__module__}.{cls.__qualname__}" for _, cls in all_estimators()}
    return frozenset(estimators) | SKOPS_TRUSTED_TYPES | _PICKLE_BUILDERS


def untrusted_globals(data: bytes) -> list[str]:
    """The globals of the pickle `data` that are not trusted (empty: safe to load)."""
    trusted = trusted_pickle_globals()
    return sorted({g for g in pickle_globals(data) if g not in trusted})


class _TrustedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if f"{module}.{name}" not in trusted_pickle_globals():
            raise pickle.UnpicklingError(f"{module}.{name} is not trusted")
        return super().find_class(module, name)


def load_trusted(path: Path) -> Any:
    """The object pickled in `path`, if every global it names is trusted; LoaderError otherwise."""
    data = path.read_bytes()
    refused = untrusted_globals(data)
    if refused:
        raise LoaderError(
            f"{path.name}: the pickle names untrusted globals: {', '.join(refused)}",
            detail={"untrusted_globals": refused},
        )
    return _TrustedUnpickler(io.BytesIO(data)).load()
