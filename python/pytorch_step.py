#!/usr/bin/env python3
"""Times torchvision DenseNet training steps in PyTorch, for `efficient-densenet bench --compare-pytorch`.

The same work as the TensorFlow.js benchmark: one SGD (momentum 0.9) step of a torchvision DenseNet with
random data, naive or memory_efficient=True, on the CPU with a fixed number of threads. Prints one JSON line
per configuration: {"mode", "batch", "msPerStep", "stepMs"}. Needs python3-torchvision (Debian) or torch +
torchvision from pip; never required by the library.

Usage: pytorch_step.py MODEL IMAGE_SIZE BATCHES(comma list) MODES(comma list: pytorch-naive,pytorch-memory-efficient) STEPS THREADS CLASSES [WARMUP]
       pytorch_step.py serve MODEL IMAGE_SIZE BATCH MODE THREADS CLASSES WARMUP
The second form loads one configuration, warms up, prints {"ready": true}, then times one step per "step" line
on stdin, printing {"ms": ...}, until stdin closes (`bench --repeat`; the protocol of src/bench/stepper.ts).
"""
import json
import statistics
import sys
import time

import torch
import torch.nn.functional as F
import torchvision


def training_step(model_name: str, image_size: int, batch: int, mode: str, classes: int):
    """One SGD step of a torchvision DenseNet on a fixed random batch, as a function."""
    efficient = mode == "pytorch-memory-efficient"
    model = getattr(torchvision.models, model_name)(num_classes=classes, memory_efficient=efficient)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, 3, image_size, image_size)
    y = torch.randint(0, classes, (batch,))

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    return step


def timed(step) -> float:
    start = time.perf_counter()
    step()
    return (time.perf_counter() - start) * 1000


def serve(model_name: str, image_size: str, batch: str, mode: str, threads: str, classes: str, warmup: str) -> None:
    torch.set_num_threads(int(threads))
    torch.manual_seed(0)
    step = training_step(model_name, int(image_size), int(batch), mode, int(classes))
    for _ in range(int(warmup)):
        step()
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        if line.strip() == "step":
            print(json.dumps({"ms": timed(step)}), flush=True)


def main() -> None:
    if sys.argv[1] == "serve":
        serve(*sys.argv[2:9])
        return
    model_name, image_size, batches, modes, steps, threads, classes = sys.argv[1:8]
    warmup = int(sys.argv[8]) if len(sys.argv) > 8 else 2
    torch.set_num_threads(int(threads))
    torch.manual_seed(0)
    for mode in modes.split(","):
        for batch in (int(b) for b in batches.split(",")):
            step = training_step(model_name, int(image_size), batch, mode, int(classes))
            for _ in range(warmup):  # warm-up steps, as many as the tfjs benchmark's (WARMUP_STEPS)
                step()
            times = [timed(step) for _ in range(int(steps))]
            print(json.dumps({"mode": mode, "batch": batch, "msPerStep": statistics.median(times), "stepMs": times}), flush=True)


if __name__ == "__main__":
    main()
