"""Launch helpers shared by ``tools/train.py`` and ``tools/test.py``, and
inference on a user's volumes (inferencers, ``tools/infer.py``)."""
from .inference import inference_volume
from .inferencers import (BaseVolumeInferencer, VolumeDetInferencer,
                          VolumeSegInferencer, build_volume_pipeline,
                          init_model)
from .launch import (LAUNCHER_ENV, TOOLBOX_SCOPES, build_runner,
                     check_launcher_env, close_dist, enable_amp,
                     enable_auto_scale_lr, find_resume_checkpoint,
                     init_cpu_dist, load_config, register_toolbox,
                     resolve_resume, set_work_dir, setup_launcher)
from .quiet import add_verbose_argument, filter_known_warnings

__all__ = [
    'TOOLBOX_SCOPES', 'LAUNCHER_ENV', 'load_config', 'register_toolbox',
    'set_work_dir', 'check_launcher_env', 'init_cpu_dist', 'setup_launcher',
    'close_dist', 'enable_amp', 'enable_auto_scale_lr',
    'find_resume_checkpoint', 'resolve_resume', 'build_runner', 'init_model',
    'inference_volume', 'build_volume_pipeline', 'BaseVolumeInferencer',
    'VolumeSegInferencer', 'VolumeDetInferencer', 'add_verbose_argument',
    'filter_known_warnings'
]
