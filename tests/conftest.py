"""Shared fixtures: where the configs shipped inside the OpenMMLab wheels live, and the scripts
of tools/ loaded as modules."""
import importlib.util
import os
from pathlib import Path
from types import ModuleType

import pytest

os.environ.setdefault('OMP_NUM_THREADS', '2')
REPO = Path(__file__).resolve().parents[1]


def _mim_configs(package: str) -> Path:
    module = __import__(package)
    return Path(module.__file__).parent / '.mim' / 'configs'


@pytest.fixture(scope='session')
def mmpretrain_configs() -> Path:
    return _mim_configs('mmpretrain')


@pytest.fixture(scope='session')
def mmyolo_configs() -> Path:
    return _mim_configs('mmyolo')


@pytest.fixture(scope='session')
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope='session')
def load_tool():
    """``load_tool('train_demo')`` -> the module of ``tools/train_demo.py`` (tools/ is not a
    package, so its scripts are loaded by path)."""
    def load(name: str) -> ModuleType:
        spec = importlib.util.spec_from_file_location(name, REPO / 'tools' / f'{name}.py')
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    return load


def folder_loader(data_root, pipeline) -> dict:
    """A dataloader config over an mmpretrain CustomDataset of class folders, for tiny runs."""
    return dict(batch_size=2, num_workers=0, persistent_workers=False,
                sampler=dict(type='DefaultSampler', shuffle=False),
                dataset=dict(type='CustomDataset', data_root=str(data_root),
                             pipeline=[dict(type='LoadImageFromFile'), *pipeline,
                                       dict(type='PackInputs')]))


@pytest.fixture(autouse=True)
def _log_handlers_on_an_open_stream():
    """mmengine's logger keeps the stream it found when it was created; when that was the
    capture of an earlier test (now closed), every later log line would fail with 'I/O
    operation on closed file' and a traceback on stderr. Point such handlers at the real
    stderr."""
    import logging
    import sys

    from mmengine.logging import MMLogger
    loggers = [logging.getLogger()] + [
        logger for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)] + list(MMLogger._instance_dict.values())
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(handler, logging.StreamHandler) and \
                    getattr(handler.stream, 'closed', False):
                handler.stream = sys.__stderr__  # setStream would flush the closed one
    yield
