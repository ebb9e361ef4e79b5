"""Build script for the C extensions; metadata and dependencies are in setup.cfg."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "feather_core._resample",
            ["feather_core/_resample.c"],
            extra_compile_args=["-O3", "-fno-math-errno"],
            optional=True,  # without a compiler, feather_core falls back to Pillow's resize
        ),
        Extension(
            "feather_core._ssimulacra2",
            ["feather_core/_ssimulacra2.c"],
            # Reassociation lets the per-row sums vectorise (each row is summed in float).
            extra_compile_args=["-O3", "-fno-math-errno", "-fassociative-math", "-fno-signed-zeros",
                                "-fno-trapping-math"],
            optional=True,  # without a compiler, quality=auto falls back to fixed qualities
        ),
    ]
)
