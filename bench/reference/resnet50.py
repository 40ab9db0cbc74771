"""Writes the ResNet-50-sized checkpoint of `npm run bench:scale` (bench/scale.ts) into the folder given as argv[1]:
torchvision's ResNet-50 architecture with its own random initialisation (seed 0; pretrained weights cannot be
downloaded here), saved by torch.save as a state dict (resnet50.pt), exported to ONNX with a dynamic batch
(resnet50.onnx), and one batch of 16 seeded 3×224×224 float32 inputs (images.npy). With --forward it also prints
PyTorch's forward time of that batch on this machine's threads as `pytorch-forward-s=S` and its peak RSS.
Needs Debian's python3-torchvision and python3-onnx; run with /usr/bin/python3 -P.
"""
import os
import resource
import sys
import time

import numpy as np
import torch
import torchvision

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
torch.manual_seed(0)
model = torchvision.models.resnet50(weights=None).eval()
images = np.random.default_rng(0).standard_normal((16, 3, 224, 224)).astype(np.float32)
if "--forward" in sys.argv:
    x = torch.from_numpy(images)
    with torch.no_grad():
        model(x[:2])
        t0 = time.perf_counter()
        model(x)
        seconds = time.perf_counter() - t0
    print(f"pytorch-forward-s={seconds:.3f} threads={torch.get_num_threads()}")
    print(f"pytorch-peak-rss-kb={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}")
    sys.exit(0)
torch.save(model.state_dict(), os.path.join(out, "resnet50.pt"))
np.save(os.path.join(out, "images.npy"), images)
torch.onnx.export(
    model,
    torch.from_numpy(images[:1]),
    os.path.join(out, "resnet50.onnx"),
    input_names=["input"],
    output_names=["logits"],
    dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
    opset_version=13,
    # PRESERVE (the model is in eval mode) skips the export's eval peephole pass, which would fuse each BatchNorm into
    # its convolution under new initializer names; the artifact's weights (named as in the state dict) would then bind
    # to nothing but the classifier.
    training=torch.onnx.TrainingMode.PRESERVE,
    do_constant_folding=False,
)
print("wrote", out)
