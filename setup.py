"""Package metadata and the pinned stack. Full transitive pins: requirements/constraints.txt."""

from setuptools import find_packages, setup

setup(
    name="tfx-recommender",
    version="0.1.0",
    description="Two-tower retrieval, ScaNN index, ranking and serving as a TFX pipeline on Kubeflow.",
    python_requires=">=3.9,<3.11",
    # Layers, lowest first: models (ML code), recommender (the servable and its clients),
    # components (TFX), pipeline, presentation (summary, report), local and kubeflow (runners),
    # cli.
    # kubeflow/serving/ (image build context and manifests) is not a package and does not ship
    # in the wheel.
    packages=find_packages(include=["models", "models.*", "recommender", "recommender.*",
                                    "components", "components.*", "pipeline", "pipeline.*",
                                    "presentation", "local", "kubeflow", "cli"]),
    install_requires=[
        "tfx[kfp]==1.16.0",
        "tensorflow==2.16.2",
        "tf-keras~=2.16.0",
        "tensorflow-recommenders==0.7.7",
        "tensorflow-transform==1.16.0",
        "scann==1.3.2",
        "apache-beam[gcp]==2.59.0",
    ],
    extras_require={
        "dev": ["pytest", "pytest-timeout", "pytest-randomly", "pytest-xdist", "ruff", "matplotlib",
                "nbformat", "nbclient", "ipykernel", "implicit"],
    },
    entry_points={"console_scripts": ["recsys=cli.main:main"]},
)
