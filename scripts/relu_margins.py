#!/usr/bin/python3
"""Which ReLU decisions of one DenseNet-121 training step float32 cannot be trusted with.

    /usr/bin/python3 scripts/relu_margins.py SEED [--size 96] [--batch 3] [--top 8] [--only REGEX]

Runs the forward of make_float64_fixtures.py --densenet121 SIZE BATCH --seed SEED (same weights and data) in
float64 and in float32 and, for every BatchNorm2d whose output feeds a ReLU, prints: the smallest |input| of that
ReLU as a fraction of its channel's standard deviation (the margin), where it is (image, channel, row, column),
PyTorch float32's own forward error there (max |y32 − y64| / σ over the tensor) and how many signs PyTorch
float32 got wrong. A margin far below float32's forward error at that depth is a coin toss for every float32
implementation: the gradient of everything upstream then moves by ~1e-3 relative if the sign comes out wrong
(README, "Numerics"). An error analysis, not a timing.
"""
import argparse
import copy
import os
import re
import sys

import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_torchvision_fixtures import deterministic_tensor, state_dict_names  # noqa: E402
from make_float64_fixtures import batch  # noqa: E402


def bn_outputs(model, x, dtype, pattern):
    model = copy.deepcopy(model).to(dtype).train()
    for m in model.modules():
        if isinstance(m, torch.nn.ReLU):
            m.inplace = False  # the hooks must see BN outputs before a ReLU overwrites them
    outputs = {}
    for name, m in model.named_modules():
        if isinstance(m, torch.nn.BatchNorm2d) and (pattern is None or pattern.search(name)):
            m.register_forward_hook(lambda mod, i, o, name=name: outputs.__setitem__(name, o.detach().double().clone()))
    with torch.no_grad():
        model(x.to(dtype))
    return outputs


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('seed', type=int)
    parser.add_argument('--size', type=int, default=96)
    parser.add_argument('--batch', type=int, default=3)
    parser.add_argument('--top', type=int, default=8)
    parser.add_argument('--only', default='')
    args = parser.parse_args()
    torch.set_num_threads(2)
    model = torchvision.models.densenet121(num_classes=4)
    names = state_dict_names(model)
    sd = model.state_dict()
    model.load_state_dict({n: torch.from_numpy(deterministic_tensor(t + 1000 * args.seed, n, list(sd[n].shape)))
                           for t, n in enumerate(names)}, strict=False)
    x, _ = batch(args.size, args.batch, 4, 3 + args.seed)
    pattern = re.compile(args.only) if args.only else None
    y64 = bn_outputs(model, x, torch.float64, pattern)
    y32 = bn_outputs(model, x, torch.float32, pattern)
    rows = []
    for name, y in y64.items():
        c = y.shape[1]
        sigma = y.transpose(0, 1).reshape(c, -1).std(dim=1).view(1, c, 1, 1)
        margin = y.abs() / sigma
        where = (margin == margin.min()).nonzero()[0].tolist()
        error = ((y32[name] - y) / sigma).abs().max().item()
        flips = ((y > 0) != (y32[name] > 0)).sum().item()
        rows.append((margin.min().item(), name, where, error, flips))
    rows.sort()
    print('| BN before a ReLU | margin (σ) | at (n, c, h, w) | PyTorch f32 forward error (σ) | PyTorch f32 wrong signs |')
    print('|---|---:|---|---:|---:|')
    for margin, name, where, error, flips in rows[:args.top]:
        print('| %s | %.1e | %s | %.1e | %d |' % (name, margin, tuple(where), error, flips))


if __name__ == '__main__':
    main()
