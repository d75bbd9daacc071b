#!/usr/bin/python3
"""Writes the PyTorch checkpoint fixtures in test/fixtures/pth/ (and, with --densenet201 DIR, a DenseNet-201
sized pair for scripts/pth-load-time.ts).

Run from the repository root with Debian's PyTorch (only this script needs it; CI never does):

    /usr/bin/python3 scripts/make_pth_fixtures.py
    /usr/bin/python3 scripts/make_pth_fixtures.py --densenet201 /tmp/pth-time

Every fixture holds the weights of test/fixtures/torchvision/small/weights.safetensors (the same
perturbed DenseNet(growth_rate=8, block_config=(2, 3), num_init_features=16, bn_size=2, num_classes=5),
rebuilt here by scripts/make_torchvision_fixtures.py's own code and checked bit for bit against that file),
written by torch.save itself:

  zip.pth                   the state_dict, zip format (PyTorch >= 1.6), num_batches_tracked included
  legacy-names.pth          legacy format (_use_new_zipfile_serialization=False) with the old
                            'denselayerN.norm.1.weight' names, like torchvision's published files
  float16.pth               zip, every float tensor .half(); float16.safetensors holds the same values (F16)
  bfloat16-legacy.pth       legacy format, .bfloat16(); bfloat16.safetensors holds the same values (BF16)
  float64.pth               zip, .double() (float32 -> float64 -> float32 is exact: loads as weights.safetensors)
  views.pth                 zip; conv and classifier weights are non-contiguous (transposed twice, so the
                            strides are not row-major) and each BatchNorm's four vectors are slices of one
                            shared storage (storage offsets, one storage for several tensors)
  views-legacy.pth          the same in the legacy format
  nested.pth                zip, {'epoch': 7, 'state_dict': sd, 'optimizer': {...}, 'best_acc1': 0.5}
  nested-model-legacy.pth   legacy, {'model': sd, 'arch': 'densenet'}
  module.pth                torch.save(model): the whole torchvision DenseNet module, zip format
  module-legacy.pth         the same, legacy format (module classes named through persistent ids)
  malicious.pth             zip; its state_dict holds an object whose __reduce__ is
                            os.system('touch pth-sentinel-must-not-exist') (pickled as posix.system)
  malicious-legacy.pth      the same, legacy format
  malicious-eval.pth        zip; builtins.eval of a string that would run os.system (pickled as __builtin__.eval)

Nothing here ever unpickles the malicious files.
"""

import json
import os
import re
import struct
import sys
from collections import OrderedDict

import numpy as np
import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_torchvision_fixtures import perturbed_densenet  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures')
OUT = os.path.join(ROOT, 'pth')
SMALL = dict(growth_rate=8, block_config=(2, 3), num_init_features=16, bn_size=2, drop_rate=0, num_classes=5)
SENTINEL = 'pth-sentinel-must-not-exist'
LEGACY = re.compile(r'^(.*denselayer\d+\.(?:norm|relu|conv))((?:[12])\.(?:weight|bias|running_mean|running_var))$')

torch.set_num_threads(2)


def read_safetensors(path):
    with open(path, 'rb') as handle:
        data = handle.read()
    (n,) = struct.unpack('<Q', data[:8])
    header = json.loads(data[8:8 + n])
    out = {}
    for name, entry in header.items():
        if name == '__metadata__':
            continue
        begin, end = entry['data_offsets']
        assert entry['dtype'] == 'F32'
        out[name] = np.frombuffer(data[8 + n + begin:8 + n + end], dtype='<f4').reshape(entry['shape'])
    return out


def write_safetensors(path, tensors, dtype):
    """One dtype for every tensor: 'F16' or 'BF16' (bfloat16 bits via a uint16 view)."""
    parts, blobs, offset = [], [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous()
        blob = t.view(torch.int16).numpy().astype('<i2').tobytes()
        parts.append('%s:{"dtype":"%s","shape":[%s],"data_offsets":[%d,%d]}' % (
            json.dumps(name), dtype, ','.join(str(d) for d in t.shape), offset, offset + len(blob)))
        blobs.append(blob)
        offset += len(blob)
    header = ('{' + ','.join(parts) + '}').encode('utf-8')
    header += b' ' * ((8 - len(header) % 8) % 8)
    with open(path, 'wb') as handle:
        handle.write(struct.pack('<Q', len(header)) + header + b''.join(blobs))


def save(obj, name, legacy=False):
    path = os.path.join(OUT, name)
    torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
    return path


def same_as(sd, reference, what):
    """Every reference tensor equal (bit for bit, after .float()) to the one torch.load gives back."""
    for name, value in reference.items():
        got = sd[name].float().contiguous().numpy()
        if got.shape != value.shape or got.view(np.uint32).tobytes() != np.ascontiguousarray(value).view(np.uint32).tobytes():
            raise AssertionError('%s: %s differs' % (what, name))


def floats(sd, convert):
    return OrderedDict((k, convert(v) if v.is_floating_point() else v) for k, v in sd.items())


def with_views(sd):
    """Non-contiguous convolution/linear weights and BatchNorm vectors that share one storage each."""
    out = OrderedDict()
    groups = {}
    for name, value in sd.items():
        module, leaf = name.rsplit('.', 1)
        if leaf in ('weight', 'bias', 'running_mean', 'running_var') and value.dim() == 1 and not name.startswith('classifier'):
            groups.setdefault(module, []).append(leaf)
    shared = {}
    for module, leaves in groups.items():
        parts = [sd['%s.%s' % (module, leaf)] for leaf in leaves]
        # A spare element at each end: every slice has a non-zero offset and the storage is longer than any view.
        big = torch.cat([torch.zeros(1)] + parts + [torch.zeros(1)])
        start = 1
        for leaf, part in zip(leaves, parts):
            shared['%s.%s' % (module, leaf)] = big[start:start + part.numel()]
            start += part.numel()
    for name, value in sd.items():
        if name in shared:
            out[name] = shared[name]
        elif value.dim() == 4:
            out[name] = value.permute(1, 0, 2, 3).contiguous().permute(1, 0, 2, 3)
            assert not out[name].is_contiguous() or value.shape[0] == 1 or value.shape[1] == 1, name
        elif value.dim() == 2:
            out[name] = value.t().contiguous().t()
            assert not out[name].is_contiguous(), name
        else:
            out[name] = value
    assert all(torch.equal(out[k], sd[k]) for k in sd)
    return out


class Evil:
    """Its pickle calls os.system: the unpickler must refuse the global, never call it."""

    def __reduce__(self):
        return (os.system, ('touch ' + SENTINEL,))


class EvilEval:
    def __reduce__(self):
        return (eval, ("__import__('os').system('touch %s')" % SENTINEL,))


def make_fixtures():
    os.makedirs(OUT, exist_ok=True)
    reference = read_safetensors(os.path.join(ROOT, 'torchvision', 'small', 'weights.safetensors'))
    model = perturbed_densenet(SMALL)
    sd = model.state_dict()
    same_as(sd, reference, 'perturbed_densenet vs weights.safetensors')

    def check(name, expect, legacy_names=False, key=None):
        loaded = torch.load(os.path.join(OUT, name))
        if key is not None:
            loaded = loaded[key]
        if isinstance(loaded, torch.nn.Module):
            loaded = loaded.state_dict()
        if legacy_names:
            loaded = {re.sub(r'(denselayer\d+\.(?:norm|relu|conv))\.([12])\.', r'\1\2.', k): v for k, v in loaded.items()}
        same_as(loaded, expect, name)

    save(sd, 'zip.pth')
    check('zip.pth', reference)

    legacy_sd = OrderedDict((LEGACY.sub(lambda m: m.group(1) + '.' + m.group(2), k), v) for k, v in sd.items())
    assert sum(1 for k in legacy_sd if '.norm.1.' in k) > 0
    save(legacy_sd, 'legacy-names.pth', legacy=True)
    check('legacy-names.pth', reference, legacy_names=True)

    half = floats(sd, lambda v: v.half())
    save(half, 'float16.pth')
    write_safetensors(os.path.join(OUT, 'float16.safetensors'), {k: v for k, v in half.items() if v.is_floating_point()}, 'F16')
    bf16 = floats(sd, lambda v: v.bfloat16())
    save(bf16, 'bfloat16-legacy.pth', legacy=True)
    write_safetensors(os.path.join(OUT, 'bfloat16.safetensors'), {k: v for k, v in bf16.items() if v.is_floating_point()}, 'BF16')
    save(floats(sd, lambda v: v.double()), 'float64.pth')
    check('float64.pth', reference)

    views = with_views(sd)
    save(views, 'views.pth')
    check('views.pth', reference)
    save(views, 'views-legacy.pth', legacy=True)
    check('views-legacy.pth', reference)

    save({'epoch': 7, 'state_dict': sd, 'optimizer': {'lr': 0.1, 'momentum': 0.9}, 'best_acc1': 0.5}, 'nested.pth')
    check('nested.pth', reference, key='state_dict')
    save({'model': sd, 'arch': 'densenet'}, 'nested-model-legacy.pth', legacy=True)
    check('nested-model-legacy.pth', reference, key='model')

    save(model, 'module.pth')
    check('module.pth', reference)
    save(model, 'module-legacy.pth', legacy=True)
    check('module-legacy.pth', reference)

    evil = OrderedDict(list(sd.items())[:2] + [('features.evil', Evil())])
    save(evil, 'malicious.pth')
    save(evil, 'malicious-legacy.pth', legacy=True)
    save(OrderedDict([('features.evil', EvilEval())]), 'malicious-eval.pth')
    for name, needle in (('malicious.pth', b'posix\nsystem'), ('malicious-legacy.pth', b'posix\nsystem'), ('malicious-eval.pth', b'eval')):
        with open(os.path.join(OUT, name), 'rb') as handle:
            assert needle in handle.read(), name
    assert not os.path.exists(SENTINEL)

    with open(os.path.join(OUT, 'versions.json'), 'w') as handle:
        json.dump({'generator': 'scripts/make_pth_fixtures.py', 'torch': torch.__version__,
                   'torchvision': torchvision.__version__, 'sentinel': SENTINEL}, handle, indent=2)
        handle.write('\n')
    for name in sorted(os.listdir(OUT)):
        print('%-28s %7d bytes' % (name, os.path.getsize(os.path.join(OUT, name))))


def make_densenet201(out):
    """torchvision's densenet201() from seed 0: a .pth in both formats and the same weights in safetensors (F32)."""
    from make_torchvision_fixtures import write_safetensors as write_f32
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    model = torchvision.models.densenet201()
    sd = model.state_dict()
    torch.save(sd, os.path.join(out, 'densenet201.pth'))
    torch.save(sd, os.path.join(out, 'densenet201-legacy.pth'), _use_new_zipfile_serialization=False)
    write_f32(os.path.join(out, 'densenet201.safetensors'), {k: v for k, v in sd.items() if not k.endswith('num_batches_tracked')})
    for name in ('densenet201.pth', 'densenet201-legacy.pth', 'densenet201.safetensors'):
        print('%-28s %10d bytes' % (name, os.path.getsize(os.path.join(out, name))))


if __name__ == '__main__':
    if len(sys.argv) == 3 and sys.argv[1] == '--densenet201':
        make_densenet201(sys.argv[2])
    elif len(sys.argv) == 1:
        make_fixtures()
    else:
        sys.exit('usage: make_pth_fixtures.py [--densenet201 DIR]')
