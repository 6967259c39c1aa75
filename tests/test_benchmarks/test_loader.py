"""benchmarks/loader.py at a tiny size: today's and the lazy loader give the
same crops, the lazy one reads fewer bytes, and the script's check fails
when the crops differ."""
import json
from pathlib import Path

import numpy as np
import pytest

from svd_mm.datasets.transforms.lazy_volume import LazyNiftiVolume
from tests.helpers.tools import load_script

SCRIPT = Path(__file__).parents[2] / 'benchmarks' / 'loader.py'
TINY = [
    '--size', '96', '--samples', '2', '--first-crop', '8', '80', '80',
    '--crop', '8', '64', '64', '--no-subprocess'
]


@pytest.fixture(scope='module')
def bench():
    return load_script(SCRIPT)


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp('loader_bench'))


def test_script_rows_and_identical_crops(bench, data_dir, tmp_path, capsys):
    out = tmp_path / 'rows.json'
    rows = bench.main(TINY + ['--data-dir', data_dir, '--json', str(out)])
    printed = capsys.readouterr().out
    assert 'identical crops (today vs new, 2 samples): yes' in printed
    assert [r['row'] for r in rows] == ['today', 'new', 'monai']
    today, new, monai = rows
    assert len(today['digests']) == 2 and today['digests'] == new['digests']
    assert today['digests'][0] != today['digests'][1]
    for row in rows:
        assert row['samples_per_s'] > 0 and row['load_crop_ms'] > 0
    if today['bytes_per_sample'] is not None:
        # the prepared 96x96 cases: 2.2 and 2.8 MB of image and label
        assert today['bytes_per_sample'] > 4e6
        assert monai['bytes_per_sample'] > 4e6
        assert new['bytes_per_sample'] < today['bytes_per_sample'] / 4
    saved = json.loads(out.read_text())
    assert saved['identical'] is True and len(saved['rows']) == 3


def test_script_fails_on_different_crops(bench, data_dir, monkeypatch,
                                         capsys):
    read = LazyNiftiVolume._read

    def off_by_one(self, box):
        return read(self, box) ^ np.uint8(1)

    monkeypatch.setattr(LazyNiftiVolume, '_read', off_by_one)
    with pytest.raises(SystemExit) as exit_info:
        bench.main(TINY + ['--data-dir', data_dir, '--rows', 'today', 'new'])
    assert exit_info.value.code == 1
    assert 'identical crops (today vs new, 2 samples): no' in \
        capsys.readouterr().out
