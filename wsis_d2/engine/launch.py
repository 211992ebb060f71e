"""Multi-process launch that also works on CPU-only machines.

detectron2 v0.6's ``launch`` asserts CUDA and hard-codes the NCCL backend. On
a machine without CUDA this starts the worker processes itself with the gloo
backend, sets up detectron2's local process group and makes the trainer's
DistributedDataParallel wrap CPU modules (which take no ``device_ids``).
With CUDA, or a single process, it is detectron2's own ``launch``.

A :class:`ConfigError`, :class:`AnnotationError` or :class:`NonFiniteLossError` raised in a worker
process (a check that needs the data loaded, a loss that blew up) is raised again in the launching
process, so that the command ends with its one line instead of the worker's traceback.
"""
import logging
import os
import re
import socket
from datetime import timedelta

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from detectron2.engine import launch as d2_launch
from detectron2.utils import comm
from torch.multiprocessing.spawn import ProcessRaisedException

from ..config import ConfigError
from ..data.checks import AnnotationError
from .loss_check import NonFiniteLossError

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = timedelta(minutes=30)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _use_cpu_ddp_without_device_ids():
    import detectron2.engine.defaults as d2_defaults

    create = d2_defaults.create_ddp_model

    def create_cpu_ddp_model(model, **kwargs):
        kwargs.setdefault("device_ids", None)
        return create(model, **kwargs)

    d2_defaults.create_ddp_model = create_cpu_ddp_model


def _set_local_process_group(num_per_machine: int, machine_rank: int, world_size: int) -> None:
    if hasattr(comm, "create_local_process_group"):  # detectron2 after v0.6
        comm.create_local_process_group(num_per_machine)
        return
    for i in range(world_size // num_per_machine):
        group = dist.new_group(list(range(i * num_per_machine, (i + 1) * num_per_machine)))
        if i == machine_rank:
            comm._LOCAL_PROCESS_GROUP = group


def _cpu_worker(local_rank, main_func, world_size, num_per_machine, machine_rank, dist_url, args, timeout):
    # share the cores instead of every process using all of them
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // num_per_machine))
    rank = machine_rank * num_per_machine + local_rank
    dist.init_process_group(backend="gloo", init_method=dist_url, world_size=world_size, rank=rank, timeout=timeout)
    try:
        _set_local_process_group(num_per_machine, machine_rank, world_size)
        _use_cpu_ddp_without_device_ids()
        comm.synchronize()
        main_func(*args)
    finally:
        dist.destroy_process_group()


# errors whose message is the whole story (raised by wsis-d2's checks), by class name
ONE_LINE_ERRORS = {"ConfigError": ConfigError, "AnnotationError": AnnotationError,
                   "NonFiniteLossError": NonFiniteLossError}


def _one_line_error(error: ProcessRaisedException):
    """The worker's own error when the traceback ends in one of :data:`ONE_LINE_ERRORS`, else None."""
    last = str(error).strip().splitlines()[-1]
    match = re.match(r"^wsis_d2\.[\w.]+\.(\w+): (.*)$", last)
    if match and match.group(1) in ONE_LINE_ERRORS:
        return ONE_LINE_ERRORS[match.group(1)](match.group(2))
    return None


def launch(main_func, num_gpus_per_machine: int, num_machines: int = 1, machine_rank: int = 0,
           dist_url: str = None, args=(), timeout=DEFAULT_TIMEOUT):
    """``detectron2.engine.launch`` with a gloo/CPU path (``num_gpus_per_machine`` = processes)."""
    try:
        _launch(main_func, num_gpus_per_machine, num_machines, machine_rank, dist_url, args, timeout)
    except ProcessRaisedException as e:
        error = _one_line_error(e)
        if error is None:
            raise
        raise error from None


def _launch(main_func, num_gpus_per_machine, num_machines, machine_rank, dist_url, args, timeout):
    world_size = num_machines * num_gpus_per_machine
    if world_size <= 1 or torch.cuda.is_available():
        return d2_launch(main_func, num_gpus_per_machine, num_machines=num_machines, machine_rank=machine_rank,
                         dist_url=dist_url, args=args, timeout=timeout)
    if dist_url in (None, "auto"):
        if num_machines > 1:
            raise ValueError("--dist-url auto only works on one machine; give tcp://<host>:<port>")
        dist_url = f"tcp://127.0.0.1:{_free_port()}"
    logger.info(f"Launching {num_gpus_per_machine} CPU processes (gloo) at {dist_url}")
    mp.start_processes(_cpu_worker, nprocs=num_gpus_per_machine, daemon=False, start_method="spawn",
                       args=(main_func, world_size, num_gpus_per_machine, machine_rank, dist_url, args, timeout))
