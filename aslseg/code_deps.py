"""Which package modules a job script runs, read from its imports: the rules' code inputs, so that editing a
module reruns exactly the jobs that import it (Snakemake's `script:` tracks the script itself only).

Torch-free and import-free: the Snakefile calls it at parse time, and it reads the source with `ast` instead
of importing anything. Every `aslseg` import counts, at any depth of the file (one inside a function too: a
superset is safe, a missed module is a stale result), and the imported modules are followed in turn. A package
on the way contributes its `__init__.py`, as Python runs it.
"""

from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

PACKAGE = "aslseg"


def package_modules(script: str | Path, package_dir: str | Path) -> list[str]:
    """Paths of the modules of the package in `package_dir` (the `aslseg` folder) that `script` imports,
    directly or through other modules of the package, sorted."""
    package_dir = Path(package_dir)
    found: set[Path] = set()
    todo = [Path(script)]
    while todo:
        for module in _imported_modules(todo.pop(), package_dir):
            if module not in found:
                found.add(module)
                todo.append(module)
    return sorted(str(path) for path in found)


@lru_cache(maxsize=None)
def _imported_modules(source: Path, package_dir: Path) -> tuple[Path, ...]:
    tree = ast.parse(source.read_text(), filename=str(source))
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from aslseg.ssl import train` imports a module; `from aslseg.io import write_json` a name
            names.extend([node.module] + [f"{node.module}.{alias.name}" for alias in node.names])
    files: list[Path] = []
    for name in names:
        parts = name.split(".")
        if parts[0] == PACKAGE:
            files.extend(_files_of(parts[1:], package_dir))
    return tuple(dict.fromkeys(files))


def _files_of(parts: list[str], package_dir: Path) -> list[Path]:
    """The files Python runs to import aslseg.<parts>: each package's __init__.py on the way and the module;
    a trailing name that is neither (a function, a class) adds nothing."""
    files, folder = [package_dir / "__init__.py"], package_dir
    for part in parts:
        if (folder / part).is_dir():
            folder = folder / part
            files.append(folder / "__init__.py")
        elif (folder / f"{part}.py").is_file():
            files.append(folder / f"{part}.py")
            break
        else:
            break
    return [path for path in files if path.is_file()]
