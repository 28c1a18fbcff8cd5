"""Sharded execution of builds: shard files, workers, executors (local processes, Ray), build lock.

See :mod:`dsbuild.executor` for the driver (``build``) and :mod:`dsbuild.pipeline` for steps.
"""

from dsbuild.execution.base import Executor, make_executor
from dsbuild.execution.shards import ShardTask, ShardWorker

__all__ = ["Executor", "ShardTask", "ShardWorker", "make_executor"]
