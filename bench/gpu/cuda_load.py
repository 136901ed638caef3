"""Keeps GPU 0 busy with matrix products for --seconds, holding about 2 GiB."""
import argparse
import time

import torch

p = argparse.ArgumentParser()
p.add_argument("--seconds", type=float, default=20)
args, _ = p.parse_known_args()
assert torch.cuda.is_available(), "no CUDA device"
a = torch.randn(8192, 8192, device="cuda")
b = torch.randn(8192, 8192, device="cuda")
hold = torch.empty(256 * 1024 * 1024, device="cuda")  # 1 GiB more, to see op/gpu0/mem/used
end = time.time() + args.seconds
step = 0
while time.time() < end:
    c = a @ b
    torch.cuda.synchronize()
    step += 1
    if step % 20 == 0:
        print(f"step: {step}\nnorm: {c.norm().item():.3f}", flush=True)
print(f"device: {torch.cuda.get_device_name(0)}")
