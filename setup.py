"""Build hook: the wheel carries the repository's top-level data folders inside the package.

``schemas/`` (JSON Schemas, base KCL) and ``registry/`` (configs of the local registry) have one
copy, at the top of the repository; ``provisioning.resources`` reads them from
``provisioning/_data/`` in an installed wheel. Everything else is in pyproject.toml.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

DATA = ("schemas", "registry")


class build_py_with_data(build_py):
    def run(self) -> None:
        super().run()
        here = Path(__file__).resolve().parent
        for name in DATA:
            target = Path(self.build_lib) / "provisioning" / "_data" / name
            shutil.copytree(here / name, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))


setup(cmdclass={"build_py": build_py_with_data})
