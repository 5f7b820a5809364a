"""The training loop on a tiny generated set: the loss falls, checkpoints load, resume works."""
import os

import numpy as np
import pytest
import torch

from hydranet_ros.data import classes
from hydranet_ros.data.sample import Sample
from hydranet_ros.data.scene_store import StreetSceneDataset
from hydranet_ros.data.tensor_dataset import TensorDataset
from hydranet_ros.data.transforms import training_transform
from hydranet_ros.model import HydraNetConfig, build_hydranet, load_hydranet
from hydranet_ros.training.task_weighting import build_task_weighting
from hydranet_ros.training.trainer import Trainer, TrainSettings

HEIGHT, WIDTH = 64, 96


@pytest.fixture(scope='module')
def scenes():
    return StreetSceneDataset(8, seed=11, height=HEIGHT, width=WIDTH)


@pytest.fixture(autouse=True)
def few_threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(threads)


def _config():
    return HydraNetConfig(num_classes=6, class_names=classes.KITTI6_CLASS_NAMES,
                          class_colors=classes.KITTI6_CLASS_COLORS, max_depth_m=80.0)


def _trainer(scenes, out_dir, epochs=2, batch_size=4, seed=0, val=None, **settings):
    torch.manual_seed(seed)
    model = build_hydranet(_config())
    with torch.no_grad():
        model.heads['depth'].out.bias.fill_(10.0)
    train_set = TensorDataset(scenes, training_transform(color_jitter=0.1), seed=seed)
    options = dict(epochs=epochs, batch_size=batch_size, encoder_lr=2e-3, decoder_lr=4e-3,
                   warmup_steps=0, schedule='constant', depth_loss='rel_l1',
                   checkpoint_every_steps=0, log_every_steps=1, seed=seed)
    options.update(settings)
    return Trainer(model, build_task_weighting('fixed'), train_set, val,
                   TrainSettings(**options), str(out_dir))


def _fixed_batch(scenes):
    items = [TensorDataset(scenes)[i] for i in range(4)]
    return {key: torch.stack([item[key] for item in items]) for key in items[0]}


def _loss_on(trainer, batch):
    from hydranet_ros.training.losses import task_losses
    trainer.model.train()
    with torch.no_grad():
        losses = task_losses(trainer.model(batch['image']), batch, 'rel_l1', 0.0, 80.0)
    return float(trainer.weighting(losses))


def test_a_few_steps_lower_the_loss(scenes, tmp_path):
    trainer = _trainer(scenes, tmp_path)
    batch = _fixed_batch(scenes)
    before = _loss_on(trainer, batch)
    for _ in range(8):
        trainer.train_step(batch)
    after = _loss_on(trainer, batch)
    assert after < 0.85 * before, (before, after)


def test_fit_writes_loadable_checkpoints_logs_and_plots(scenes, tmp_path):
    val = [scenes[i] for i in range(2)]
    trainer = _trainer(scenes, tmp_path, epochs=1, val=val)
    reason = trainer.fit()
    assert reason == 'epochs done'
    for name in ('best.pt', 'last.pt', 'epochs.csv', 'steps.csv', 'history.json',
                 'training.png'):
        assert os.path.getsize(tmp_path / name) > 0, name
    model = load_hydranet(tmp_path / 'best.pt')
    assert model.config.class_names == classes.KITTI6_CLASS_NAMES
    assert model.config.max_depth_m == 80.0
    training = model.checkpoint_extra['training']
    assert training['epoch'] == 1 and training['global_step'] == 2
    row = trainer.history.epochs[0]
    assert 0.0 <= row['val_miou'] <= 1.0 and row['val_abs_rel'] > 0.0
    assert np.isfinite(row['loss_segm']) and np.isfinite(row['loss_depth'])


def test_resume_continues_where_it_stopped(scenes, tmp_path):
    # Reference: 2 epochs of 2 steps without interruption.
    reference = _trainer(scenes, tmp_path / 'reference', epochs=2)
    reference.fit()

    # Interrupted after 3 steps (mid-epoch 2), then resumed by a fresh trainer.
    first = _trainer(scenes, tmp_path / 'resumed', epochs=2, max_steps=3)
    assert first.fit() == 'step limit of 3 steps'
    saved_lr = first.optimizer.param_groups[0]['lr']

    resumed = _trainer(scenes, tmp_path / 'resumed', epochs=2)
    resumed.resume()
    assert (resumed.epoch, resumed.step_in_epoch, resumed.global_step) == (1, 1, 3)
    assert resumed.optimizer.param_groups[0]['lr'] == saved_lr
    exp_avg = [state['exp_avg'] for state in resumed.optimizer.state.values()]
    assert exp_avg and all(torch.equal(a, b['exp_avg']) for a, b in
                           zip(exp_avg, first.optimizer.state.values()))
    resumed.fit()
    assert resumed.global_step == reference.global_step == 4
    assert resumed.epoch == 2
    # Same data order and augmentation after resuming: the weights match the uninterrupted run.
    for (name, value), other in zip(resumed.model.state_dict().items(),
                                    reference.model.state_dict().values()):
        if value.is_floating_point():
            assert torch.allclose(value, other, rtol=1e-3, atol=1e-4), name


def test_asymmetric_batches_train_only_the_annotated_task(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    depth_only = [Sample(image, np.full((HEIGHT, WIDTH), 5.0, np.float32), None)] * 4
    trainer = _trainer(depth_only, tmp_path, epochs=1)
    segm_before = {k: v.clone() for k, v in trainer.model.heads['segm'].state_dict().items()}
    values = trainer.train_step(_stack(TensorDataset(depth_only), 4))
    assert np.isnan(values['loss_segm']) and np.isfinite(values['loss_depth'])
    # The segmentation head got no gradient, so the optimiser left it untouched.
    for key, value in trainer.model.heads['segm'].state_dict().items():
        assert torch.equal(value, segm_before[key]), key
    assert not torch.equal(trainer.model.heads['depth'].out.bias, torch.full((1,), 10.0))


def _stack(dataset, count):
    items = [dataset[i] for i in range(count)]
    return {key: torch.stack([item[key] for item in items]) for key in items[0]}
