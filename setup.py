"""Build script for the one C extension; metadata and dependencies are in setup.cfg."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "feather_core._resample",
            ["feather_core/_resample.c"],
            extra_compile_args=["-O3", "-fno-math-errno"],
            optional=True,  # without a compiler, feather_core falls back to Pillow's resize
        )
    ]
)
