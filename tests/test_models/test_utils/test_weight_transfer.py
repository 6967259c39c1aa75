import re
from collections import OrderedDict

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.runner import save_checkpoint

from svd_mm.models.backbones import ResNet3D
from svd_mm.models.utils import (adapt_first_conv_weight,
                                 load_backbone_weights, read_state_dict,
                                 select_prefix)

BASE = 8  # base_channels of every model here


class PretrainClassifier(nn.Module):
    """A 'pre-train mode' classifier as mmpretrain builds it: backbone (D=3
    kept to the end) + an fc head."""

    def __init__(self, depth=18, in_channels=1, num_classes=10):
        super().__init__()
        self.backbone = ResNet3D(
            depth, in_channels=in_channels, base_channels=BASE)
        self.backbone.init_weights()
        self.head = nn.Module()
        self.head.fc = nn.Linear(self.backbone.feat_dim, num_classes)
        # non-trivial norm statistics, so that copying them is visible
        gen = torch.Generator().manual_seed(depth)
        for m in self.backbone.modules():
            if isinstance(m, nn.BatchNorm3d):
                m.weight.data.uniform_(0.5, 1.5, generator=gen)
                m.bias.data.normal_(generator=gen)
                m.running_mean.normal_(generator=gen)
                m.running_var.uniform_(0.5, 2., generator=gen)
                m.num_batches_tracked.fill_(7)


def _save(model, path, ddp=False):
    """Save like mmpretrain: {'meta', 'state_dict'} through mmengine."""
    state_dict = OrderedDict((('module.' if ddp else '') + k, v)
                             for k, v in model.state_dict().items())
    save_checkpoint(
        dict(meta=dict(epoch=100), state_dict=state_dict), str(path))
    return str(path)


def _finetune_backbone(checkpoint, prefix='backbone.', **kwargs):
    """The fine-tuning backbone: other strides, weights by init_cfg."""
    cfg = dict(
        depth=18,
        base_channels=BASE,
        slice_strides=(1, 2, 2, 2),
        stem_stride=1,
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint))
    if prefix is not None:
        cfg['init_cfg']['prefix'] = prefix
    cfg.update(kwargs)
    return ResNet3D(**cfg)


@pytest.fixture(scope='module')
def pretrained(tmp_path_factory):
    """R3D-18 pre-trained in VDT mode, saved with and without ``module.``."""
    model = PretrainClassifier()
    folder = tmp_path_factory.mktemp('pretrained')
    return dict(
        model=model,
        plain=_save(model, folder / 'r3d18.pth'),
        ddp=_save(model, folder / 'r3d18_ddp.pth', ddp=True))


@pytest.mark.parametrize('variant', ['plain', 'ddp'])
def test_pretrained_backbone_into_finetune_strides(pretrained, variant):
    backbone = _finetune_backbone(pretrained[variant])
    backbone.init_weights()
    source = pretrained['model'].backbone.state_dict()
    target = backbone.state_dict()
    assert list(target) == list(source)
    for key, value in source.items():
        assert torch.equal(target[key], value), key
    # the fine-tuning strides: D 48 -> 48 -> 24 -> 12 -> 6, H/W stem 1
    backbone.eval()
    with torch.no_grad():
        outs = backbone(torch.rand(1, 1, 48, 48, 48))
    assert len(outs) == 1
    assert outs[0].shape == torch.Size([1, 64, 6, 3, 3])


def test_load_report(pretrained):
    backbone = _finetune_backbone(pretrained['plain'])
    report = load_backbone_weights(
        backbone, pretrained['plain'], prefix='backbone.')
    # head.fc is outside the prefix, the backbone keys all match
    assert report == dict(missing=[], unexpected=[], adapted=[])
    # a new head would be missing: a module with an extra parameter
    wrapper = nn.Module()
    wrapper.backbone = _finetune_backbone(pretrained['plain'])
    wrapper.neck = nn.Linear(2, 2)
    report = load_backbone_weights(wrapper, pretrained['plain'])
    assert report['missing'] == ['neck.weight', 'neck.bias']
    assert report['unexpected'] == ['head.fc.weight', 'head.fc.bias']


def test_extracted_keys(pretrained):
    state_dict = read_state_dict(pretrained['ddp'])
    assert next(iter(state_dict)) == 'backbone.conv1.conv.weight'
    assert 'head.fc.weight' in state_dict
    backbone = select_prefix(state_dict, 'backbone', pretrained['ddp'])
    assert list(backbone) == list(pretrained['model'].backbone.state_dict())


def test_rgb_to_grey_first_conv(tmp_path):
    # pre-trained on RGB volumes (C=3), fine-tuned on grey CT (C=1)
    source = PretrainClassifier(in_channels=3)
    path = _save(source, tmp_path / 'rgb.pth')
    backbone = _finetune_backbone(path, in_channels=1)
    report = load_backbone_weights(backbone, path, prefix='backbone.')
    assert report['adapted'] == ['conv1.conv.weight']
    src_weight = source.backbone.conv1.conv.weight
    assert src_weight.shape == torch.Size([BASE, 3, 7, 7, 7])
    weight = backbone.conv1.conv.weight
    assert weight.shape == torch.Size([BASE, 1, 7, 7, 7])
    assert torch.allclose(weight, src_weight.sum(dim=1, keepdim=True))
    # a grey volume responds like the RGB volume with that grey everywhere
    grey = torch.rand(1, 1, 5, 12, 10)
    with torch.no_grad():
        out_grey = F.conv3d(grey, weight, padding=3)
        out_rgb = F.conv3d(
            grey.expand(-1, 3, -1, -1, -1), src_weight, padding=3)
    assert out_grey.shape == torch.Size([1, BASE, 5, 12, 10])
    assert torch.allclose(out_grey, out_rgb, atol=1e-5)
    # the rest is copied unchanged
    assert torch.equal(backbone.layer1[0].conv1.conv.weight,
                       source.backbone.layer1[0].conv1.conv.weight)


def test_grey_to_rgb_first_conv(pretrained):
    backbone = _finetune_backbone(pretrained['plain'], in_channels=3)
    report = load_backbone_weights(
        backbone, pretrained['plain'], prefix='backbone.')
    assert report['adapted'] == ['conv1.conv.weight']
    src_weight = pretrained['model'].backbone.conv1.conv.weight
    weight = backbone.conv1.conv.weight
    assert weight.shape == torch.Size([BASE, 3, 7, 7, 7])
    for c in range(3):
        assert torch.allclose(weight[:, c:c + 1], src_weight / 3)
    # the same value in the 3 channels responds like the grey volume
    grey = torch.rand(1, 1, 3, 9, 14)
    with torch.no_grad():
        out_rgb = F.conv3d(grey.expand(-1, 3, -1, -1, -1), weight, padding=3)
        out_grey = F.conv3d(grey, src_weight, padding=3)
    assert out_rgb.shape == torch.Size([1, BASE, 3, 9, 14])
    assert torch.allclose(out_rgb, out_grey, atol=1e-5)


def test_adapt_first_conv_weight_rule():
    weight = torch.arange(2 * 3 * 1 * 1 * 2.).reshape(2, 3, 1, 1, 2)
    summed = adapt_first_conv_weight(weight, 1)
    assert summed.shape == torch.Size([2, 1, 1, 1, 2])
    assert summed.flatten().tolist() == [6., 9., 24., 27.]
    grey = torch.tensor([3., 6.]).reshape(1, 1, 1, 1, 2)
    repeated = adapt_first_conv_weight(grey, 3)
    assert repeated.shape == torch.Size([1, 3, 1, 1, 2])
    assert repeated.flatten().tolist() == [1., 2.] * 3
    # unchanged if the channels already match
    assert adapt_first_conv_weight(weight, 3) is weight
    # neither side has one channel
    with pytest.raises(ValueError, match='from 3 to 2 input channels'):
        adapt_first_conv_weight(weight, 2, 'conv1.conv.weight')


def test_first_conv_other_channels_is_refused(tmp_path):
    source = PretrainClassifier(in_channels=2)
    path = _save(source, tmp_path / 'two.pth')
    backbone = _finetune_backbone(path, in_channels=3)
    # 2 -> 3 channels has no rule
    with pytest.raises(ValueError, match=r'conv1\.conv\.weight.*from 2 to 3'):
        load_backbone_weights(backbone, path, prefix='backbone.')


def test_deeper_checkpoint_leaves_unexpected_blocks(tmp_path):
    # R3D-34 into R3D-18: the blocks R3D-18 lacks are unused
    source = PretrainClassifier(depth=34)
    path = _save(source, tmp_path / 'r3d34.pth')
    backbone = _finetune_backbone(path)
    report = load_backbone_weights(backbone, path, prefix='backbone.')
    assert report['missing'] == []
    assert report['adapted'] == []
    # blocks are layer{i}.{j}.{conv or downsample}.{conv or bn}.{name}
    extra_blocks = {'.'.join(k.split('.')[:2]) for k in report['unexpected']}
    assert extra_blocks == {
        'layer1.2', 'layer2.2', 'layer2.3', 'layer3.2', 'layer3.3', 'layer3.4',
        'layer3.5', 'layer4.2'
    }
    source_state = source.backbone.state_dict()
    for key, value in backbone.state_dict().items():
        assert torch.equal(value, source_state[key]), key


def test_other_block_type_is_refused(tmp_path):
    # R3D-50 (bottleneck) into R3D-18 (basic blocks): the first conv of
    # each block is 1x1x1 instead of 3x3x3
    path = _save(PretrainClassifier(depth=50), tmp_path / 'r3d50.pth')
    backbone = _finetune_backbone(path)
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    message = (r"r3d50\.pth.*layer1\.0\.conv1\.conv\.weight: checkpoint "
               r'\(8, 8, 1, 1, 1\) vs model \(8, 8, 3, 3, 3\)')
    with pytest.raises(ValueError, match=message):
        load_backbone_weights(backbone, path, prefix='backbone.')
    # refused before loading anything, not half-loaded
    for key, value in backbone.state_dict().items():
        assert torch.equal(value, before[key]), key
    # through init_cfg as well
    with pytest.raises(ValueError, match=message):
        backbone.init_weights()


def test_missing_prefix(pretrained):
    backbone = _finetune_backbone(pretrained['plain'], prefix='neck.')
    # no key starts with neck.: the file, the prefix and example keys
    message = (f"{re.escape(pretrained['plain'])}.*'neck\\.'.*"
               r"'backbone\.conv1\.conv\.weight'")
    with pytest.raises(ValueError, match=message):
        backbone.init_weights()


def test_forgotten_prefix(pretrained):
    backbone = _finetune_backbone(pretrained['plain'], prefix=None)
    # no key matches the module at all: suggest the prefix
    with pytest.raises(ValueError, match="set prefix.*'backbone.'"):
        backbone.init_weights()


def test_missing_file(tmp_path):
    path = str(tmp_path / 'nowhere.pth')
    backbone = _finetune_backbone(path)
    with pytest.raises(FileNotFoundError, match='nowhere.pth'):
        backbone.init_weights()


def test_model_key_and_raw_dict(pretrained, tmp_path):
    source = pretrained['model'].backbone.state_dict()
    # {'model': ...} as some other codebases write it
    model_path = str(tmp_path / 'model_key.pth')
    torch.save(dict(model=source), model_path)
    # a bare state dict
    raw_path = str(tmp_path / 'raw.pth')
    torch.save(source, raw_path)
    for path in (model_path, raw_path):
        backbone = _finetune_backbone(path, prefix=None)
        backbone.init_weights()
        assert torch.equal(backbone.layer4[1].conv2.bn.running_var,
                           source['layer4.1.conv2.bn.running_var'])
    # not a state dict: optimizer state etc. at the top level
    bad_path = str(tmp_path / 'bad.pth')
    torch.save(dict(epoch=3, weights=source), bad_path)
    with pytest.raises(ValueError, match=r"bad\.pth.*'epoch'"):
        read_state_dict(bad_path)
