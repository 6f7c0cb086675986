"""Local runner: LocalDagRunner, Beam DirectRunner and a SQLite ML Metadata store.

It owns the environment of a local run: where the data and schemas are, where
artifacts and metadata go, and the summary printed at the end.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Dict, Optional

from tfx import v1 as tfx

from models.data import readers, schema, synthetic
from models.data.errors import DataError
from pipeline import pipeline as pipeline_def
from pipeline.config import ConfigError, PipelineConfig

SCHEMA_DIR = schema.SCHEMA_DIR


def data_root(config: PipelineConfig, output_dir: str) -> str:
    """The data folder of the run: the user's, or where the embedded dataset is generated."""
    data = config.data
    if data.data_dir is None:
        return os.path.join(output_dir, "data", f"synthetic-{data.synthetic_seed}")
    return os.path.abspath(data.data_dir)


def prepare_data(config: PipelineConfig, output_dir: str) -> str:
    """The data folder of the run: the user's (validated now, before any component
    starts) or the embedded synthetic dataset, generated on first use.

    Raises:
      DataError: the user's data is unusable; the message names file, line and field.
    """
    data = config.data
    if data.data_dir is None:
        folder = data_root(config, output_dir)
        return synthetic.write_canonical(
            folder, num_users=data.synthetic_users, num_items=data.synthetic_items,
            num_interactions=data.synthetic_interactions, seed=data.synthetic_seed)
    dataset = readers.read_dataset(data.data_dir, data.max_bad_row_fraction)
    print(f"Data: {data.data_dir} ({dataset.layout}): {len(dataset)} interactions, "
          f"{len(dataset.users)} users, {len(dataset.items)} items; {dataset.report.summary()}",
          flush=True)
    return data_root(config, output_dir)


def with_output_dir(config: PipelineConfig, output_dir: str) -> PipelineConfig:
    """Places pipeline root and metadata under ``output_dir``."""
    return dataclasses.replace(
        config,
        pipeline_root=os.path.join(output_dir, "pipeline_root"),
        metadata_path=os.path.join(output_dir, "metadata.sqlite"))


def run(config: PipelineConfig, output_dir: str) -> Dict[str, object]:
    """Runs the whole pipeline locally and returns its summary.

    Raises:
      ConfigError: a configuration value is out of range (before anything runs).
      DataError: bad input data (before any component runs).
      RuntimeError: a component failed; earlier artifacts and the pushed model
        are left as they were.
    """
    output_dir = os.path.abspath(output_dir)
    config = with_output_dir(config, output_dir)
    config = dataclasses.replace(config, serving_dir=os.path.abspath(config.serving_dir))
    # create_pipeline validates the configuration, before any data is read or generated.
    pipe = pipeline_def.create_pipeline(
        config, data_root(config, output_dir), SCHEMA_DIR,
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            config.metadata_path))
    prepare_data(config, output_dir)
    os.makedirs(output_dir, exist_ok=True)
    started = time.time()
    tfx.orchestration.LocalDagRunner().run(pipe)
    from pipeline import summary  # local import: reads ML Metadata after the run

    result = summary.collect(config, started)
    summary_path = os.path.join(output_dir, "summary.json")
    with open(summary_path, "w") as f:
        json.dump(result, f, indent=2)
    return result


def main(config: Optional[PipelineConfig] = None, output_dir: str = "tfx_output") -> int:
    config = config or PipelineConfig()
    try:
        result = run(config, output_dir)
    except (ConfigError, DataError) as e:
        print(f"error: {e}", flush=True)
        return 2
    from pipeline import summary

    print(summary.render(result), flush=True)
    return 0 if result.get("pushed") else 1


if __name__ == "__main__":
    raise SystemExit(main())
