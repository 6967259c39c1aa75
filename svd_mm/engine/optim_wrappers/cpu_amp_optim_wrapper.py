"""Mixed precision on the CPU (bfloat16 autocast), which mmengine's
``AmpOptimWrapper`` refuses without a GPU."""
from contextlib import contextmanager
from typing import Union

import torch
from mmengine.optim import OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS
from mmengine.runner.amp import autocast

__all__ = ['CPUAmpOptimWrapper']


@OPTIM_WRAPPERS.register_module()
class CPUAmpOptimWrapper(OptimWrapper):
    """Automatic mixed precision on the CPU: bfloat16 autocast.

    mmengine's ``AmpOptimWrapper`` refuses to be built without a GPU even
    though its ``autocast`` supports the CPU. This wrapper runs the forward
    pass and the loss inside ``autocast(device_type='cpu',
    dtype=torch.bfloat16)``; the backward pass and the update are those of
    :class:`~mmengine.optim.OptimWrapper` (no loss scaler: bfloat16 keeps the
    exponent range of float32, so small gradients do not underflow). The
    parameters and the optimizer state stay float32, so a checkpoint written
    with it resumes under ``OptimWrapper`` or ``AmpOptimWrapper``.

    ``tools/train.py --amp`` picks it when CUDA is not available.

    Args:
        dtype (str or torch.dtype): Autocast dtype; CPU autocast only
            supports bfloat16. Defaults to 'bfloat16'.
        **kwargs: Arguments of :class:`~mmengine.optim.OptimWrapper`
            (``optimizer``, ``accumulative_counts``, ``clip_grad``).

    Examples:
        >>> import torch
        >>> from svd_mm.engine import CPUAmpOptimWrapper
        >>> model = torch.nn.Linear(4, 2)
        >>> wrapper = CPUAmpOptimWrapper(
        ...     optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
        >>> with wrapper.optim_context(model):
        ...     out = model(torch.rand(3, 4))
        >>> out.dtype, model.weight.dtype
        (torch.bfloat16, torch.float32)
    """

    def __init__(self,
                 dtype: Union[str, torch.dtype] = 'bfloat16',
                 **kwargs) -> None:
        if dtype not in ('bfloat16', torch.bfloat16):
            raise ValueError('CPUAmpOptimWrapper: CPU autocast only supports '
                             f"dtype='bfloat16', but got dtype={dtype!r}")
        super().__init__(**kwargs)
        self.cast_dtype = torch.bfloat16

    @contextmanager
    def optim_context(self, model: torch.nn.Module):
        """Gradient-accumulation context of ``OptimWrapper`` plus bfloat16
        autocast on the CPU."""
        with super().optim_context(model), autocast(
                device_type='cpu', dtype=self.cast_dtype):
            yield
