"""Level 1: the trainers' device choice on a machine without a GPU falls back to the CPU."""

import pytest
import tensorflow as tf

from models import devices


@pytest.mark.skipif(bool(tf.config.list_physical_devices("GPU")), reason="this machine has a GPU")
def test_without_a_gpu_training_uses_the_default_strategy_on_the_cpu():
    assert devices.gpus() == []
    strategy = devices.strategy()
    assert strategy is tf.distribute.get_strategy() and strategy.num_replicas_in_sync == 1
    with strategy.scope():
        variable = tf.Variable(1.0)
    assert "CPU" in variable.device
