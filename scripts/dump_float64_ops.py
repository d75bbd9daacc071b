#!/usr/bin/python3
"""Per-op float64 references of one DenseNet-121 training step, for localising which op departs from float64.

    /usr/bin/python3 scripts/dump_float64_ops.py SIZE BATCH SEED OUT_DIR [--only REGEX]

Runs the step of make_float64_fixtures.py --densenet121 (same weights and data for SEED) in float64 and records,
for every Conv2d and BatchNorm2d, its input x and the gradient dy reaching its output. Then each op alone, from
those values rounded to float32 (teacher forcing: every op gets the same float32 inputs): its float64 result
(output, dx and the parameter gradients, each as a float32 pair hi + lo) and PyTorch float32's own result's
relative L2 error against it. scripts/op-errors.ts runs tfjs's ops on the same inputs. Writes one
safetensors per op and index.json into OUT_DIR (hundreds of MB at 96², batch 3: keep it out of the repository).
"""
import argparse
import copy
import json
import os
import re
import sys

import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_torchvision_fixtures import deterministic_tensor, state_dict_names, write_safetensors  # noqa: E402
from make_float64_fixtures import batch  # noqa: E402

torch.set_num_threads(2)


def rel(a, b):
    return ((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-300)).item()


def split(t):
    hi = t.float()
    return hi, (t - hi.double()).float()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('size', type=int)
    parser.add_argument('batch', type=int)
    parser.add_argument('seed', type=int)
    parser.add_argument('out')
    parser.add_argument('--only', default='')
    args = parser.parse_args()
    model = torchvision.models.densenet121(num_classes=4)
    names = state_dict_names(model)
    sd = model.state_dict()
    model.load_state_dict({name: torch.from_numpy(deterministic_tensor(t + 1000 * args.seed, name, list(sd[name].shape)))
                           for t, name in enumerate(names)}, strict=False)
    for m in model.modules():
        if isinstance(m, torch.nn.ReLU):
            m.inplace = False  # tensor hooks need the module outputs intact; values are the same
    x, labels = batch(args.size, args.batch, 4, 3 + args.seed)
    original = copy.deepcopy(model)
    model.double().train()
    captured = {}

    def hook(name):
        def fn(module, inputs, output):
            entry = captured.setdefault(name, {'module': module})
            entry['x'] = inputs[0].detach().clone()
            output.register_hook(lambda g: entry.__setitem__('dy', g.detach().clone()))
        return fn

    pattern = re.compile(args.only) if args.only else None
    for name, m in model.named_modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.BatchNorm2d)) and (pattern is None or pattern.search(name)):
            m.register_forward_hook(hook(name))
    loss = torch.nn.functional.cross_entropy(model(x.double()), labels)
    loss.backward()

    os.makedirs(args.out, exist_ok=True)
    index = []
    originals = dict(original.named_modules())
    for name, entry in captured.items():
        xr, dyr = entry['x'].float(), entry['dy'].float()
        results = {}
        for dtype in (torch.float64, torch.float32):
            m = copy.deepcopy(originals[name]).to(dtype).train()
            xi = xr.to(dtype).requires_grad_(True)
            y = m(xi)
            y.backward(dyr.to(dtype))
            results[dtype] = {'y': y.detach(), 'dx': xi.grad, 'dw': m.weight.grad}
            if isinstance(m, torch.nn.BatchNorm2d):
                results[dtype]['db'] = m.bias.grad
        exact, f32 = results[torch.float64], results[torch.float32]
        tensors = {'x': xr, 'dy': dyr, 'weight': originals[name].weight.detach().float()}
        if isinstance(originals[name], torch.nn.BatchNorm2d):
            tensors['bias'] = originals[name].bias.detach().float()
        for key, value in exact.items():
            tensors[key + '.hi'], tensors[key + '.lo'] = split(value)
        file = name.replace('.', '_') + '.safetensors'
        write_safetensors(os.path.join(args.out, file), tensors)
        m = originals[name]
        info = {'name': name, 'file': file, 'kind': 'bn' if isinstance(m, torch.nn.BatchNorm2d) else 'conv',
                'torch': {k: rel(f32[k], exact[k]) for k in exact}}
        if info['kind'] == 'conv':
            info.update(kernel=m.kernel_size[0], stride=m.stride[0], padding=m.padding[0])
        index.append(info)
    with open(os.path.join(args.out, 'index.json'), 'w') as f:
        json.dump(index, f, indent=1)
    print('%d ops' % len(index))


if __name__ == '__main__':
    main()
