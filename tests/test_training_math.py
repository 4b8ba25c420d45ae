"""Arithmetic of training: GAN losses, gradient penalty, image pool, learning-rate policies."""
import argparse
import math
import random

import pytest
import torch
from torch import nn

from conftest import LinearCritic
from models.image_pool import ImagePool
from models.losses import GANLoss, gradient_penalty
from models.schedulers import get_scheduler


def test_lsgan_is_mean_squared_error_to_one_and_zero():
    loss = GANLoss("lsgan")
    prediction = torch.full((2, 1, 3, 3), 0.5)
    assert loss(prediction, True).item() == pytest.approx(0.25)
    assert loss(torch.tensor([0.0, 2.0]), True).item() == pytest.approx(1.0)
    assert loss(torch.tensor([0.0, 2.0]), False).item() == pytest.approx(2.0)


def test_vanilla_is_binary_cross_entropy_on_logits():
    loss = GANLoss("vanilla")
    assert loss(torch.zeros(4), True).item() == pytest.approx(math.log(2))
    assert loss(torch.tensor([3.0]), False).item() == pytest.approx(math.log(1 + math.exp(3.0)))
    assert loss(torch.tensor([3.0]), True).item() == pytest.approx(math.log(1 + math.exp(-3.0)))


def test_nonsaturating_is_softplus_and_equals_vanilla():
    prediction = torch.tensor([[-30.0, -2.0], [0.0, 0.5]]).view(2, 1, 1, 2)
    loss, vanilla = GANLoss("nonsaturating"), GANLoss("vanilla")
    assert torch.allclose(loss(prediction, True), torch.nn.functional.softplus(-prediction).mean())
    assert torch.allclose(loss(prediction, False), torch.nn.functional.softplus(prediction).mean())
    for target in (True, False):
        assert torch.equal(loss(prediction, target), vanilla(prediction, target))


def test_wgangp_is_minus_mean_for_real_and_mean_for_fake():
    loss = GANLoss("wgangp")
    prediction = torch.tensor([1.0, 2.0, 6.0])
    assert loss(prediction, True).item() == pytest.approx(-3.0)
    assert loss(prediction, False).item() == pytest.approx(3.0)


def test_losses_are_computed_in_fp32():
    assert GANLoss("lsgan")(torch.ones(3, dtype=torch.bfloat16), True).dtype == torch.float32


def test_unknown_gan_mode_is_refused():
    with pytest.raises(ValueError):
        GANLoss("hinge")


def test_gradient_penalty_value_and_gradient():
    weight = torch.full((1, 2, 2), 0.25)  # ||w|| = 0.5 per sample
    critic = LinearCritic(weight.clone())
    real, fake = torch.randn(3, 1, 2, 2), torch.randn(3, 1, 2, 2)
    penalty = gradient_penalty(critic, real, fake, weight=10.0)
    assert penalty.item() == pytest.approx(10.0 * (0.5 - 1.0) ** 2, rel=1e-5)
    penalty.backward()
    # d/dw 10 (||w|| - 1)^2 = 20 (||w|| - 1) w / ||w||
    assert torch.allclose(critic.weight.grad, 20 * (0.5 - 1.0) * weight / 0.5, atol=1e-5)


def test_pool_of_size_zero_returns_its_input():
    images = torch.randn(2, 3, 4, 4)
    assert ImagePool(0).query(images) is images


def test_pool_fills_then_swaps_with_probability_one_half():
    random.seed(0)
    pool = ImagePool(3)
    first = torch.arange(3.0).view(3, 1, 1, 1)
    assert torch.equal(pool.query(first), first)
    assert len(pool.images) == 3
    returned_old = 0
    trials = 400
    for value in range(trials):
        new = torch.full((1, 1, 1, 1), 100.0 + value)
        out = pool.query(new)
        assert len(pool.images) == 3
        if out.item() != new.item():
            returned_old += 1
            assert any(img.item() == new.item() for img in pool.images)  # the new image took its place
    assert 0.4 < returned_old / trials < 0.6


def test_pool_returns_previously_generated_images_only():
    random.seed(1)
    pool = ImagePool(2)
    seen = set()
    for value in range(50):
        batch = torch.tensor([[[[float(value)]]], [[[value + 0.5]]]])
        seen.update(batch.flatten().tolist())
        out = pool.query(batch)
        assert out.shape == batch.shape
        assert set(out.flatten().tolist()) <= seen


def test_pool_keeps_bf16_images_in_bf16_and_returns_them_exactly_in_fp32():
    random.seed(0)
    pool = ImagePool(2)
    images = [torch.randn(1, 3, 4, 4).to(torch.bfloat16) for _ in range(6)]
    for image in images:
        out = pool.query(image)
        assert out.dtype == torch.float32 and any(torch.equal(out, seen.float()) for seen in images)
    assert [stored.dtype for stored in pool.images] == [torch.bfloat16] * 2


def schedule(policy, n_epochs=3, n_epochs_decay=3, epoch_count=1, lr_decay_iters=2):
    """(options, optimizer with lr 1, its scheduler) for `policy`."""
    opt = argparse.Namespace(lr_policy=policy, n_epochs=n_epochs, n_epochs_decay=n_epochs_decay,
                             epoch_count=epoch_count, lr_decay_iters=lr_decay_iters)
    optimizer = torch.optim.Adam([nn.Parameter(torch.zeros(1))], lr=1.0)
    return opt, optimizer, get_scheduler(optimizer, opt)


def run_epochs(optimizer, scheduler, count, metric=None):
    """The learning rates of `count` epochs, stepping the scheduler after each."""
    rates = []
    for _ in range(count):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step(metric) if metric is not None else scheduler.step()
    return rates


def learning_rates(policy, metric=None, **options):
    """The learning rates of every epoch of a run, from its --epoch_count to its last epoch."""
    opt, optimizer, scheduler = schedule(policy, **options)
    return run_epochs(optimizer, scheduler, opt.n_epochs + opt.n_epochs_decay + 1 - opt.epoch_count, metric)


def test_linear_policy_keeps_then_decays_linearly():
    assert learning_rates("linear") == pytest.approx([1, 1, 1, 0.75, 0.5, 0.25])


def test_linear_policy_continues_where_a_run_left_off():
    assert learning_rates("linear", epoch_count=5) == pytest.approx([0.5, 0.25])


def test_step_policy_divides_by_ten_every_lr_decay_iters_epochs():
    assert learning_rates("step") == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])


def test_cosine_policy_anneals_once_over_the_whole_run():
    rates = learning_rates("cosine", n_epochs=4, n_epochs_decay=4)
    assert rates[0] == pytest.approx(1.0)
    assert all(a > b for a, b in zip(rates, rates[1:]))  # never re-warms
    assert rates[4] == pytest.approx(0.5)
    assert rates[-1] > 0
    assert learning_rates("cosine", n_epochs=4, n_epochs_decay=4, epoch_count=5) == pytest.approx(rates[4:])


def test_plateau_policy_reduces_when_the_metric_stalls():
    rates = learning_rates("plateau", n_epochs=10, n_epochs_decay=0, metric=1.0)
    assert rates[:7] == [1.0] * 7  # patience 5: the first stalled epochs keep the rate
    assert rates[7] == pytest.approx(0.2)


def resumed(policy, stop_after, tmp_path, **options):
    """A run stopped after `stop_after` epochs, saved (as training states are) and continued with
    `options` instead of its own: (its schedule's first epochs, the optimiser and scheduler resumed)."""
    _, optimizer, scheduler = schedule(policy, epoch_count=3)
    rates = run_epochs(optimizer, scheduler, stop_after)
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, tmp_path / "state.pth")
    saved = torch.load(tmp_path / "state.pth", weights_only=True)
    _, optimizer, scheduler = schedule(policy, **options)
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    return rates, optimizer, scheduler


@pytest.mark.parametrize("policy", ["linear", "step", "cosine"])
def test_a_resumed_run_keeps_the_schedule_of_its_first_epoch(tmp_path, policy):
    # Started at --epoch_count 3 (epochs 3..6), stopped after epoch 4, continued without --epoch_count.
    rates, optimizer, scheduler = resumed(policy, 2, tmp_path)
    assert rates + run_epochs(optimizer, scheduler, 2) == pytest.approx(learning_rates(policy, epoch_count=3))


def test_a_resumed_run_takes_its_new_length(tmp_path):
    # 3 + 3 epochs from epoch 3, stopped after epoch 4 and lengthened to 3 + 5: from epoch 5 on, the
    # rates are those of a run started with the new lengths.
    _, optimizer, scheduler = resumed("linear", 2, tmp_path, n_epochs_decay=5)
    assert run_epochs(optimizer, scheduler, 4) == pytest.approx(
        learning_rates("linear", epoch_count=3, n_epochs_decay=5)[2:])
