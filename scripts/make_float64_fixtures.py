#!/usr/bin/python3
"""Float64 references for the numerics tests, with PyTorch's own float32 results and errors beside them.

Run from the repository root with Debian's PyTorch (CI never needs it; the outputs are committed):

    /usr/bin/python3 scripts/make_float64_fixtures.py                 # writes test/fixtures/float64/
    /usr/bin/python3 scripts/make_float64_fixtures.py --densenet121 SIZE BATCH OUT_DIR
                                                                      # one DenseNet-121 reference, anywhere
                                                                      # (scripts/numerics-table.ts uses it)
    ... --densenet121 SIZE BATCH OUT_DIR --seed S                     # other weights and data, weights written
                                                                      # too (scripts/float64-sweep.ts reads them)
    ... --small SIZE BATCH OUT_DIR --seed S                           # one seeded small-DenseNet fixture

The exact result of a training step is its float64 run: the same weights and batch (float32 values, exactly
representable in float64), every op in float64. PyTorch's float32 run of the same step is off from it by
PyTorch's own float32 error; the parity tests hold tfjs to a multiple of that error, measure by measure.

Fixtures (test/fixtures/float64/<name>/): the small DenseNet of make_torchvision_fixtures.py (growth 8, blocks
(2, 3), 16 init features, bn_size 2, 5 classes, BN parameters and running statistics perturbed) at
  small40    40², batch 3   (1,200 values per channel at the stem BN)
  stem128   128², batch 3   (12,288 values per channel at the stem BN)
each with
  weights.safetensors     the float32 state_dict (PyTorch names and layouts)
  reference.safetensors   input_nchw, labels, and the float64 results rounded once to float32 (that rounding,
                          ~6e-8 relative, is far below every error measured): eval_logits, train_logits, loss,
                          grad.<param>, running_after.<bn>.running_mean|running_var
  config.json             architecture, sizes, and `torch_float32_errors`: PyTorch float32's error in each
                          measure (definitions in `measures` below, mirrored by test/helpers/float64.ts)
"""

import argparse
import re
import json
import math
import os
import sys

import torch
import torchvision
from torchvision.models.densenet import DenseNet

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_torchvision_fixtures import (deterministic_tensor, perturbed_densenet, spec_list,  # noqa: E402
                                       state_dict_names, versions, write_json, write_safetensors)
# Eval forward, then one training forward + backward from the same original state, in the model's dtype.
from make_torchvision_fixtures import run_reference as run_step  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'float64')

torch.set_num_threads(2)

SMALL_ARCH = dict(growth_rate=8, block_config=(2, 3), num_init_features=16, bn_size=2, drop_rate=0, num_classes=5)
CONFIGS = {'small40': (40, 3), 'stem128': (128, 3)}


def max_rel(a, b):
    """max |a − b| / max |b|."""
    return ((a.double() - b.double()).abs().max() / b.double().abs().max().clamp_min(1e-30)).item()


def measures(result, exact):
    """PyTorch float32's error in each measure; test/helpers/float64.ts computes the same for tfjs."""
    norms = {n: exact['grads'][n].double().norm().item() for n in exact['grads']}
    largest = max(norms.values())
    diff2 = sum(((result['grads'][n].double() - exact['grads'][n].double()) ** 2).sum().item() for n in norms)
    worst_name, worst = '', 0.0
    for n in norms:
        err = (result['grads'][n].double() - exact['grads'][n].double()).norm().item() / max(norms[n], 1e-2 * largest)
        if err > worst:
            worst_name, worst = n, err
    return {
        'eval_logits': max_rel(result['eval_logits'], exact['eval_logits']),
        'train_logits': max_rel(result['train_logits'], exact['train_logits']),
        'loss': abs(result['loss'].double().item() - exact['loss'].double().item()) / abs(exact['loss'].double().item()),
        'grad_all': math.sqrt(diff2) / math.sqrt(sum(v * v for v in norms.values())),
        'grad_worst': worst,
        'grad_worst_name': worst_name,
        'running': max(max_rel(result['running'][n], exact['running'][n]) for n in exact['running']),
    }


def float32_and_float64(model, x, labels):
    """(float32 result, float64 result) of the same step; the model is left in float32."""
    model.float()
    f32 = run_step(model, x.float(), labels)
    model.double()
    f64 = run_step(model, x.double(), labels)
    model.float()
    return f32, f64


def reference_tensors(x, labels, f64):
    tensors = {'input_nchw': x, 'labels': labels.to(torch.float32), 'eval_logits': f64['eval_logits'],
               'train_logits': f64['train_logits'], 'loss': f64['loss']}
    for name, grad in f64['grads'].items():
        tensors['grad.' + name] = grad
    for name, value in f64['running'].items():
        tensors['running_after.' + name] = value
    return {k: v.to(torch.float32) for k, v in tensors.items()}


def small_model(seed=0):
    """The small DenseNet; seed s > 0 draws its weights (torch.manual_seed) and BN perturbation from 100·s on."""
    return perturbed_densenet(SMALL_ARCH, seed)


def batch(size, n, classes, seed):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, size, size, generator=generator)
    labels = torch.randint(0, classes, (n,), generator=generator)
    return x, labels


def make_small(name, size, n, seed=0, out=None):
    model = small_model(seed)
    x, labels = batch(size, n, SMALL_ARCH['num_classes'], 2 + 100 * seed)
    weights = {k: v for k, v in model.state_dict().items() if not k.endswith('num_batches_tracked')}
    f32, f64 = float32_and_float64(model, x, labels)
    errors = measures(f32, f64)
    out = out or os.path.join(ROOT, name)
    meta = {'generator': 'scripts/make_float64_fixtures.py', 'torch': torch.__version__}
    write_safetensors(os.path.join(out, 'weights.safetensors'), weights, meta)
    write_safetensors(os.path.join(out, 'reference.safetensors'), reference_tensors(x, labels, f64), meta)
    write_json(os.path.join(out, 'config.json'), {
        'architecture': dict(SMALL_ARCH, block_config=list(SMALL_ARCH['block_config'])),
        'image_size': size,
        'batch': n,
        'input_layout': 'NCHW',
        'reference': 'float64 (rounded to float32 once)',
        'loss': 'mean cross-entropy of train_logits',
        'bn_perturbation': 'as test/fixtures/torchvision/small (make_torchvision_fixtures.py)',
        'seeds': {'init': 100 * seed, 'bn': 100 * seed + 1, 'data': 2 + 100 * seed} if seed else {'init': 0, 'bn': 1, 'data': 2},
        'torch_float32_errors': errors,
        'state_dict': spec_list(model),
        'versions': versions(),
    })
    print('%s: %s' % (name, json.dumps(errors)))


def make_densenet121(size, n, out, seed=0, keep_grads=None, weights_file=True):
    """DenseNet-121 (4 classes) with the deterministic weights of make_torchvision_fixtures.py.

    seed 0: the formula's own weights and data seed 3 (what scripts/numerics-table.ts rebuilds without a weights
    file); seed s > 0 shifts every tensor index of the formula by 1000·s and the data seed to 3 + s, and writes
    weights.safetensors beside the reference (test/helpers/float64.ts then loads that file)."""
    model = torchvision.models.densenet121(num_classes=4)
    names = state_dict_names(model)
    sd = model.state_dict()
    generated = {name: torch.from_numpy(deterministic_tensor(t + 1000 * seed, name, list(sd[name].shape)))
                 for t, name in enumerate(names)}
    model.load_state_dict(generated, strict=False)
    x, labels = batch(size, n, 4, 3 + seed)
    f32, f64 = float32_and_float64(model, x, labels)
    if keep_grads:
        kept = re.compile(keep_grads)
        for result in (f32, f64):
            result['grads'] = {k: v for k, v in result['grads'].items() if kept.search(k)}
    errors = measures(f32, f64)
    os.makedirs(out, exist_ok=True)
    if seed and weights_file:
        write_safetensors(os.path.join(out, 'weights.safetensors'), generated)
    write_safetensors(os.path.join(out, 'reference.safetensors'), reference_tensors(x, labels, f64))
    write_json(os.path.join(out, 'config.json'), {
        'architecture': {'growth_rate': 32, 'block_config': [6, 12, 24, 16], 'num_init_features': 64,
                         'bn_size': 4, 'drop_rate': 0, 'num_classes': 4},
        'image_size': size, 'batch': n, 'seed': seed, 'reference': 'float64 (rounded to float32 once)',
        'torch_float32_errors': errors, 'state_dict': spec_list(model), 'versions': versions(),
        **({'grads_kept': keep_grads} if keep_grads else {}),
    })
    print(json.dumps(errors))


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--densenet121', nargs=3, metavar=('SIZE', 'BATCH', 'OUT_DIR'))
    parser.add_argument('--small', nargs=3, metavar=('SIZE', 'BATCH', 'OUT_DIR'), help='one small-DenseNet fixture, anywhere')
    parser.add_argument('--seed', type=int, default=0, help='weight and data seed of --densenet121 / --small (0: the defaults)')
    parser.add_argument('--keep-grads', metavar='REGEX', help='--densenet121: keep only the gradients whose names match (e.g. "norm|classifier")')
    parser.add_argument('--no-weights-file', action='store_true', help='--densenet121 with --seed: do not write weights.safetensors (readers rebuild them)')
    args = parser.parse_args()
    if args.densenet121:
        make_densenet121(int(args.densenet121[0]), int(args.densenet121[1]), args.densenet121[2], args.seed,
                         args.keep_grads, not args.no_weights_file)
    elif args.small:
        make_small(os.path.basename(args.small[2]), int(args.small[0]), int(args.small[1]), args.seed, args.small[2])
    else:
        for config, (size, n) in CONFIGS.items():
            make_small(config, size, n)
