"""Training images/s of one SGD step on this machine, for fp32 / bf16 autocast x NCHW / channels_last.

Why: whether ``--amp bf16`` and ``--channels-last on`` pay on a CPU depends on the CPU (a Xeon
without AMX: no; a Zen 4 EPYC with avx512_bf16: twice as fast), so measure before a long run:

    python scripts/train_step_speed.py --models fernet_m,fernet_l --threads 2
"""
from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from fer_edge.training.models import create_model


def images_per_s(name: str, amp: torch.dtype | None, channels_last: bool, batch: int, steps: int) -> tuple[float, float]:
    model = create_model(name)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(batch, 1, 48, 48), torch.randint(0, 7, (batch,))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    ctx = lambda: torch.autocast("cpu", dtype=amp or torch.float32, enabled=amp is not None)  # noqa: E731

    def train_step() -> None:
        model.train()
        with ctx():
            out = model(x)
        loss = F.cross_entropy(out.float(), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    @torch.no_grad()
    def forward() -> None:
        model.eval()
        with ctx():
            model(x)

    rates = []
    for fn in (train_step, forward):
        fn()  # warm-up: oneDNN picks its kernels on the first call
        t0 = time.perf_counter()
        for _ in range(steps):
            fn()
        rates.append(batch * steps / (time.perf_counter() - t0))
    return rates[0], rates[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="fernet_m,fernet_l")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    print("| model | precision | layout | train img/s | forward img/s |\n|---|---|---|--:|--:|")
    for name in a.models.split(","):
        for amp in (None, torch.bfloat16):
            for cl in (False, True):
                tr, fw = images_per_s(name, amp, cl, a.batch, a.steps)
                print(f"| {name} | {'bf16' if amp else 'fp32'} | {'channels_last' if cl else 'NCHW'} | {tr:.0f} | {fw:.0f} |",
                      flush=True)


if __name__ == "__main__":
    main()
