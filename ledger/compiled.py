"""Which build of the engine's hot modules runs: compiled (mypyc) or interpreted.

`setup.py` compiles `MODULES` with mypyc into C extensions beside their sources and writes
`MANIFEST` (this folder's compiled.json): the SHA-256 of each source it compiled. Python would
load an extension in preference to the .py beside it, so before any of `MODULES` is imported
(`ledger` imports this module first, and `engine` imports `ledger`) `ledger.BUILD` is
decided once, by `select_build`, for all of them:

- "compiled": every extension exists and every source still hashes as it did when built;
- "interpreted": `EXCHANGE_ENGINE_INTERPRETED=1` asks for the sources, or nothing is
  compiled (a source checkout that was never installed);
- "stale": a source differs from what its extension was built from, or the build is
  incomplete. The sources run, with a `RuntimeWarning` naming the modules to rebuild.

Outside "compiled" a finder first on `sys.meta_path` loads every one of `MODULES` from its
.py: all or none, because compiled modules reach each other's classes directly, never
through `sys.modules`. The sources are the single truth; the extensions only run them faster.
"""

import hashlib
import importlib.util
import json
import os
import sys
import warnings
from collections.abc import Sequence
from importlib.abc import MetaPathFinder
from importlib.machinery import EXTENSION_SUFFIXES, ModuleSpec
from pathlib import Path
from types import ModuleType

MODULES = (
    "engine.book",
    "engine.core",
    "engine.stops",
    "engine.snapshot",
    "engine.session",
    "ledger.locks",
    "ledger.reference",
    "ledger.natives",
    "ledger.tickets",
)
"""What setup.py compiles. Not engine.replay: `python -m` cannot run an extension module (its
ReplaySession is engine.session's)."""
MANIFEST = Path(__file__).with_name("compiled.json")
INTERPRETED_ENV = "EXCHANGE_ENGINE_INTERPRETED"


def source_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _source_path(module: str) -> Path:
    """Where `module`'s .py is, found without importing its package."""
    package, _, name = module.rpartition(".")
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"no package {package} for the compiled module {module}")
    return Path(next(iter(spec.submodule_search_locations))) / f"{name}.py"


def _has_extension(source: Path) -> bool:
    return any(source.with_name(source.stem + suffix).exists() for suffix in EXTENSION_SUFFIXES)


def _built_from() -> dict[str, str]:
    """module -> the source digest its extension was built from; empty if none was built."""
    try:
        recorded = json.loads(MANIFEST.read_text())
    except FileNotFoundError:
        return {}
    return {str(module): str(digest) for module, digest in recorded["sources"].items()}


def _decide(sources: dict[str, Path]) -> tuple[str, list[str]]:
    """The build to run, and the modules that make it stale."""
    if os.environ.get(INTERPRETED_ENV, "") not in ("", "0"):
        return "interpreted", []
    built_from = _built_from()
    extensions = [module for module, path in sources.items() if _has_extension(path)]
    if not built_from and not extensions:
        return "interpreted", []
    changed = [
        module
        for module, path in sources.items()
        if module not in extensions or built_from.get(module) != source_digest(path)
    ]
    return ("stale", changed) if changed else ("compiled", [])


class _SourceFinder(MetaPathFinder):
    """Loads the compiled modules from their .py files instead of their extensions."""

    def __init__(self, sources: dict[str, Path]) -> None:
        self.sources = sources

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        source = self.sources.get(fullname)
        return None if source is None else importlib.util.spec_from_file_location(fullname, source)


def select_build() -> str:
    """Decide the build for this process (once: the `ledger` package does) and make imports
    follow it: "compiled", "interpreted" or "stale" (see the module's docstring)."""
    sources = {module: _source_path(module) for module in MODULES}
    build, changed = _decide(sources)
    if build != "compiled":
        sys.meta_path.insert(0, _SourceFinder(sources))
    if build == "stale":
        warnings.warn(
            f"the compiled engine is stale ({', '.join(changed)}: changed since the build, or "
            "not built): running the interpreted sources; rebuild with `make venv` or "
            "`pip install -e .`",
            RuntimeWarning,
            stacklevel=3,
        )
    return build
