#!/usr/bin/env bash
# Issue 9: is a CNN student better than the MLP at the same teacher budget on images of 16 px and more?
# The default recipe (ckd_pool), MNIST, N = 100 and 300, 3 seeds, labelled regime; only the student differs.
# The CNN run reuses the MLP run's stand-in teacher, so both ask the same teacher about the same inputs.
set -euo pipefail
# The cost of one Adam step of each student (CPU seconds, one thread, a batch of 256 28x28 images).
python - <<'PY'
import resource, numpy as np, torch
from ckd.students import build_student
torch.set_num_threads(1)
for arch, args in (("mlp", {"hidden": [64]}), ("cnn", {"channels": [16, 32]})):
    model = build_student(arch, (28, 28), 10, np.zeros((28, 28), np.float32), np.ones((28, 28), np.float32), args)
    optimiser, x = torch.optim.Adam(model.parameters()), torch.randn(256, 28, 28)
    start = resource.getrusage(resource.RUSAGE_SELF).ru_utime
    for _ in range(10):
        optimiser.zero_grad(); model(x).sum().backward(); optimiser.step()
    print(arch, "CPU s per step:", (resource.getrusage(resource.RUSAGE_SELF).ru_utime - start) / 10)
PY
COMMON="--dataset ../shared/data/mnist_t10k.npz --budgets 100,300 --seeds 3 --science-seeds 0 --variants ckd_pool --regimes labelled"
nice python -m bench $COMMON --arch mlp --arch-args '{"hidden": [64]}' --out bench_results/arch_mlp
nice python -m bench $COMMON --arch cnn --arch-args '{"channels": [16, 32]}' \
  --teacher bench_results/arch_mlp/teacher.onnx --out bench_results/arch_cnn
