"""Every toolbox scope finds svd_mm's generic modules through
custom_imports."""
import importlib
import subprocess
import sys

import pytest

SCOPES = {
    'mmpretrain': 'mmpretrain.registry',
    'mmdet': 'mmdet.registry',
    'mmseg': 'mmseg.registry',
}
GENERIC = [
    ('MODELS', dict(type='ResNet3D', depth=18, base_channels=4)),
    ('MODELS', dict(type='ResNet3DV1c', depth=18, base_channels=4)),
    ('MODELS', dict(type='P3D', depth=63, base_channels=4)),
    ('MODELS', dict(type='GTMNeck', in_channels=[4], depths=[3])),
    ('MODELS', dict(type='VolumeDataPreprocessor', mean=[0.], std=[1.])),
    ('TRANSFORMS', dict(type='RGBToVolume')),
]


@pytest.mark.parametrize('scope', sorted(SCOPES))
@pytest.mark.parametrize('registry_name,cfg', GENERIC,
                         ids=[c['type'] for _, c in GENERIC])
def test_generic_module_builds_in_every_scope(scope, registry_name, cfg):
    import svd_mm  # noqa: F401
    from mmengine.registry import DefaultScope
    registry = getattr(importlib.import_module(SCOPES[scope]), registry_name)
    with DefaultScope.overwrite_default_scope(scope):
        obj = registry.build(dict(cfg))
    assert type(obj).__name__ == cfg['type']


@pytest.mark.parametrize('scope', sorted(SCOPES))
def test_custom_imports_registers_svd_mm(scope, tmp_path):
    """A fresh interpreter that only reads a config with custom_imports (no
    ``import svd_mm`` in the code) builds svd_mm's backbone in that scope."""
    cfg = tmp_path / f'{scope}_cfg.py'
    cfg.write_text(
        f"default_scope = '{scope}'\n"
        "custom_imports = dict(imports=['svd_mm'], "
        "allow_failed_imports=False)\n"
        "backbone = dict(type='ResNet3D', depth=18, base_channels=4)\n")
    code = f"""
import importlib
from mmengine.config import Config
from mmengine.registry import DefaultScope, init_default_scope
cfg = Config.fromfile({str(cfg)!r})
init_default_scope(cfg.default_scope)
registry = importlib.import_module({SCOPES[scope]!r}).MODELS
print(type(registry.build(cfg.backbone)).__name__)
"""
    out = subprocess.run([sys.executable, '-c', code],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == 'ResNet3D'


def test_mmdet_specific_packer_is_in_mmdet_scope_only():
    import svd_mm  # noqa: F401
    from mmdet.registry import TRANSFORMS as DET_TRANSFORMS
    from mmengine.registry import TRANSFORMS
    assert DET_TRANSFORMS.get('PackDetVolumeInputs') is not None
    assert 'PackDetVolumeInputs' not in TRANSFORMS.module_dict
