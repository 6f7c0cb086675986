"""The stock Pusher's spec with the versioned executor (components/pusher/executor.py)."""

from tfx import v1 as tfx
from tfx.dsl.components.base import executor_spec

from components.pusher import executor


class VersionedPusher(tfx.components.Pusher):
    """Pushes a blessed model as the next integer version, atomically, keeping the newest N.

    Same inputs, outputs and parameters as TFX's Pusher (``custom_config``: the
    push section, ``models.config.fields(PushConfig)``).
    """

    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)
