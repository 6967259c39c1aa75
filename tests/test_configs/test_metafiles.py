"""The OpenMMLab metafiles: one entry per config, the paper's numbers as
transcribed in ``../shared/PAPER_TABLES.md``, and config headers and READMEs
that agree with them (``tools/misc/sync_paper_numbers.py --check``)."""
import glob
import os.path as osp

import pytest
import yaml

from svd_mm.utils.paper_results import (METRIC_KEYS, find_model,
                                        load_model_index, paper_metrics,
                                        paper_text)
from tests.helpers import find_paper_tables, parse_paper_tables, split_pm
from tests.helpers.tools import load_script

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MODELS = load_model_index(REPO)

# PAPER_TABLES.md column -> metafile metric name, per section
COLUMNS = {
    'Table II': {'top-1': 'Top 1 Accuracy', 'top-5': 'Top 5 Accuracy'},
    'MS-COCO pre-training (text of Sec. IV-A, box mAP)': {'mAP': 'box AP'},
    'Table IV': {
        'accuracy': 'Accuracy', 'AUC': 'AUC', 'F1': 'F1',
        'precision': 'Precision', 'sensitivity': 'Sensitivity',
        'specificity': 'Specificity'
    },
    'Table III': {'Dice': 'Dice'},
    'Table V': {'DPC': 'Dice per case'},
    'Table VI': {
        '0.5': 'Sensitivity@0.5FP', '1': 'Sensitivity@1FP',
        '2': 'Sensitivity@2FP', '4': 'Sensitivity@4FP', 'mFROC': 'mFROC'
    },
}
COLUMNS['Table VII'] = COLUMNS['Table VI']
SECTION = {'II': 'Table II', 'Sec. IV-A': next(iter(
    k for k in COLUMNS if k.startswith('MS-COCO')))}
# rows of the paper that no config reproduces, and why
NOT_REPRODUCED = {
    # other papers' systems, quoted by SVD-Net
    ('Table VI', '3DCE, ResNet-50'), ('Table VI', 'MVP-Net, ResNet-50'),
    ('Table VI', 'ACS, DenseNet3D-121'),
    ('Table VI', 'AlignShift, DenseNet3D-121'),
    ('Table VI', 'MP3D, MP3D-63'),
    # Models Genesis fine-tunes a segmentation U-Net; no classifier here
    ('Table IV', 'Models Genesis'),
    # 2D ResNet-34/50 are the paper's references, not SVD-Net rows
    ('Table II', 'ResNet-34 (2D)'), ('Table II', 'ResNet-50 (2D)'),
    # Table VII's "Ours" row is the Table VI ResNet3DV1c-18 COCO config
    ('Table VII', 'Ours, ResNet3DV1c-18'),
}


def _row_name(section, row):
    if section in ('Table VI', 'Table VII'):
        return f"{row['method']}, {row['backbone']}"
    return row.get('method') or row.get('model') or row['backbone']


@pytest.fixture(scope='module')
def paper():
    path = find_paper_tables(REPO)
    if path is None:
        pytest.skip('../shared/PAPER_TABLES.md is not beside this checkout')
    return parse_paper_tables(path)


def _configs():
    names = set()
    for path in glob.glob(osp.join(REPO, 'configs', '**', '*.py'),
                          recursive=True):
        rel = osp.relpath(path, REPO)
        if '/_base_/' not in rel and not rel.startswith('configs/demo/'):
            names.add(rel)
    return names


def test_every_config_has_one_metafile_entry():
    configs = _configs()
    assert configs, 'no config found'
    listed = {entry['Config'] for entry in MODELS.values()}
    assert configs - listed == set(), 'configs without a metafile entry'
    assert listed - configs == set(), 'entries pointing to no config'
    for name, entry in MODELS.items():
        assert osp.splitext(osp.basename(entry['Config']))[0] == name
        # the entry lives in the metafile of the config's folder
        assert osp.dirname(entry['Config']) == osp.dirname(entry['Metafile'])


def test_metafiles_are_openmmlab_format():
    with open(osp.join(REPO, 'model-index.yml')) as f:
        imports = yaml.safe_load(f)['Import']
    folders = {osp.dirname(c) for c in _configs()}
    assert {osp.dirname(path) for path in imports} == folders
    for rel in imports:
        with open(osp.join(REPO, rel)) as f:
            meta = yaml.safe_load(f)
        collections = {c['Name'] for c in meta['Collections']}
        for entry in meta['Models']:
            assert entry['In Collection'] in collections
            assert {'Name', 'Config', 'Metadata'} <= set(entry)
            has_results = bool(entry.get('Results'))
            # either the paper's numbers or why there are none
            assert has_results != ('Paper Result' in entry['Metadata'])
            for result in entry.get('Results', []):
                assert {'Task', 'Dataset', 'Metrics'} <= set(result)
                assert set(result['Metrics']) <= set(METRIC_KEYS)


def test_metafile_numbers_are_the_papers(paper):
    seen = set()
    for name, entry in MODELS.items():
        if not entry.get('Results'):
            continue
        meta = entry['Metadata']
        section = SECTION.get(meta['Paper Table'],
                              f"Table {meta['Paper Table']}")
        rows = [r for r in paper[section]
                if _row_name(section, r) == meta['Paper Row']]
        assert len(rows) == 1, (name, section, meta['Paper Row'])
        row = rows[0]
        seen.add((section, meta['Paper Row']))
        (result, ) = entry['Results']
        for column, metric in COLUMNS[section].items():
            value, std = split_pm(row[column])
            assert result['Metrics'][metric] == value, (name, metric)
            assert (result.get('Std') or {}).get(metric) == std, (name,
                                                                  metric)
        p = row.get('p', '—')
        assert result.get('p-value') == (None if p == '—' else float(p))
    # every row of the reproduced tables is a config, or listed as not
    for section in COLUMNS:
        for row in paper[section]:
            if any('not reported' in cell for cell in row.values()):
                continue  # see test_not_reported_rows
            key = (section, _row_name(section, row))
            assert (key in seen) != (key in NOT_REPRODUCED), key


def test_not_reported_rows(paper):
    # e.g. ResNet3DV1c-18 is not reported on ImageNet nor on COCO
    for name in ('vdt_r3dv1c18_8xb32-100e_in1k',
                 'faster-rcnn_r3dv1c18_gtm-fpn_8xb2-72e_coco',
                 'faster-rcnn_p3d63-scratch_gtm-fpn_8xb2-24e_deeplesion'):
        assert paper_text(find_model(name, MODELS)).startswith(
            'not reported')
        assert paper_metrics(MODELS[name]) == {}
    fractions = [n for n in MODELS if n.endswith('pct')]
    deeplesion = [n for n in fractions if n.endswith('deeplesion-20pct')]
    assert len(deeplesion) == 3  # scratch, SVD COCO, SVD ImageNet
    for name in fractions:
        text = paper_text(MODELS[name])
        if 'deeplesion' in name:
            assert text == 'Fig. 4 (no printed values)'
        else:  # the LIDC fractions are an extra, not Fig. 4
            assert 'Fig. 4' not in text and text.startswith('not reported')


def test_paper_metrics_by_evaluator_key():
    ours = paper_metrics(
        MODELS['cls3d_r3d18-svd-in1k_gap-linear_4xb32-100e_lidc-cls-48'])
    assert ours['binary/auc'] == dict(
        name='AUC', value=94.84, std=0.22, p=None, scale=100., digits=2)
    scratch = paper_metrics(
        MODELS['cls3d_r3d18-scratch_gap-linear_4xb32-100e_lidc-cls-48'])
    # Table IV's p-value is the t-test on AUC
    assert scratch['binary/auc']['p'] == 0.0
    assert scratch['binary/f1']['p'] is None
    coco = paper_metrics(MODELS['faster-rcnn_p3d63_gtm-fpn_8xb2-72e_coco'])
    assert coco == {'coco/bbox_mAP': dict(name='box AP', value=36.5,
                                          std=None, p=None, scale=100.,
                                          digits=1)}
    with pytest.raises(KeyError, match='no entry'):
        find_model('configs/lidc/cls/not-a-config.py', MODELS)


def test_headers_and_readmes_agree_with_metafiles():
    sync = load_script(
        osp.join(REPO, 'tools', 'misc', 'sync_paper_numbers.py'),
        'sync_paper_numbers')
    assert sync.planned_changes(MODELS) == {}
    header = open(osp.join(
        REPO, 'configs/deeplesion/'
        'faster-rcnn_p3d63-svd-coco_gtm-fpn_8xb2-24e_deeplesion.py')).read()
    assert ('# Paper: Table VI "Ours (MS-COCO), P3D-63": Sensitivity@0.5FP '
            '82.22,') in header
    assert ('#   Sensitivity@1FP 87.42, Sensitivity@2FP 90.91, '
            'Sensitivity@4FP 93.65,\n#   mFROC 88.55\n') in header
    # a stale number is found
    entry = dict(MODELS['fcn3d_r3d18-scratch_4xb4-100e_lidc-seg-48'])
    entry['Results'] = [dict(entry['Results'][0], Metrics={'Dice': 1.0})]
    stale = dict(MODELS, **{entry['Name']: entry})
    assert list(sync.planned_changes(stale)) == [
        osp.join(REPO, entry['Config']),
        osp.join(REPO, 'configs', 'README.md'),
        osp.join(REPO, 'configs', 'lidc', 'README.md')
    ]
