"""Debian's pure-Python packages that the tests use (python3-h11, python3-h2, python3-hpack,
python3-hyperframe; scripts/install-deps installs them) live in the system interpreter's
dist-packages. Another python3 of the same version first on PATH (pyenv, a virtualenv) does not
look there: import_debian() imports from the interpreter's own path first, then from there."""
import importlib
import os
import sys

DIST = "/usr/lib/python3/dist-packages"


def import_debian(*names):
    """Import every module named (e.g. "h2.config", "h2.events"); on ImportError add Debian's
    dist-packages to sys.path and try once more. Returns the modules; raises ImportError when
    they are not installed at all."""
    try:
        return [importlib.import_module(n) for n in names]
    except ImportError:
        if not os.path.isdir(DIST) or DIST in sys.path:
            raise
        sys.path.append(DIST)
        return [importlib.import_module(n) for n in names]
