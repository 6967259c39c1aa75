"""Real, small data fetched by package name and cached outside the repo.

svd_mm's tests and demo never download from a model/data hub. They use real
files that ship inside packages on the package registry, fetched by exact
name and version through ``tools/misc/fetch_test_data.py`` (the one place
that runs the package installer; it also fills the cache beforehand),
checked against a recorded SHA-256 and unpacked into a cache folder:

=============  ==================================  ==========================
source         package (registry artefact)          what is used
=============  ==================================  ==========================
foolbox        ``foolbox==3.3.4`` wheel             ``foolbox/data/``: 20
                                                    ImageNet (512²) and 20
                                                    CIFAR-10 RGB images, the
                                                    label is the last ``_``
                                                    field of the file name
pyradiomics    ``pyradiomics==3.0.1`` sdist         ``data/lung{1,2}_{image,
                                                    label}.nrrd``: real chest
                                                    CT with lesion masks
sahi           ``sahi==0.12.8`` sdist               ``demo/demo_data/
                                                    terrain2.png`` and its
                                                    COCO json (car boxes)
=============  ==================================  ==========================

The cache folder is ``$SVD_MM_CACHE`` or ``~/.cache/svd_mm``. Every unpacked
file's SHA-256 is recorded on extraction and checked on each use, so a
truncated or edited cache file is detected and re-extracted.
"""
import fcntl
import functools
import hashlib
import json
import os
import os.path as osp
import shutil
import tarfile
import tempfile
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Dict, List, Optional

__all__ = [
    'PACKAGE_SOURCES', 'get_cache_dir', 'fetch_package_files',
    'fetch_foolbox_images', 'fetch_pyradiomics_ct', 'fetch_sahi_coco',
    'layout_classification_set'
]

# name -> (requirement, artefact kind, sha256 of the artefact, whether
#          fetching needs build isolation, member prefix inside archive)
PACKAGE_SOURCES: Dict[str, dict] = {
    'foolbox':
    dict(
        requirement='foolbox==3.3.4',
        kind='wheel',
        filename='foolbox-3.3.4-py3-none-any.whl',
        sha256='11049d515d38e765e206a73ace9cc648b81a0d6d1da9ad9057e149ee117989cb',  # noqa: E501
        build_isolation=False,
        members='foolbox/data/'),
    'pyradiomics':
    dict(
        requirement='pyradiomics==3.0.1',
        kind='sdist',
        filename='pyradiomics-3.0.1.tar.gz',
        sha256='47c57f441d6cb7973fa3b2ea48d3948df78e3348e1c69e1e2ff19001601fc2f5',  # noqa: E501
        build_isolation=False,
        members='pyradiomics-3.0.1/data/lung'),
    'sahi':
    dict(
        requirement='sahi==0.12.8',
        kind='sdist',
        filename='sahi-0.12.8.tar.gz',
        sha256='f2074b3b3aa0f655dbdd69fbb1f1a0b985220f5fb3d920a4206eba160d37028a',  # noqa: E501
        build_isolation=True,
        members='sahi-0.12.8/demo/demo_data/terrain2'),
}

_MANIFEST = 'manifest.json'


def get_cache_dir(cache_dir: Optional[str] = None) -> Path:
    """Return (and create) the svd_mm data cache folder.

    Args:
        cache_dir (str, optional): Explicit folder. Defaults to
            ``$SVD_MM_CACHE`` or ``~/.cache/svd_mm``.
    """
    if cache_dir is None:
        cache_dir = os.environ.get('SVD_MM_CACHE',
                                   osp.join('~', '.cache', 'svd_mm'))
    path = Path(cache_dir).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


@functools.lru_cache(maxsize=None)
def _fetch_tool() -> ModuleType:
    """``tools/misc/fetch_test_data.py`` of this checkout, which fetches
    the artefacts from the registry."""
    from .tools import load_script
    path = Path(__file__).resolve().parents[2] / 'tools' / 'misc' / \
        'fetch_test_data.py'
    if not path.is_file():
        raise FileNotFoundError(
            f'tests.helpers fetches its data through {path}, which does not '
            'exist: use an editable install of an svd_mm checkout, or fill '
            '$SVD_MM_CACHE from one')
    return load_script(str(path), 'svd_mm_fetch_test_data')


def _download(source: dict, dst_dir: Path) -> Path:
    """Fetch one artefact by exact name/version, verify SHA-256."""
    archive = dst_dir / source['filename']
    if archive.exists() and _sha256(archive) == source['sha256']:
        return archive
    _fetch_tool().fetch_artifact(source['requirement'], source['kind'],
                                 source['build_isolation'], dst_dir)
    if not archive.exists():
        raise RuntimeError(
            f'Fetching {source["requirement"]} ({source["kind"]}) into '
            f'{dst_dir} did not give {archive.name}')
    digest = _sha256(archive)
    if digest != source['sha256']:
        archive.unlink()
        raise RuntimeError(
            f'Checksum mismatch for {archive.name}: expected '
            f'{source["sha256"]}, got {digest}. The file was removed; the '
            'registry served a different artefact than the one svd_mm '
            'recorded.')
    return archive


def _extract(archive: Path, prefix: str, out_dir: Path) -> List[Path]:
    """Extract archive members whose name starts with ``prefix``."""
    written = []
    if archive.suffix == '.whl':
        with zipfile.ZipFile(archive) as zf:
            for name in zf.namelist():
                if name.startswith(prefix) and not name.endswith('/'):
                    dst = out_dir / osp.basename(name)
                    with zf.open(name) as src, open(dst, 'wb') as f:
                        shutil.copyfileobj(src, f)
                    written.append(dst)
    else:
        with tarfile.open(archive, 'r:gz') as tf:
            for member in tf.getmembers():
                if member.isfile() and member.name.startswith(prefix):
                    dst = out_dir / osp.basename(member.name)
                    with tf.extractfile(member) as src, open(dst, 'wb') as f:
                        shutil.copyfileobj(src, f)
                    written.append(dst)
    if not written:
        raise RuntimeError(f'{archive} holds no member under {prefix!r}')
    return written


def fetch_package_files(name: str,
                        cache_dir: Optional[str] = None) -> List[Path]:
    """Fetch the data files of one of :data:`PACKAGE_SOURCES`.

    Downloads the artefact on first use, verifies its SHA-256, extracts the
    data members into ``<cache>/<name>/`` and records each file's SHA-256;
    later calls verify the files against that record (and re-extract when a
    file is missing or changed).

    Args:
        name (str): Key of :data:`PACKAGE_SOURCES`.
        cache_dir (str, optional): Cache folder. Defaults to
            :func:`get_cache_dir`.

    Returns:
        list[Path]: The extracted files, sorted by name.
    """
    if name not in PACKAGE_SOURCES:
        raise KeyError(f'Unknown data package {name!r}; known: '
                       f'{sorted(PACKAGE_SOURCES)}')
    root = get_cache_dir(cache_dir)
    # one process at a time per package (parallel test workers share the
    # cache: one of them downloads, the others then find it complete)
    with open(root / f'.{name}.lock', 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _fetch_locked(name, root)


def _fetch_locked(name: str, root: Path) -> List[Path]:
    """:func:`fetch_package_files` once the package's lock is held."""
    source = PACKAGE_SOURCES[name]
    out_dir = root / name
    manifest_path = out_dir / _MANIFEST
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        files = [out_dir / f for f in sorted(manifest['files'])]
        if (manifest.get('sha256') == source['sha256'] and all(
                f.exists() and _sha256(f) == manifest['files'][f.name]
                for f in files)):
            return files
    downloads = root / 'downloads'
    downloads.mkdir(exist_ok=True)
    archive = _download(source, downloads)
    # Extract into a temporary sibling, then swap, so an interrupted run
    # never leaves a half-written folder that looks complete.
    tmp_dir = Path(tempfile.mkdtemp(prefix=f'.{name}-', dir=root))
    try:
        written = _extract(archive, source['members'], tmp_dir)
        manifest = dict(
            requirement=source['requirement'],
            sha256=source['sha256'],
            files={p.name: _sha256(p)
                   for p in written})
        (tmp_dir / _MANIFEST).write_text(json.dumps(manifest, indent=1))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp_dir.rename(out_dir)
    finally:
        if tmp_dir.exists():
            shutil.rmtree(tmp_dir)
    return [out_dir / f for f in sorted(manifest['files'])]


def fetch_foolbox_images(cache_dir: Optional[str] = None,
                         splits=('imagenet', 'cifar10')) -> List[dict]:
    """Real labelled RGB images from the ``foolbox`` wheel.

    Args:
        cache_dir (str, optional): Cache folder.
        splits (Sequence[str]): Which image groups to return; ``imagenet``
            (20 images, 512²-ish JPEG, ImageNet-1k labels) and/or ``cifar10``
            (20 images, 32² PNG, CIFAR-10 labels).

    Returns:
        list[dict]: ``{'path': str, 'label': int, 'split': str}`` sorted by
        file name. The label is the last ``_`` field of the file name.
    """
    items = []
    for path in fetch_package_files('foolbox', cache_dir):
        stem, ext = osp.splitext(path.name)
        split = stem.split('_')[0]
        if split in splits and ext in ('.jpg', '.png'):
            items.append(
                dict(path=str(path), label=int(stem.split('_')[-1]),
                     split=split))
    return items


def fetch_pyradiomics_ct(cache_dir: Optional[str] = None) -> List[dict]:
    """Real chest CT volumes with lesion masks from the ``pyradiomics`` sdist.

    Returns:
        list[dict]: ``{'name': 'lung1', 'image': str, 'label': str}`` for
        ``lung1`` and ``lung2`` (NRRD, 512×512×48 and 512×512×61, 5 mm
        slices; label 1 marks the lesion).
    """
    files = {p.name: p for p in fetch_package_files('pyradiomics', cache_dir)}
    cases = []
    for name in ('lung1', 'lung2'):
        cases.append(
            dict(
                name=name,
                image=str(files[f'{name}_image.nrrd']),
                label=str(files[f'{name}_label.nrrd'])))
    return cases


def fetch_sahi_coco(cache_dir: Optional[str] = None) -> dict:
    """A real photo with COCO boxes from the ``sahi`` sdist.

    Returns:
        dict: ``{'image': str, 'ann_file': str}`` (``terrain2.png`` and
        ``terrain2_coco.json``).
    """
    files = {p.name: p for p in fetch_package_files('sahi', cache_dir)}
    return dict(
        image=str(files['terrain2.png']),
        ann_file=str(files['terrain2_coco.json']))


def layout_classification_set(out_dir: str,
                              splits=('imagenet', ),
                              cache_dir: Optional[str] = None) -> dict:
    """Lay the foolbox images out as an mmpretrain ``CustomDataset``.

    Writes ``out_dir/images/<file>`` (copies) and ``out_dir/meta/train.txt``
    with one ``<file> <label>`` line per image. The same list serves as the
    evaluation list (``meta/val.txt``): with 20 images, the demo and tests
    measure how well the network fits real images, not generalisation.

    Args:
        out_dir (str): Destination folder (created).
        splits (Sequence[str]): Image groups, see
            :func:`fetch_foolbox_images`. Defaults to ``('imagenet', )``.
        cache_dir (str, optional): Cache folder.

    Returns:
        dict: ``data_root``, ``train_ann`` and ``val_ann`` (relative to
        ``data_root``), ``data_prefix`` and ``num_images``.
    """
    out = Path(out_dir)
    (out / 'images').mkdir(parents=True, exist_ok=True)
    (out / 'meta').mkdir(exist_ok=True)
    lines = []
    for item in fetch_foolbox_images(cache_dir, splits=splits):
        name = osp.basename(item['path'])
        shutil.copyfile(item['path'], out / 'images' / name)
        lines.append(f'{name} {item["label"]}')
    if not lines:
        raise RuntimeError(f'No foolbox image matched splits={splits}')
    for ann in ('train.txt', 'val.txt'):
        (out / 'meta' / ann).write_text('\n'.join(lines) + '\n')
    return dict(
        data_root=str(out),
        train_ann='meta/train.txt',
        val_ann='meta/val.txt',
        data_prefix='images',
        num_images=len(lines))
