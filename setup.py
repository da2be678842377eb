"""The compiled build: mypyc compiles the engine's hot modules (`ledger.compiled.MODULES`) from
their typed sources into C extensions, part of every install (`pip install .` or `-e .`).

Beside the extensions it writes ledger/compiled.json, the SHA-256 of each source compiled, by
which `ledger.compiled` refuses to run an extension whose source has changed since. The
project's metadata is in pyproject.toml; this file only adds the extensions.
"""

import importlib.util
import json
from pathlib import Path

from mypyc.build import mypycify
from setuptools import setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).parent
# Loaded by path: importing the `ledger` package would choose a build for this process.
_spec = importlib.util.spec_from_file_location("_compiled_modules", ROOT / "ledger/compiled.py")
assert _spec is not None and _spec.loader is not None
compiled = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(compiled)

SOURCES = {module: Path(*module.split(".")).with_suffix(".py") for module in compiled.MODULES}
# The build environment has no third-party packages (pip's build isolation), so they read as
# untyped; `make lint` type-checks the same sources strictly with them.
MYPY_OPTIONS = [
    "--config-file=",
    "--python-version=3.11",
    "--ignore-missing-imports",
    "--follow-imports=silent",
]


class BuildWithManifest(build_ext):
    """build_ext that also records what each extension was built from."""

    def run(self) -> None:
        super().run()
        digests = {module: compiled.source_digest(ROOT / path) for module, path in SOURCES.items()}
        manifest = json.dumps({"sources": digests}, indent=2, sort_keys=True) + "\n"
        # In place (an editable install) beside the sources, else into the wheel's tree.
        target = ROOT if self.inplace else Path(self.build_lib)
        (target / "ledger" / compiled.MANIFEST.name).write_text(manifest)


setup(
    ext_modules=mypycify(
        [*MYPY_OPTIONS, *(str(path) for path in SOURCES.values())],
        group_name="exchange_compiled",
        opt_level="3",
    ),
    cmdclass={"build_ext": BuildWithManifest},
)
