"""Shared fixtures: where the configs shipped inside the OpenMMLab wheels live."""
import os
from pathlib import Path

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


def folder_loader(data_root, pipeline) -> dict:
    """A dataloader config over an mmpretrain CustomDataset of class folders, for tiny runs."""
    return dict(batch_size=2, num_workers=0, persistent_workers=False,
                sampler=dict(type='DefaultSampler', shuffle=False),
                dataset=dict(type='CustomDataset', data_root=str(data_root),
                             pipeline=[dict(type='LoadImageFromFile'), *pipeline,
                                       dict(type='PackInputs')]))
