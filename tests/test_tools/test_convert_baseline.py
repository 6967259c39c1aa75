"""tools/model_converters/convert_baseline.py on checkpoints laid out like
the released ones (built from their documented key names and shapes)."""
from pathlib import Path

import pytest
import torch
import torchvision
from mmengine.registry import MODELS
from mmengine.runner import CheckpointLoader

import svd_mm  # noqa: F401
from svd_mm.models.segmentors import UNet3DGenesis
from tests.helpers.tools import load_script

REPO = Path(__file__).parents[2]
TOOL = REPO / 'tools' / 'model_converters' / 'convert_baseline.py'


def _load(name, path):
    return load_script(path, name)


tool = _load('convert_baseline', TOOL)
layouts = _load(
    'baseline_layouts',
    REPO / 'tests' / 'test_models' / 'test_utils' / 'baseline_layouts.py')


def _resnet3d_from_snippet(dst, model_args):
    """The backbone a config builds with
    ``init_cfg=dict(type='Pretrained', checkpoint=dst)``."""
    model = MODELS.build(
        dict(
            type='ResNet3D',
            **model_args,
            init_cfg=dict(type='Pretrained', checkpoint=str(dst))))
    model.init_weights()
    return model


def test_med3d_resnet18(tmp_path, capsys):
    ckpt = layouts.med3d_checkpoint(18)
    src = tmp_path / 'resnet_18_23dataset.pth'
    torch.save(ckpt, src)
    dst = tmp_path / 'out' / 'r3d18_med3d.pth'
    tool.main(['--type', 'med3d', str(src), str(dst)])
    stdout = capsys.readouterr().out
    assert ("Med3D: mapped 102 tensors onto depth=18, base_channels=64, "
            "shortcut_type='A', in_channels=1") in stdout
    assert 'dropped 14 tensors' in stdout
    assert f'verified: the target model loads {dst}' in stdout
    assert (
        "config: backbone=dict(type='ResNet3D', depth=18, "
        "base_channels=64, shortcut_type='A', in_channels=1, "
        f"init_cfg={{'type': 'Pretrained', 'checkpoint': '{dst}'}})") in stdout

    saved = CheckpointLoader.load_checkpoint(str(dst))
    assert saved['meta'] == dict(
        source='resnet_18_23dataset.pth',
        type='med3d',
        model=dict(
            depth=18, base_channels=64, shortcut_type='A', in_channels=1),
        mapped=102,
        dropped={
            k[len('module.'):]:
            'segmentation decoder of the Med3D '
            'pre-training tasks'
            for k in ckpt['state_dict'] if k.startswith('module.conv_seg')
        })
    model = _resnet3d_from_snippet(dst, saved['meta']['model'])
    assert torch.equal(model.layer4[1].conv2.conv.weight,
                       ckpt['state_dict']['module.layer4.1.conv2.weight'])
    assert torch.equal(model.conv1.bn.running_mean,
                       ckpt['state_dict']['module.bn1.running_mean'])


def test_kinetics_cvpr2018(tmp_path, capsys):
    ckpt = layouts.kinetics_checkpoint(18, version='cvpr2018', width=8)
    src = tmp_path / 'resnet-18-kinetics.pth'
    torch.save(ckpt, src)
    dst = tmp_path / 'r3d18_kinetics.pth'
    tool.main(['--type', 'kinetics', str(src), str(dst), '--depth', '18'])
    stdout = capsys.readouterr().out
    assert 'conv1.conv.weight: summed over its 3 input channels' in stdout
    assert 'fc.weight, fc.bias: classifier of the Kinetics' in stdout
    assert 'added 17 tensors' in stdout
    model = _resnet3d_from_snippet(
        dst,
        CheckpointLoader.load_checkpoint(str(dst))['meta']['model'])
    torch.testing.assert_close(
        model.conv1.conv.weight,
        ckpt['state_dict']['module.conv1.weight'].sum(1, keepdim=True))


def test_kinetics_file_with_multistep_scheduler(tmp_path, capsys):
    """3D-ResNets-PyTorch's main.py saves ``scheduler.state_dict()``; with
    its default MultiStepLR the milestones are a ``collections.Counter``,
    which torch's weights_only loader accepts: the file converts."""
    ckpt = layouts.kinetics_checkpoint(18, width=8)
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=0.1, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer,
                                                     [50, 100, 150])
    ckpt['scheduler'] = scheduler.state_dict()
    assert type(ckpt['scheduler']['milestones']).__name__ == 'Counter'
    src = tmp_path / 'r3d18_K_200ep.pth'
    torch.save(ckpt, src)
    dst = tmp_path / 'r3d18_kinetics.pth'
    tool.main(['--type', 'kinetics', str(src), str(dst), '--depth', '18'])
    assert 'conv1.conv.weight: summed over its 3 input channels' in \
        capsys.readouterr().out
    converted = CheckpointLoader.load_checkpoint(str(dst))['state_dict']
    torch.testing.assert_close(
        converted['conv1.conv.weight'],
        ckpt['state_dict']['conv1.weight'].sum(1, keepdim=True))


@pytest.mark.parametrize('kind', ['i3d', 'acs'])
def test_2d_resnet18(kind, tmp_path, capsys):
    """A torchvision file (a bare state dict) for I3D, an mmpretrain one
    (backbone + head) for ACS."""
    torch.manual_seed(0)
    state = torchvision.models.resnet18().state_dict()
    src = tmp_path / 'resnet18.pth'
    if kind == 'i3d':
        torch.save(state, src)
    else:
        torch.save(
            dict(
                meta=dict(epoch=100, dataset_meta=dict(classes=['a', 'b'])),
                state_dict={
                    ('head.' if k.startswith('fc.') else 'backbone.') + k: v
                    for k, v in state.items()
                }), src)
    dst = tmp_path / f'r3d18_{kind}.pth'
    tool.main(['--type', kind, str(src), str(dst)])
    stdout = capsys.readouterr().out
    assert 'verified' in stdout
    meta = CheckpointLoader.load_checkpoint(str(dst))['meta']
    model = _resnet3d_from_snippet(dst, meta['model'])
    weight = model.layer1[0].conv2.conv.weight
    if kind == 'i3d':
        assert weight.shape == torch.Size([64, 64, 3, 3, 3])
        torch.testing.assert_close(weight[:, :, 1],
                                   state['layer1.0.conv2.weight'] / 3)
    else:
        assert meta['model']['conv_cfg'] == dict(type='ACSConv')
        assert "conv_cfg={'type': 'ACSConv'}" in stdout
        assert torch.equal(weight, state['layer1.0.conv2.weight'])
        assert set(meta['dropped']) == {'head.fc.weight', 'head.fc.bias'}


def test_genesis(tmp_path, capsys):
    ckpt = layouts.genesis_checkpoint(base=4)
    src = tmp_path / 'Genesis_Chest_CT.pt'
    torch.save(ckpt, src)
    dst = tmp_path / 'genesis_chest_ct_zyx.pth'
    tool.main(['--type', 'genesis', str(src), str(dst)])
    stdout = capsys.readouterr().out
    # 14 convolutions with their norms (7 each), 3 up-convolutions, output
    assert 'Models Genesis: mapped 106 tensors' in stdout
    assert ("config: model=dict(type='UNet3DGenesis', num_classes=2, "
            "in_channels=1, base_channels=4, out_channels=1, loss_decode="
            "{'type': 'CrossEntropyLoss', 'use_sigmoid': True}, init_cfg=") \
        in stdout
    model = UNet3DGenesis(
        num_classes=2,
        out_channels=1,
        base_channels=4,
        init_cfg=dict(type='Pretrained', checkpoint=str(dst)))
    model.init_weights()
    torch.testing.assert_close(
        model.backbone.down_tr128.ops[0].conv1.weight,
        ckpt['state_dict']['module.down_tr128.ops.0.conv1.weight'].permute(
            0, 1, 4, 3, 2))


def test_errors_exit_with_a_message(tmp_path):
    src = tmp_path / 'resnet_18.pth'
    torch.save(layouts.med3d_checkpoint(18, width=4), src)
    # a Med3D file read as Kinetics: its decoder is no Kinetics key
    with pytest.raises(SystemExit, match=r'error: .*conv_seg\.0\.weight'):
        tool.main(['--type', 'kinetics', str(src), str(tmp_path / 'out.pth')])
    assert not (tmp_path / 'out.pth').exists()
    # a missing source
    with pytest.raises(SystemExit, match='missing.pth'):
        tool.main([
            '--type', 'med3d',
            str(tmp_path / 'missing.pth'),
            str(tmp_path / 'out.pth')
        ])
    # an unknown type
    with pytest.raises(SystemExit):
        tool.main(['--type', 'resnet', str(src), str(tmp_path / 'out.pth')])
