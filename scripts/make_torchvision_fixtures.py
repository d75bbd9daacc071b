#!/usr/bin/python3
"""Writes the PyTorch reference fixtures in test/fixtures/torchvision/.

Run from the repository root with Debian's PyTorch (only this script needs it; CI never does):

    apt-get update && apt-get install -y python3-torchvision
    /usr/bin/python3 scripts/make_torchvision_fixtures.py

Everything is float32 on the CPU with torch.set_num_threads(2) and fixed seeds, and files are written by
the small safetensors writer below (no safetensors pip package): F32 little-endian, names sorted, header
padded with spaces to 8-byte alignment.

small/  torchvision.models.densenet.DenseNet(growth_rate=8, block_config=(2, 3), num_init_features=16,
        bn_size=2, drop_rate=0, num_classes=5), torch.manual_seed(0) init, then every BatchNorm perturbed
        (weight ~ U(0.5, 1.5), bias ~ N(0, 0.2), running_mean ~ N(0, 0.2), running_var ~ U(0.5, 1.5)),
        batch 3 of 40x40 images.
  weights.safetensors    the state_dict (PyTorch names and layouts, num_batches_tracked excluded)
  reference.safetensors  input_nchw [3,3,40,40], labels [3] (float32), eval_logits [3,5],
                         train_logits [3,5] (train-mode forward from the same original weights and stats),
                         loss [1] (mean cross-entropy of train_logits), grad.<param> for every parameter,
                         running_after.<bn>.running_mean|running_var after that one training forward
  config.json

densenet121/  torchvision.models.densenet121(num_classes=4), batch 2 of 64x64 images. Its weights are
        not stored; they follow this formula (reproduced exactly by test/helpers/deterministic-weights.ts). For the
        tensor with index t in sorted(state_dict names without num_batches_tracked) and element i in
        row-major PyTorch layout, with all arithmetic on 32-bit unsigned integers mod 2^32:

            mix(x)  = lowbias32: x ^= x>>16; x *= 0x7feb352d; x ^= x>>15; x *= 0x846ca68b; x ^= x>>16
            seed    = mix((t + 1) * 0x9E3779B9)
            u       = (mix(seed + i) >> 8) / 2^24            (float64, in [0, 1))

            conv weight [out, in, kh, kw]: (2u - 1) * sqrt(3 / (in * kh * kw))
            linear weight [out, in]:       (2u - 1) * sqrt(3 / in)
            linear bias:                   (2u - 1) * 0.1
            BN weight:    0.5 + u          BN bias:     (2u - 1) * 0.2
            running_mean: (2u - 1) * 0.2   running_var: 0.5 + u

        each computed in float64 in that order, then rounded once to float32. (An integer hash rather
        than frac(sin(x) * 43758.5453): sin is not correctly rounded, so Python and V8 could disagree in
        the last bit.)
  reference.safetensors  input_nchw [2,3,64,64], labels [2], eval_logits, train_logits, loss [1],
                         running_after.<bn>.running_mean|running_var for every BN,
                         grad.<p> for features.conv0.weight, features.denseblock4.denselayer16.conv2.weight,
                         classifier.weight, classifier.bias; gradnorm.<p> [1] (L2 norm) for every
                         parameter; check.<name> = first 16 generated values of four tensors
  config.json   state_dict names and shapes (so the weights can be regenerated without torch) and
                weights_bitsum: per tensor, sum mod 2^32 of the generated float32 bit patterns

Both sets are also computed with memory_efficient=True, and the script asserts the results match, except
that torchvision's checkpointed path updates each dense layer's norm1 running stats twice (it recomputes
norm1 during backward); the fixtures hold the plain path's single update, and the script checks the
double update separately.
"""

import json
import os
import re
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from torchvision.models.densenet import DenseNet

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'torchvision')

torch.set_num_threads(2)
torch.set_default_dtype(torch.float32)


# ---------------------------------------------------------------- safetensors writer


def write_safetensors(path, tensors, metadata=None):
    """F32 only; layout identical to src/weights/safetensors.ts encodeSafetensors."""
    names = sorted(tensors)
    parts = []
    if metadata:
        parts.append(json.dumps('__metadata__') + ':' + json.dumps(metadata, separators=(',', ':')))
    blobs = []
    offset = 0
    for name in names:
        value = tensors[name]
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
        array = np.ascontiguousarray(np.asarray(value), dtype='<f4')
        blob = array.tobytes()
        parts.append('%s:{"dtype":"F32","shape":[%s],"data_offsets":[%d,%d]}' % (
            json.dumps(name), ','.join(str(d) for d in array.shape), offset, offset + len(blob)))
        blobs.append(blob)
        offset += len(blob)
    header = ('{' + ','.join(parts) + '}').encode('utf-8')
    header += b' ' * ((8 - len(header) % 8) % 8)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    temp = path + '.tmp'
    with open(temp, 'wb') as handle:
        handle.write(struct.pack('<Q', len(header)))
        handle.write(header)
        for blob in blobs:
            handle.write(blob)
    os.replace(temp, path)


def write_json(path, value):
    temp = path + '.tmp'
    text = json.dumps(value, indent=2)
    # Short arrays (shapes, [name, shape] pairs) on one line keep the file readable; two passes reach
    # the pairs once their inner shapes are collapsed. No string in these configs contains a comma.
    for _ in range(2):
        text = re.sub(r'\[\s+((?:[^\[\]{}]|\[[^\[\]{}]*\])*?)\s+\]',
                      lambda m: '[' + ', '.join(x.strip() for x in m.group(1).split(',')) + ']', text)
    with open(temp, 'w') as handle:
        handle.write(text + '\n')
    os.replace(temp, path)


# ---------------------------------------------------------------- deterministic weights

MASK = np.uint64(0xFFFFFFFF)


def mix32(x):
    x = np.asarray(x, dtype=np.uint64) & MASK
    x ^= x >> np.uint64(16)
    x = (x * np.uint64(0x7FEB352D)) & MASK
    x ^= x >> np.uint64(15)
    x = (x * np.uint64(0x846CA68B)) & MASK
    x ^= x >> np.uint64(16)
    return x


def deterministic_uniform(t, n):
    seed = mix32((t + 1) * 0x9E3779B9)
    bits = mix32(seed + np.arange(n, dtype=np.uint64))
    return (bits >> np.uint64(8)).astype(np.float64) / 16777216.0


def tensor_kind(name, shape):
    parts = name.split('.')
    leaf, module = parts[-1], (parts[-2] if len(parts) > 1 else '')
    if leaf in ('running_mean', 'running_var'):
        return leaf
    if module.startswith('norm') and leaf in ('weight', 'bias'):
        return 'bn_' + leaf
    if leaf == 'weight' and len(shape) == 4:
        return 'conv'
    if leaf == 'weight' and len(shape) == 2:
        return 'linear_weight'
    if leaf == 'bias' and len(shape) == 1:
        return 'linear_bias'
    raise ValueError('cannot classify %s %s' % (name, shape))


def deterministic_tensor(t, name, shape):
    kind = tensor_kind(name, shape)
    n = int(np.prod(shape)) if len(shape) else 1
    u = deterministic_uniform(t, n)
    if kind == 'conv':
        values = (2 * u - 1) * np.sqrt(3.0 / (shape[1] * shape[2] * shape[3]))
    elif kind == 'linear_weight':
        values = (2 * u - 1) * np.sqrt(3.0 / shape[1])
    elif kind == 'linear_bias':
        values = (2 * u - 1) * 0.1
    elif kind in ('bn_bias', 'running_mean'):
        values = (2 * u - 1) * 0.2
    else:
        values = 0.5 + u
    return values.astype(np.float32).reshape(shape)


def state_dict_names(model):
    return sorted(k for k in model.state_dict() if not k.endswith('num_batches_tracked'))


# ---------------------------------------------------------------- reference computation


def run_reference(model, x, labels):
    """eval forward, then one train forward + backward from the same original state."""
    original = {k: v.clone() for k, v in model.state_dict().items()}
    model.eval()
    with torch.no_grad():
        eval_logits = model(x).clone()
    model.load_state_dict(original)
    model.train()
    model.zero_grad(set_to_none=True)
    train_logits = model(x)
    loss = F.cross_entropy(train_logits, labels)
    loss.backward()
    grads = {name: p.grad.detach().clone() for name, p in model.named_parameters()}
    running = {}
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            running[name + '.running_mean'] = module.running_mean.detach().clone()
            running[name + '.running_var'] = module.running_var.detach().clone()
    model.load_state_dict(original)
    return {
        'eval_logits': eval_logits,
        'train_logits': train_logits.detach().clone(),
        'loss': loss.detach().reshape(1).clone(),
        'grads': grads,
        'running': running,
    }


def assert_same(a, b, what, original_running):
    """Compares the plain run `a` with the memory_efficient run `b`.

    torchvision's memory_efficient path recomputes concat -> norm1 -> relu1 -> conv1 under
    torch.utils.checkpoint during backward, so each dense layer's norm1 running stats are updated twice
    (a known torchvision quirk). The fixtures hold the plain single update; for norm1 we check instead that
    `b` is exactly the second momentum step applied on top of `a`: r2 = (2 - m) * r1 - (1 - m) * r0.
    """
    def check(name, x, y):
        if not torch.allclose(x, y, rtol=1e-4, atol=1e-5):
            raise AssertionError('%s: %s differs with memory_efficient=True (max abs diff %g)'
                                 % (what, name, (x - y).abs().max().item()))
    for key in ('eval_logits', 'train_logits', 'loss'):
        check(key, a[key], b[key])
    assert a['grads'].keys() == b['grads'].keys()
    for name in a['grads']:
        check(name, a['grads'][name], b['grads'][name])
    assert a['running'].keys() == b['running'].keys()
    m = 0.1
    for name in a['running']:
        if re.search(r'\.denselayer\d+\.norm1\.', name):
            check(name + ' (double update)', (2 - m) * a['running'][name] - (1 - m) * original_running[name],
                  b['running'][name])
        else:
            check(name, a['running'][name], b['running'][name])


def versions():
    return {'torch': torch.__version__, 'torchvision': torchvision.__version__, 'numpy': np.__version__,
            'python': sys.version.split()[0]}


def spec_list(model):
    sd = model.state_dict()
    return [[name, list(sd[name].shape)] for name in state_dict_names(model)]


# ---------------------------------------------------------------- small


def perturbed_densenet(arch, seed=0):
    """DenseNet(**arch) from torch.manual_seed(100·seed), every BatchNorm perturbed (generator 100·seed + 1) so
    that no gradient is trivially zero: weight ~ U(0.5, 1.5), bias ~ N(0, 0.2), running_mean ~ N(0, 0.2),
    running_var ~ U(0.5, 1.5). Seed 0 is the committed fixtures' model."""
    torch.manual_seed(100 * seed)
    model = DenseNet(**arch)
    generator = torch.Generator().manual_seed(100 * seed + 1)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                c = module.num_features
                module.weight.copy_(torch.rand(c, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(c, generator=generator) * 0.2)
                module.running_mean.copy_(torch.randn(c, generator=generator) * 0.2)
                module.running_var.copy_(torch.rand(c, generator=generator) + 0.5)
    return model


def make_small():
    arch = dict(growth_rate=8, block_config=(2, 3), num_init_features=16, bn_size=2, drop_rate=0,
                num_classes=5)
    batch, size = 3, 40
    model = perturbed_densenet(arch)
    data_gen = torch.Generator().manual_seed(2)
    x = torch.randn(batch, 3, size, size, generator=data_gen)
    labels = torch.randint(0, arch['num_classes'], (batch,), generator=data_gen)

    weights = {k: v for k, v in model.state_dict().items() if not k.endswith('num_batches_tracked')}
    result = run_reference(model, x, labels)

    efficient = DenseNet(memory_efficient=True, **arch)
    efficient.load_state_dict(model.state_dict())
    assert_same(result, run_reference(efficient, x, labels), 'small', model.state_dict())

    out = os.path.join(ROOT, 'small')
    meta = {'generator': 'scripts/make_torchvision_fixtures.py', 'torch': torch.__version__}
    write_safetensors(os.path.join(out, 'weights.safetensors'), weights, meta)
    write_safetensors(os.path.join(out, 'reference.safetensors'), reference_tensors(x, labels, result), meta)
    write_json(os.path.join(out, 'config.json'), {
        'architecture': dict(arch, block_config=list(arch['block_config'])),
        'image_size': size,
        'batch': batch,
        'input_layout': 'NCHW',
        'loss': 'mean cross-entropy of train_logits',
        'bn_perturbation': 'weight~U(0.5,1.5), bias~N(0,0.2), running_mean~N(0,0.2), running_var~U(0.5,1.5); '
                           'torch.Generator seed 1, per BN in module order: weight, bias, running_mean, running_var',
        'seeds': {'init': 0, 'bn': 1, 'data': 2},
        'state_dict': spec_list(model),
        'versions': versions(),
    })
    print('small: loss %.6f' % result['loss'].item())


def reference_tensors(x, labels, result, grad_names=None):
    tensors = {
        'input_nchw': x,
        'labels': labels.to(torch.float32),
        'eval_logits': result['eval_logits'],
        'train_logits': result['train_logits'],
        'loss': result['loss'],
    }
    for name, grad in result['grads'].items():
        if grad_names is None or name in grad_names:
            tensors['grad.' + name] = grad
    for name, value in result['running'].items():
        tensors['running_after.' + name] = value
    return tensors


# ---------------------------------------------------------------- densenet121

GRAD_NAMES_121 = ['features.conv0.weight', 'features.denseblock4.denselayer16.conv2.weight',
                  'classifier.weight', 'classifier.bias']
CHECK_NAMES_121 = ['features.conv0.weight', 'features.denseblock2.denselayer3.norm1.running_var',
                   'features.transition2.norm.bias', 'classifier.weight']


def make_densenet121():
    num_classes, batch, size = 4, 2, 64
    model = torchvision.models.densenet121(num_classes=num_classes)
    names = state_dict_names(model)
    sd = model.state_dict()
    generated = {name: torch.from_numpy(deterministic_tensor(t, name, list(sd[name].shape)))
                 for t, name in enumerate(names)}
    model.load_state_dict(generated, strict=False)
    for name in names:
        assert torch.equal(model.state_dict()[name], generated[name]), name

    data_gen = torch.Generator().manual_seed(3)
    x = torch.randn(batch, 3, size, size, generator=data_gen)
    labels = torch.randint(0, num_classes, (batch,), generator=data_gen)
    result = run_reference(model, x, labels)

    efficient = torchvision.models.densenet121(num_classes=num_classes, memory_efficient=True)
    efficient.load_state_dict(model.state_dict())
    assert_same(result, run_reference(efficient, x, labels), 'densenet121', model.state_dict())

    tensors = reference_tensors(x, labels, result, grad_names=GRAD_NAMES_121)
    for name, grad in result['grads'].items():
        tensors['gradnorm.' + name] = grad.norm().reshape(1)
    for name in CHECK_NAMES_121:
        tensors['check.' + name] = generated[name].reshape(-1)[:16].clone()

    out = os.path.join(ROOT, 'densenet121')
    meta = {'generator': 'scripts/make_torchvision_fixtures.py', 'torch': torch.__version__}
    write_safetensors(os.path.join(out, 'reference.safetensors'), tensors, meta)
    write_json(os.path.join(out, 'config.json'), {
        'architecture': {'growth_rate': 32, 'block_config': [6, 12, 24, 16], 'num_init_features': 64,
                         'bn_size': 4, 'drop_rate': 0, 'num_classes': num_classes},
        'image_size': size,
        'batch': batch,
        'input_layout': 'NCHW',
        'loss': 'mean cross-entropy of train_logits',
        'weights': 'deterministic formula (see scripts/make_torchvision_fixtures.py, test/helpers/deterministic-weights.ts)',
        'grad_names': GRAD_NAMES_121,
        'check_names': CHECK_NAMES_121,
        # Per tensor, the sum mod 2^32 of the float32 bit patterns of the generated weights: an exact,
        # order-independent fingerprint the TypeScript generator must reproduce.
        'weights_bitsum': {name: int(generated[name].numpy().view(np.uint32).astype(np.uint64).sum() % 2**32)
                           for name in names},
        'seeds': {'data': 3},
        'state_dict': spec_list(model),
        'versions': versions(),
    })
    print('densenet121: loss %.6f, logits %s' % (result['loss'].item(), result['eval_logits'].tolist()))


if __name__ == '__main__':
    make_small()
    make_densenet121()
