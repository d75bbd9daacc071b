#!/usr/bin/env python3
"""Times torchvision DenseNet training steps in PyTorch, for `efficient-densenet bench --compare-pytorch`.

The same work as the TensorFlow.js benchmark: one SGD (momentum 0.9) step of a torchvision DenseNet with
random data, naive or memory_efficient=True, on the CPU with a fixed number of threads. Prints one JSON line
per configuration: {"mode", "batch", "msPerStep", "stepMs"}. Needs python3-torchvision (Debian) or torch +
torchvision from pip; never required by the library.

Usage: pytorch_step.py MODEL IMAGE_SIZE BATCHES(comma list) MODES(comma list: pytorch-naive,pytorch-memory-efficient) STEPS THREADS CLASSES [WARMUP]
"""
import json
import statistics
import sys
import time

import torch
import torch.nn.functional as F
import torchvision


def main() -> None:
    model_name, image_size, batches, modes, steps, threads, classes = sys.argv[1:8]
    warmup = int(sys.argv[8]) if len(sys.argv) > 8 else 2
    torch.set_num_threads(int(threads))
    torch.manual_seed(0)
    for mode in modes.split(","):
        for batch in (int(b) for b in batches.split(",")):
            efficient = mode == "pytorch-memory-efficient"
            model = getattr(torchvision.models, model_name)(num_classes=int(classes), memory_efficient=efficient)
            model.train()
            opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
            x = torch.randn(batch, 3, int(image_size), int(image_size))
            y = torch.randint(0, int(classes), (batch,))

            def step() -> None:
                opt.zero_grad(set_to_none=True)
                F.cross_entropy(model(x), y).backward()
                opt.step()

            for _ in range(warmup):  # warm-up steps, as many as the tfjs benchmark's (WARMUP_STEPS)
                step()
            times = []
            for _ in range(int(steps)):
                start = time.perf_counter()
                step()
                times.append((time.perf_counter() - start) * 1000)
            print(json.dumps({"mode": mode, "batch": batch, "msPerStep": statistics.median(times), "stepMs": times}), flush=True)


if __name__ == "__main__":
    main()
