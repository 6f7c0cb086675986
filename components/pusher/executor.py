"""Pusher executor: the stock one's blessing check and record, with a push that loses nothing.

The stock executor copies files straight into ``<base>/<unix seconds>/``; a
killed copy leaves a numbered folder that TF Serving tries to serve. This one
publishes through ``recommender.versions.push`` (written under a name TF
Serving ignores, renamed to the next integer version when complete) and keeps
the newest ``PushConfig.keep_versions`` versions.
"""

from __future__ import annotations

from typing import Any, Dict, List

from tfx import types
from tfx.components.pusher import executor as stock
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils
from tfx.utils import io_utils, proto_utils

from models.config import decode
from recommender import versions
from recommender.config import PushConfig, base_of


class Executor(stock.Executor):
    def Do(self, input_dict: Dict[str, List[types.Artifact]],  # noqa: N802 (TFX API)
           output_dict: Dict[str, List[types.Artifact]], exec_properties: Dict[str, Any]) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        model_push = artifact_utils.get_single_instance(output_dict["pushed_model"])
        if not self.CheckBlessing(input_dict):
            self._MarkNotPushed(model_push)
            return
        config = decode(PushConfig, exec_properties.get("custom_config") or None)
        destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(exec_properties["push_destination"], destination)
        model_path = self.GetModelPath(input_dict)
        base = (base_of(exec_properties["serving_dir"])
                if exec_properties.get("serving_dir") else destination.filesystem.base_directory)
        serving_path = versions.push(model_path, base, config.keep_versions)
        # The stock record: the pushed copy archived with the artifact, its folder and version.
        io_utils.copy_dir(model_path, model_push.uri)
        self._MarkPushed(model_push, pushed_destination=serving_path,
                         pushed_version=serving_path.rstrip("/").rsplit("/", 1)[-1])
