#!/usr/bin/env python3
"""PyTorch latency of every registry model on this machine's GPU (or CPU): the numbers the
benchmark tables' "PyTorch CUDA" rows cite when a GPU was lent.

    python3 scripts/torch_latency.py --out torch_latency.json [--iters 50]

Median wall time of a forward pass (synchronised), batch 1 and batch 256, fp32 and bf16
autocast, channels_last on CUDA; untrained weights (latency does not depend on them).
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from fer_edge.training.models import create_model, list_models


def median_ms(model, x, amp, iters: int, cuda: bool) -> float:
    times = []
    with torch.no_grad(), torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp):
        for i in range(iters + 10):
            if cuda:
                torch.cuda.synchronize()
            t = time.perf_counter()
            model(x)
            if cuda:
                torch.cuda.synchronize()
            if i >= 10:
                times.append(time.perf_counter() - t)
    return round(1000 * statistics.median(times), 4)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--iters", type=int, default=50)
    args = p.parse_args()
    cuda = torch.cuda.is_available()
    dev = torch.device("cuda" if cuda else "cpu")
    torch.backends.cudnn.benchmark = True
    rows = []
    for name in list_models():
        model = create_model(name).eval().to(dev)
        if cuda:
            model = model.to(memory_format=torch.channels_last)
        for batch in (1, 256):
            x = torch.randn(batch, 1, 48, 48, device=dev)
            for amp in (False, True):
                ms = median_ms(model, x, amp, args.iters, cuda)
                rows.append({"model": name, "batch": batch, "precision": "bf16" if amp else "fp32", "ms": ms,
                             "faces_per_s": round(batch * 1000 / ms)})
                print(rows[-1], flush=True)
    info = {"device": torch.cuda.get_device_name(0) if cuda else "cpu", "torch": torch.__version__,
            "channels_last": cuda, "iters": args.iters, "rows": rows}
    with open(args.out, "w") as f:
        json.dump(info, f, indent=2)


if __name__ == "__main__":
    main()
