"""Packaging for speechbrain-fdnf."""

from pathlib import Path

from setuptools import find_packages, setup

setup(
    name="speechbrain-fdnf",
    version="0.5.0",
    description="Factorial discriminative normalization flows (f-DNF) for speech factorization, as a SpeechBrain plugin",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["speechbrain_fdnf", "speechbrain_fdnf.*"]),
    # the sentence grammar of the embedded corpus is data the synthesizer reads at run time
    package_data={"speechbrain_fdnf.corpus": ["grammar.json"]},
    python_requires=">=3.9",
    install_requires=[
        "speechbrain>=1.0",
        "torch>=2.4",
        "torchaudio>=2.1",
        "hyperpyyaml",
        "numpy",
        "scikit-learn",
        "matplotlib",
        "espeakng-loader",
    ],
    # bench: the peers of benchmarks/bench_flows.py, never needed at run time
    extras_require={"test": ["pytest"], "bench": ["zuko", "nflows"]},
    license="Apache-2.0",
)
