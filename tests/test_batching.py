"""genlab.batching: a function mapped over tensors in batches gives what one call gives."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from genlab.batching import eval_mode, map_batches, module_device
from genlab.errors import ConfigError


def test_batches_join_to_the_single_call_for_every_batch_size_and_move_to_the_cpu():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3)).double()
    x = torch.randn(23, 5, dtype=torch.float64)
    whole = net(x).detach()
    calls = []
    for batch_size in (1, 4, 23, 100):
        out = map_batches(lambda xb: calls.append(len(xb)) or net(xb), x, batch_size=batch_size)
        torch.testing.assert_close(out, whole, rtol=0, atol=1e-12)
        assert not out.requires_grad and out.device.type == "cpu"
    assert calls[:6] == [1] * 6 and calls[-2:] == [23, 23]  # sizes 1, ..., then 23 once, 23 once (under 100)


def test_several_tensors_are_sliced_together_and_grad_can_be_kept():
    x, y = torch.arange(10.0), torch.arange(10.0) * 10
    assert torch.equal(map_batches(lambda a, b: a + b, x, y, batch_size=3), x + y)
    w = torch.ones(1, requires_grad=True)
    out = map_batches(lambda a: a * w, x, batch_size=4, grad=True, to_cpu=False)
    out.sum().backward()
    assert float(w.grad) == float(x.sum())
    assert map_batches(lambda a: a[:, None] * 2, torch.empty(0), batch_size=4).shape == (0, 1)  # shape kept when empty


def test_bad_arguments_are_one_line_errors():
    with pytest.raises(ConfigError, match="batch_size must be >= 1"):
        map_batches(lambda a: a, torch.zeros(2), batch_size=0)
    with pytest.raises(ConfigError, match="differ in length"):
        map_batches(lambda a, b: a, torch.zeros(2), torch.zeros(3), batch_size=2)


def test_eval_mode_restores_the_previous_mode_and_module_device():
    net = nn.Dropout().train()
    with eval_mode(net):
        assert not net.training
    assert net.training and module_device(net) == torch.device("cpu")
    with pytest.raises(RuntimeError), eval_mode(net):
        raise RuntimeError("inside")
    assert net.training
