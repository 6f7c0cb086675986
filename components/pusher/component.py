"""The stock Pusher's spec, plus the serving directory as a parameter, with the versioned executor
(components/pusher/executor.py)."""

from typing import Any, Dict, Optional, Union

from tfx import types
from tfx import v1 as tfx
from tfx.dsl.components.base import base_component, executor_spec
from tfx.orchestration import data_types
from tfx.types import standard_artifacts, standard_component_specs
from tfx.types.component_spec import ExecutionParameter
from tfx.utils import json_utils

from components.pusher import executor


class VersionedPusherSpec(standard_component_specs.PusherSpec):
    PARAMETERS = {
        **standard_component_specs.PusherSpec.PARAMETERS,
        # The serving root (the model goes to <serving_dir>/recommender/<version>); when set it
        # takes the place of push_destination's base directory, so that an orchestrator can
        # pass it per run (a proto cannot be a Kubeflow run parameter).
        "serving_dir": ExecutionParameter(type=str, optional=True),
    }


class VersionedPusher(tfx.components.Pusher):
    """Pushes a blessed model as the next integer version, atomically, keeping the newest N.

    The stock Pusher's inputs, outputs and parameters (``custom_config``: the push section,
    ``models.config.fields(PushConfig)``), plus ``serving_dir``.
    """

    SPEC_CLASS = VersionedPusherSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(self, model: types.BaseChannel, model_blessing: types.BaseChannel,
                 push_destination, custom_config: Optional[Dict[str, Any]] = None,
                 serving_dir: Optional[Union[str, data_types.RuntimeParameter]] = None):
        spec = VersionedPusherSpec(
            model=model, model_blessing=model_blessing, infra_blessing=None,
            push_destination=push_destination, custom_config=json_utils.dumps(custom_config),
            serving_dir=serving_dir,
            pushed_model=types.Channel(type=standard_artifacts.PushedModel))
        base_component.BaseComponent.__init__(self, spec=spec)
