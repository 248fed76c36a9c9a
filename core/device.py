"""Where models run: the GPU when one is visible, the CPU otherwise; and, for training, how
the work is spread (:func:`distribution_strategy`).

Works on any Keras 3 backend (TensorFlow in the app; JAX on a GPU training machine).

**Several machines.** When ``TF_CONFIG`` describes a cluster of more than one task (the JSON
that Slurm or Kubernetes launch scripts set, see the README), training on the TensorFlow back
end uses ``tf.distribute.MultiWorkerMirroredStrategy``: every worker runs the same command, the
gradients are all-reduced each step, and the *chief* (task ``chief``, else ``worker`` 0) alone
writes the run folder's checkpoints and publishes; the others write to
:func:`worker_run_dir` (the TensorFlow multi-worker Keras guide's rule).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DeviceInfo", "configure_device", "distribution_strategy", "cluster_spec",
           "is_chief", "worker_run_dir", "limit_cpu_threads"]


def limit_cpu_threads(n: int | None) -> None:
    """Cap TensorFlow's CPU threads (intra-op ``n``, inter-op at most 2); call before any
    TensorFlow op. ``None`` / 0, or another back end: leave as is."""
    if not n:
        return
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        try:
            tf.config.threading.set_intra_op_parallelism_threads(int(n))
            tf.config.threading.set_inter_op_parallelism_threads(max(1, min(2, int(n))))
        except RuntimeError:  # TensorFlow already initialised (e.g. inside tests)
            pass


@dataclass(frozen=True)
class DeviceInfo:
    backend: str
    gpus: tuple[str, ...]
    mixed_precision: bool

    @property
    def label(self) -> str:
        if self.gpus:
            return f"GPU ({', '.join(self.gpus)}) via {self.backend}"
        return f"CPU via {self.backend}"


_configured: DeviceInfo | None = None
_multi_worker = None    # the MultiWorkerMirroredStrategy, made once per process (see below)


def cluster_spec() -> dict | None:
    """``TF_CONFIG`` as ``{"cluster": {...}, "task": {"type", "index"}}`` when it describes a
    cluster of more than one task, else ``None``. A malformed value is an error naming it."""
    raw = os.environ.get("TF_CONFIG", "").strip()
    if not raw:
        return None
    try:
        spec = json.loads(raw)
        cluster = spec.get("cluster") or {}
        tasks = sum(len(v) for k, v in cluster.items() if k in ("chief", "worker"))
        task = spec.get("task") or {}
    except (ValueError, AttributeError, TypeError):
        raise ValueError(f"TF_CONFIG is not a JSON cluster description: {raw[:200]!r}") from None
    if tasks <= 1:
        return None
    if task.get("type") not in cluster or not isinstance(task.get("index"), int):
        raise ValueError(f"TF_CONFIG: task {task!r} is not one of the cluster's tasks.")
    return {"cluster": cluster, "task": {"type": task["type"], "index": task["index"]}}


def is_chief() -> bool:
    """Whether this process writes checkpoints, publishes and reports progress: always without
    a cluster; in one, task ``chief`` or, when there is none, ``worker`` 0."""
    spec = cluster_spec()
    if spec is None:
        return True
    task = spec["task"]
    if "chief" in spec["cluster"]:
        return task["type"] == "chief"
    return task["type"] == "worker" and task["index"] == 0


def worker_run_dir(run_dir: Path | str) -> Path:
    """``run_dir`` for the chief (and without a cluster); ``<run_dir>/<type>-<index>`` for any
    other worker, so two workers never write the same checkpoint file (on shared storage as on
    one machine) and each can ``--resume`` from its own."""
    run_dir = Path(run_dir)
    spec = cluster_spec()
    if spec is None or is_chief():
        return run_dir
    return run_dir / f"{spec['task']['type']}-{spec['task']['index']}"


def configure_device(mixed_precision: bool | None = None) -> DeviceInfo:
    """Detect GPUs once, enable memory growth, and optionally mixed precision.

    ``mixed_precision=None`` means: on for training when a GPU is present, otherwise off. Set the
    environment variable ``MEDSCAN_FORCE_CPU=1`` to hide GPUs.
    """
    global _configured
    import keras

    backend = keras.backend.backend()
    gpus: list[str] = []
    if os.environ.get("MEDSCAN_FORCE_CPU") == "1":
        os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")
    elif backend == "tensorflow":
        import tensorflow as tf

        for gpu in tf.config.list_physical_devices("GPU"):
            try:
                tf.config.experimental.set_memory_growth(gpu, True)
            except RuntimeError:  # already initialised: growth can no longer be changed
                pass
            gpus.append(gpu.name)
    elif backend == "jax":
        import jax

        gpus = [str(d) for d in jax.devices() if d.platform == "gpu"]
    elif backend == "torch":
        import torch

        gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]

    use_mp = bool(gpus) if mixed_precision is None else mixed_precision
    if use_mp:
        keras.mixed_precision.set_global_policy("mixed_float16")
    _configured = DeviceInfo(backend=backend, gpus=tuple(gpus), mixed_precision=use_mp)
    return _configured


def _multi_worker_strategy():
    """The process's one ``MultiWorkerMirroredStrategy`` (cluster from ``TF_CONFIG``): it
    starts this worker's server on its port, so it is made once and kept."""
    global _multi_worker
    if _multi_worker is None:
        _multi_worker = _keras_multi_worker_strategy_class()()
    return _multi_worker


# Keras 3 makes a batch-norm layer's moving statistics with aggregation "none": under a
# multi-worker strategy each worker would keep the statistics of its own share of the data, and
# the workers would end with different models. Made with aggregation MEAN, each update is
# averaged across the workers (as tf.keras 2 did).
_AVERAGED_STATISTICS = ("moving_mean", "moving_variance")


def _keras_multi_worker_strategy_class():
    """``MultiWorkerMirroredStrategy`` adapted to Keras 3 (3.15 at least; keras-team/keras#20585):

    - ``reduce`` accepts the two calls Keras makes of it in ``fit`` that TensorFlow's refuses
      in multi-worker mode: a nested structure of per-replica values (the first batch, averaged
      only to build the model from its shapes) and ``axis=0`` on a per-replica *scalar* (each
      step's loss and metrics). The first is reduced leaf by leaf, the second over replicas
      (``axis=None``): what the same calls mean under ``MirroredStrategy``.
    - batch-norm moving statistics are made with aggregation MEAN (see
      :data:`_AVERAGED_STATISTICS`).

    Everything else is TensorFlow's own."""
    import tensorflow as tf
    from keras import tree

    class KerasMultiWorkerMirroredStrategy(tf.distribute.MultiWorkerMirroredStrategy):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            create = self.extended._create_variable

            def create_variable(next_creator, **kw):
                name = str(kw.get("name") or "").split("/")[-1].split(":")[0]
                if (name in _AVERAGED_STATISTICS and not kw.get("trainable", True)
                        and kw.get("aggregation") in (None, tf.VariableAggregation.NONE)):
                    kw["aggregation"] = tf.VariableAggregation.MEAN
                return create(next_creator, **kw)

            self.extended._create_variable = create_variable

        def reduce(self, reduce_op, value, axis):
            if not isinstance(value, tf.distribute.DistributedValues) and tree.is_nested(value):
                return tree.map_structure(lambda v: self.reduce(reduce_op, v, axis), value)
            if axis is not None:
                shape = getattr(self.experimental_local_results(value)[0], "shape", None)
                if shape is not None and shape.rank == 0:
                    axis = None
            return super().reduce(reduce_op, value, axis)

    return KerasMultiWorkerMirroredStrategy


def distribution_strategy():
    """``tf.distribute.MultiWorkerMirroredStrategy`` when ``TF_CONFIG`` describes a cluster,
    ``MirroredStrategy`` when more than one GPU is visible, else None (TensorFlow back end;
    other back ends: None)."""
    info = _configured or configure_device(mixed_precision=False)
    if info.backend != "tensorflow":
        return None
    if cluster_spec() is not None:
        return _multi_worker_strategy()
    if len(info.gpus) > 1:
        import tensorflow as tf

        return tf.distribute.MirroredStrategy()
    return None
