"""Only what pyproject.toml cannot say: the recipes live in the top-level `configs/` and travel inside the
package as `ser/config/presets` (one copy; `ser.config.load` looks in both places)."""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["ser*"]) + ["ser.config.presets"],
    package_dir={"ser.config.presets": "configs"},
)
