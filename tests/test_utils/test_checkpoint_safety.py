import json
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.evaluator import BaseMetric
from mmengine.hooks import Hook
from mmengine.logging import HistoryBuffer
from mmengine.model import BaseModel
from mmengine.runner import CheckpointLoader, Runner, load_checkpoint
from torch.utils.data import Dataset

import svd_mm  # noqa: F401  (registers the allow-list and the loader)
from svd_mm.utils.checkpoint_safety import (SAFE_CHECKPOINT_GLOBALS,
                                            UnsafeCheckpointError,
                                            load_from_local_safe,
                                            register_safe_checkpoint_types)

# The names under which torch looks the allow-listed globals up, found by
# training a Runner and scanning its checkpoints (see checkpoint_safety).
EXPECTED_NAMES = {
    'mmengine.logging.history_buffer.HistoryBuffer',
    'builtins.getattr',  # restricted to HistoryBuffer's statistics
    'numpy.ndarray',
    'numpy.dtype',
    'numpy._core.multiarray._reconstruct',
    'numpy._core.multiarray.scalar',
    'numpy.core.multiarray._reconstruct',  # numpy 1.x name
    'numpy.core.multiarray.scalar',  # numpy 1.x name
    'numpy.dtypes.Float64DType',
    'numpy.dtypes.Float32DType',
    'numpy.dtypes.Int64DType',
}

ITERS_PER_EPOCH = 2  # 8 samples, batch size 4


def _global_name(entry):
    """The name torch uses for an entry of the allow-list."""
    if isinstance(entry, tuple):
        return entry[1]
    return f'{entry.__module__}.{entry.__qualname__}'


class ToyClassifier(BaseModel):
    """Linear layer + batch norm, so that the state has buffers too."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)
        self.bn = nn.BatchNorm1d(2)

    def forward(self, inputs, labels, mode='tensor'):
        logits = self.bn(self.fc(inputs))
        if mode == 'loss':
            return dict(loss=nn.functional.cross_entropy(logits, labels))
        if mode == 'predict':
            return list(zip(logits.argmax(dim=1), labels))
        return logits


class ToySet(Dataset):

    def __len__(self):
        return 8

    def __getitem__(self, idx):
        gen = torch.Generator().manual_seed(idx)
        return dict(inputs=torch.randn(4, generator=gen), labels=idx % 2)


class ToyAccuracy(BaseMetric):
    """Returns numpy scalars, as many toolbox metrics do."""

    def process(self, data_batch, data_samples):
        for pred, label in data_samples:
            self.results.append(float(pred == label))

    def compute_metrics(self, results):
        return dict(
            acc=np.float32(np.mean(results)), num=np.int64(len(results)))


class RecordResumeHook(Hook):
    """Records the state right after ``load_or_resume``."""

    def __init__(self):
        self.record = None

    def before_train(self, runner):
        optimizer = runner.optim_wrapper.optimizer
        self.record = dict(
            epoch=runner.epoch,
            iter=runner.iter,
            loss=runner.message_hub.get_scalar('train/loss').data[0].copy(),
            best_score=runner.message_hub.get_info('best_score'),
            lr=optimizer.param_groups[0]['lr'],
            momentum={
                id_: state['momentum_buffer'].clone()
                for id_, state in enumerate(optimizer.state.values())
            },
            weights={
                k: v.clone()
                for k, v in runner.model.state_dict().items()
            })


def _make_runner(work_dir, name, max_epochs, resume=False, hooks=None):
    loader = dict(
        dataset=ToySet(),
        batch_size=4,
        collate_fn=dict(type='default_collate'))
    return Runner(
        model=ToyClassifier(),
        work_dir=str(work_dir),
        experiment_name=name,
        train_dataloader=dict(
            loader, sampler=dict(type='DefaultSampler', shuffle=True)),
        val_dataloader=dict(
            loader, sampler=dict(type='DefaultSampler', shuffle=False)),
        val_evaluator=dict(type=ToyAccuracy),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs, val_interval=1),
        val_cfg=dict(),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9)),
        param_scheduler=dict(type='MultiStepLR', milestones=[1]),
        default_hooks=dict(
            checkpoint=dict(
                type='CheckpointHook',
                interval=1,
                save_best='acc',
                rule='greater'),
            logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=hooks,
        resume=resume,
        randomness=dict(seed=0))


def test_runner_resumes_with_weights_only(tmp_path, monkeypatch):
    # torch.load is left at weights_only=True: record every call
    monkeypatch.delenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', raising=False)
    torch_load = torch.load
    calls = []

    def spy_load(*args, **kwargs):
        calls.append(kwargs.get('weights_only'))
        return torch_load(*args, **kwargs)

    monkeypatch.setattr(torch, 'load', spy_load)

    first = _make_runner(tmp_path, f'{tmp_path.name}_first', max_epochs=2)
    first.train()
    epoch_files = sorted(p.name for p in tmp_path.glob('epoch_*.pth'))
    assert epoch_files == ['epoch_1.pth', 'epoch_2.pth']
    # the files really hold what the allow-list is for
    unsafe = torch.serialization.get_unsafe_globals_in_checkpoint
    ckpt_path = str(tmp_path / 'epoch_2.pth')
    assert 'mmengine.logging.history_buffer.HistoryBuffer' not in unsafe(
        ckpt_path)
    ckpt = CheckpointLoader.load_checkpoint(ckpt_path, map_location='cpu')
    assert isinstance(ckpt['message_hub']['log_scalars']['train/loss'],
                      HistoryBuffer)

    hook = RecordResumeHook()
    second = _make_runner(
        tmp_path,
        f'{tmp_path.name}_second',
        max_epochs=3,
        resume=True,
        hooks=[hook])
    second.train()

    record = hook.record
    # continued after the last checkpoint (epoch 2), not from scratch
    assert record['epoch'] == 2
    assert record['iter'] == 2 * ITERS_PER_EPOCH
    assert second.epoch == 3
    assert second.iter == 3 * ITERS_PER_EPOCH
    # message hub: the loss history and the best score came back
    first_loss = first.message_hub.get_scalar('train/loss').data[0]
    assert first_loss.shape == (2 * ITERS_PER_EPOCH, )
    np.testing.assert_array_equal(record['loss'], first_loss)
    best = ckpt['message_hub']['runtime_info']['best_score']
    assert isinstance(best, np.float32)
    assert record['best_score'] == best
    # optimizer (momentum buffers) and scheduler (lr after the milestone)
    first_optimizer = first.optim_wrapper.optimizer
    first_momentum = [
        s['momentum_buffer'] for s in first_optimizer.state.values()
    ]
    assert len(record['momentum']) == len(first_momentum) == 4
    for i, buffer in enumerate(first_momentum):
        assert buffer.abs().sum() > 0
        assert torch.equal(record['momentum'][i], buffer)
    assert record['lr'] == pytest.approx(0.01)
    for key, value in first.model.state_dict().items():
        assert torch.equal(record['weights'][key], value), key

    assert calls and all(c is True for c in calls), calls


def _create_marker(path):
    """What a malicious checkpoint would run on load."""
    Path(path).write_text('code ran')


class Payload:

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (_create_marker, (self.path, ))


@pytest.fixture
def malicious_ckpt(tmp_path):
    marker = tmp_path / 'marker.txt'
    path = tmp_path / 'malicious.pth'
    torch.save(
        dict(
            state_dict=dict(weight=torch.zeros(2)), meta=Payload(str(marker))),
        path)
    return path, marker


@pytest.mark.parametrize('entry', ['load_checkpoint', 'CheckpointLoader'])
def test_arbitrary_object_is_refused(malicious_ckpt, entry):
    path, marker = malicious_ckpt
    global_name = f'{_create_marker.__module__}._create_marker'
    with pytest.raises(UnsafeCheckpointError) as info:
        if entry == 'load_checkpoint':
            load_checkpoint(nn.Linear(2, 2), str(path), map_location='cpu')
        else:
            CheckpointLoader.load_checkpoint(str(path), map_location='cpu')
    assert not marker.exists()
    message = str(info.value)
    assert str(path) in message
    assert global_name in message
    assert 'torch.serialization.add_safe_globals' in message
    assert 'verify' in message
    assert info.value.unsafe_globals == [global_name]
    assert info.value.filename == str(path)
    # callers that catch torch's own error type keep working
    assert isinstance(info.value, pickle.UnpicklingError)
    # and it survives a trip to another process
    assert str(pickle.loads(pickle.dumps(info.value))) == message


def test_payload_would_run_without_weights_only(malicious_ckpt):
    # control for the test above: the payload is live, only weights_only
    # stops it (our own file, loaded unsafely on purpose)
    path, marker = malicious_ckpt
    torch.load(path, weights_only=False)
    assert marker.read_text() == 'code ran'


class GetattrPayload:

    def __init__(self, obj, name):
        self.obj = obj
        self.name = name

    def __reduce__(self):
        return (getattr, (self.obj, self.name))


@pytest.mark.parametrize(
    'obj, name',
    [
        # not one of the four statistics
        (HistoryBuffer, '__init__'),
        # another allow-listed class
        (np.ndarray, 'tofile'),
    ])
def test_getattr_is_restricted_to_history_buffer(tmp_path, obj, name):
    path = tmp_path / 'getattr.pth'
    torch.save(dict(meta=GetattrPayload(obj, name)), path)
    with pytest.raises(UnsafeCheckpointError) as info:
        CheckpointLoader.load_checkpoint(str(path))
    message = str(info.value)
    assert str(path) in message
    assert 'builtins.getattr is only allow-listed' in message
    assert repr(name) in message


def test_history_buffer_statistics_round_trip(tmp_path):
    buffer = HistoryBuffer()
    for value in (1., 2., 4.):
        buffer.update(value)
    path = tmp_path / 'buffer.pth'
    torch.save(dict(buffer=buffer, eta=np.float64(3.5)), path)
    loaded = CheckpointLoader.load_checkpoint(str(path))
    assert loaded['buffer'].mean() == pytest.approx(7 / 3)
    assert loaded['buffer'].statistics('max') == 4.
    assert loaded['eta'] == np.float64(3.5)


def test_numpy1_names_load(tmp_path):
    # a checkpoint written with numpy 1.x names its helpers
    # numpy.core.multiarray.*; emulate one in torch's legacy format, where
    # the pickle is stored as is
    path = tmp_path / 'numpy1.pth'
    torch.save(
        dict(history=np.arange(3.), eta=np.float64(1.5)),
        path,
        _use_new_zipfile_serialization=False)
    data = path.read_bytes()
    assert b'numpy._core.multiarray' in data
    path.write_bytes(
        data.replace(b'numpy._core.multiarray', b'numpy.core.multiarray'))
    loaded = CheckpointLoader.load_checkpoint(str(path))
    np.testing.assert_array_equal(loaded['history'], [0., 1., 2.])
    assert loaded['eta'] == np.float64(1.5)


def test_missing_file(tmp_path):
    path = str(tmp_path / 'missing.pth')
    # the local loader
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        load_from_local_safe(path)
    # through mmengine's entry point
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        load_checkpoint(nn.Linear(2, 2), path)


def test_loader_is_registered_idempotently():
    before = torch.serialization.get_safe_globals()
    register_safe_checkpoint_types()
    register_safe_checkpoint_types()
    after = torch.serialization.get_safe_globals()
    assert len(after) == len(before)
    assert set(after) == set(before)
    assert CheckpointLoader._get_checkpoint_loader(
        'a/b.pth') is load_from_local_safe
    # the other schemes are untouched
    assert CheckpointLoader._get_checkpoint_loader(
        'https://x/b.pth').__name__ == 'load_from_http'


def test_allow_list_is_exact(tmp_path):
    assert {_global_name(e) for e in SAFE_CHECKPOINT_GLOBALS} == \
        EXPECTED_NAMES
    assert len(SAFE_CHECKPOINT_GLOBALS) == len(EXPECTED_NAMES)
    # in a fresh interpreter: without svd_mm a Runner checkpoint is refused,
    # and svd_mm's registration adds exactly its list (torch itself
    # allow-lists some classes at import, e.g. for DTensor)
    code = textwrap.dedent("""
        import builtins, json, pickle
        import numpy as np
        import torch
        from mmengine.logging import HistoryBuffer
        buffer = HistoryBuffer()
        buffer.update(1.0)
        torch.save(dict(buffer=buffer), 'ckpt.pth')
        try:
            torch.load('ckpt.pth')
            refused = False
        except pickle.UnpicklingError:
            refused = True
        import svd_mm
        from svd_mm.utils.checkpoint_safety import \\
            register_safe_checkpoint_types
        after_import = torch.serialization.get_safe_globals()
        torch.serialization.clear_safe_globals()
        register_safe_checkpoint_types()
        mine = torch.serialization.get_safe_globals()
        names = sorted(e[1] if isinstance(e, tuple) else
                       f'{e.__module__}.{e.__qualname__}' for e in mine)
        dangerous = [getattr, eval, exec, compile, open, __import__,
                     setattr, delattr, globals, vars, np.load]
        print(json.dumps(dict(
            refused=refused,
            names=names,
            count=len(mine),
            subset=set(mine) <= set(after_import),
            dangerous=[str(f) for f in dangerous
                       if f in set(after_import) | set(mine)],
            loads=bool(torch.load('ckpt.pth')['buffer'].current() == 1.0))))
    """)
    out = subprocess.run([sys.executable, '-c', code],
                         capture_output=True,
                         text=True,
                         cwd=str(tmp_path),
                         timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result['refused'] is True
    assert result['names'] == sorted(EXPECTED_NAMES)
    assert result['count'] == len(EXPECTED_NAMES)
    assert result['subset'] is True
    assert result['dangerous'] == []
    assert result['loads'] is True


def test_mmcv1_release_checkpoints_need_only_listed_globals(tmp_path):
    """The released SVD-Net (mmcls 0.x) and MP3D (mmdet 2.x) files, laid
    out as mmcv 1.x saves them: ``meta`` of strings (the config text, env
    info, versions, time), a tuple of class names, ints, the fp16 loss
    scaler's floats, ``hook_msgs``; an evaluation hook's ``best_score`` is a
    numpy float64. Both zip and legacy (torch < 1.6) serialization."""
    from tests.helpers.official_models import (mp3d_release_checkpoint,
                                               svd_release_checkpoint)
    files = {}
    for name, ckpt in (('svd', svd_release_checkpoint(width=8)),
                       ('mp3d', mp3d_release_checkpoint(width=8))):
        plain = tmp_path / f'{name}_plain.pth'
        torch.save(ckpt, plain)
        ckpt['meta']['hook_msgs']['best_score'] = np.float64(0.7307)
        for zipped in (True, False):
            path = tmp_path / f'{name}_best_{"zip" if zipped else "legacy"}'
            torch.save(ckpt, path, _use_new_zipfile_serialization=zipped)
            files[str(path)] = ckpt
        files[str(plain)] = None
    # in a fresh interpreter, without svd_mm: what the files pickle
    code = textwrap.dedent(f"""
        import json, pickle, torch
        out = {{}}
        for path in {sorted(files)!r}:
            try:
                torch.load(path, weights_only=True)
                refused = False
            except pickle.UnpicklingError:
                refused = True
            try:
                unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(
                    path)
            except ValueError:  # legacy format: no scan
                unsafe = None
            out[path] = dict(refused=refused, unsafe=unsafe)
        print(json.dumps(out))
    """)
    proc = subprocess.run([sys.executable, '-c', code],
                          capture_output=True,
                          text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    scans = json.loads(proc.stdout.strip().splitlines()[-1])
    for path, ckpt in files.items():
        if ckpt is None:
            # strings, tuples, ints, floats, tensors: torch's own list
            assert scans[path] == dict(refused=False, unsafe=[]), path
            continue
        assert scans[path]['refused'], path
        if scans[path]['unsafe'] is not None:
            # numpy's scalar and the float64 dtype, nothing else
            assert set(scans[path]['unsafe']) == {
                'numpy._core.multiarray.scalar', 'numpy.dtype'
            }
            assert set(scans[path]['unsafe']) <= EXPECTED_NAMES
        loaded = CheckpointLoader.load_checkpoint(path)
        assert loaded['meta']['hook_msgs']['best_score'] == np.float64(0.7307)
        assert loaded['meta']['CLASSES'] == ckpt['meta']['CLASSES']
        for key, value in ckpt['state_dict'].items():
            assert torch.equal(loaded['state_dict'][key], value), key


def test_mmengine_config_objects_are_refused(tmp_path):
    """A checkpoint that pickles a config object (not its text, as mmcv 1.x
    does) is refused, naming the class."""
    from mmengine.config import ConfigDict
    path = tmp_path / 'config_object.pth'
    torch.save(dict(meta=dict(config=ConfigDict(a=1))), path)
    with pytest.raises(UnsafeCheckpointError, match='ConfigDict'):
        CheckpointLoader.load_checkpoint(str(path))


def test_save_checkpoint_atomic_leaves_dst_alone_on_error(tmp_path):
    from svd_mm.utils.checkpoint_safety import save_checkpoint_atomic
    dst = tmp_path / 'sub' / 'ckpt.pth'
    save_checkpoint_atomic({'a': torch.ones(2)}, str(dst))
    assert torch.equal(torch.load(dst, weights_only=True)['a'], torch.ones(2))

    def refuse(path):
        assert torch.load(path, weights_only=True)['a'].sum() == 6
        raise ValueError('does not load')

    with pytest.raises(ValueError, match='does not load'):
        save_checkpoint_atomic({'a': torch.full((2, ), 3.)}, str(dst),
                               check=refuse)
    # the old file is untouched and no temporary file is left
    assert torch.equal(torch.load(dst, weights_only=True)['a'], torch.ones(2))
    assert sorted(p.name for p in dst.parent.iterdir()) == ['ckpt.pth']
