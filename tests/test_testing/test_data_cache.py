import shutil
from pathlib import Path

import mmcv
import pytest

from tests.helpers import data_cache
from tests.helpers.data_cache import (fetch_foolbox_images,
                                      fetch_package_files, get_cache_dir,
                                      layout_classification_set)


@pytest.fixture
def private_cache(tmp_path):
    """A cache folder of its own, seeded with the already downloaded
    artefacts so the test does not depend on the registry."""
    downloads = get_cache_dir() / 'downloads'
    fetch_package_files('foolbox')  # make sure the artefact is there
    (tmp_path / 'downloads').mkdir()
    for f in downloads.glob('foolbox-*'):
        shutil.copy(f, tmp_path / 'downloads' / f.name)
    return tmp_path


def test_foolbox_images_are_real_labelled_rgb():
    items = fetch_foolbox_images()
    assert sum(i['split'] == 'imagenet' for i in items) == 20
    assert sum(i['split'] == 'cifar10' for i in items) == 20
    first = {i['path'].rsplit('/', 1)[-1]: i for i in items}
    assert first['imagenet_00_243.jpg']['label'] == 243
    assert first['cifar10_01_8.png']['label'] == 8
    img = mmcv.imread(first['imagenet_00_243.jpg']['path'])
    assert img.ndim == 3 and img.shape[2] == 3 and min(img.shape[:2]) >= 224
    assert img.std() > 10  # a photo, not a blank image


def test_corrupted_cache_file_is_detected_and_restored(private_cache):
    files = fetch_package_files('foolbox', str(private_cache))
    victim = next(f for f in files if f.name == 'imagenet_00_243.jpg')
    good = victim.read_bytes()
    victim.write_bytes(good[:100])  # truncated file in the cache
    files = fetch_package_files('foolbox', str(private_cache))
    assert victim.read_bytes() == good


def test_checksum_mismatch_is_refused(private_cache, monkeypatch):
    bad = dict(data_cache.PACKAGE_SOURCES['foolbox'], sha256='0' * 64)
    monkeypatch.setitem(data_cache.PACKAGE_SOURCES, 'foolbox', bad)
    with pytest.raises(RuntimeError, match='Checksum mismatch'):
        # the pre-seeded artefact does not match, pip fetches the same
        # bytes again and the check refuses them
        fetch_package_files('foolbox', str(private_cache))


def test_unknown_package():
    with pytest.raises(KeyError, match='Unknown data package'):
        fetch_package_files('imagenet-full')


def test_layout_classification_set(tmp_path):
    info = layout_classification_set(str(tmp_path / 'set'))
    lines = (tmp_path / 'set' / info['train_ann']).read_text().split('\n')
    lines = [line for line in lines if line]
    assert len(lines) == info['num_images'] == 20
    name, label = lines[0].split()
    assert (tmp_path / 'set' / 'images' / name).exists()
    assert int(label) == int(name.rsplit('_', 1)[-1].split('.')[0])


def test_fetch_tool_fills_the_cache(private_cache, capsys):
    """tools/misc/fetch_test_data.py fetches (here: from the seeded
    artefact) and unpacks the named packages; an unknown name is an
    error."""
    from tests.helpers.tools import load_script
    tool = load_script(
        str(Path(__file__).parents[2] / 'tools' / 'misc' /
            'fetch_test_data.py'))
    files = tool.main(['foolbox', '--cache-dir', str(private_cache)])
    assert files == fetch_package_files('foolbox', str(private_cache))
    assert len(files) > 40  # 20 ImageNet, 20 CIFAR-10 photos and more
    assert all(f.is_file() and private_cache in f.parents for f in files)
    assert f'foolbox: {len(files)} files in {private_cache}' in \
        capsys.readouterr().out
    with pytest.raises(SystemExit):
        tool.main(['imagenet-full', '--cache-dir', str(private_cache)])
    assert "unknown packages ['imagenet-full']" in capsys.readouterr().err
