#!/usr/bin/env python3
"""PyTorch's CUDA anchor for the webgpu benchmark (docs/gpu.md): GPU memory and time of one training step.

One SGD (momentum 0.9) step of torchvision's DenseNet on random data, naive or memory_efficient=True, on the
first CUDA device, measured as the tfjs benchmark measures its own: after a warm-up step (which creates the
momentum buffers), grads set to None, the peak of `torch.cuda.max_memory_allocated()` during the next step
above `torch.cuda.memory_allocated()` at its start (the weights, the optimizer state and the batch). Each
configuration runs in a fresh model; the caching allocator is emptied and its peak reset between them.
Prints one JSON line per configuration:
  {"mode", "batch", "stepPeakBytes", "baselineBytes", "peakBytes", "msPerStep", "stepMs", "device", "torch"}
An out-of-memory configuration prints {"mode", "batch", "error": "out of memory"} and the others still run.

Usage: pytorch_cuda_memory.py [MODEL=densenet201] [IMAGE_SIZE=224] [BATCHES=16,32,64] [MODES=naive,efficient]
                              [STEPS=3] [CLASSES=1000]
"""
import json
import statistics
import sys
import time

import torch
import torch.nn.functional as F
import torchvision


def measure(model_name: str, image_size: int, batch: int, efficient: bool, steps: int, classes: int) -> dict:
    device = torch.device("cuda")
    torch.manual_seed(0)
    model = getattr(torchvision.models, model_name)(num_classes=classes, memory_efficient=efficient).to(device)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, 3, image_size, image_size, device=device)
    y = torch.randint(0, classes, (batch,), device=device)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    try:
        step()  # warm-up: momentum buffers, cuDNN algorithm choice
        opt.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        baseline = torch.cuda.memory_allocated()
        step()
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated()
        times = []
        for _ in range(steps):
            start = time.perf_counter()
            step()
            torch.cuda.synchronize()
            times.append((time.perf_counter() - start) * 1000)
        return {
            "stepPeakBytes": peak - baseline,
            "baselineBytes": baseline,
            "peakBytes": peak,
            "msPerStep": statistics.median(times),
            "stepMs": times,
        }
    except torch.cuda.OutOfMemoryError:
        return {"error": "out of memory"}
    finally:
        del model, opt, x, y
        torch.cuda.empty_cache()


def main() -> None:
    args = sys.argv[1:]
    model_name = args[0] if len(args) > 0 else "densenet201"
    image_size = int(args[1]) if len(args) > 1 else 224
    batches = [int(b) for b in (args[2] if len(args) > 2 else "16,32,64").split(",")]
    modes = (args[3] if len(args) > 3 else "naive,efficient").split(",")
    steps = int(args[4]) if len(args) > 4 else 3
    classes = int(args[5]) if len(args) > 5 else 1000
    if not torch.cuda.is_available():
        sys.exit("pytorch_cuda_memory.py: no CUDA device (torch.cuda.is_available() is False)")
    torch.backends.cudnn.benchmark = False  # its workspace search would inflate the measured step's peak
    for mode in modes:
        if mode not in ("naive", "efficient"):
            sys.exit(f"pytorch_cuda_memory.py: MODES must be naive and/or efficient, got {mode!r}")
        for batch in batches:
            result = measure(model_name, image_size, batch, mode == "efficient", steps, classes)
            print(json.dumps({"mode": mode, "batch": batch, **result, "device": torch.cuda.get_device_name(0),
                              "torch": torch.__version__}), flush=True)


if __name__ == "__main__":
    main()
