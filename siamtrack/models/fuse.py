"""Inference-time rewrites of a trained model: BatchNorm folded into the convolution that feeds it, and a trunk's
input normalisation into its first convolution.

In eval mode a BatchNorm is a per-channel affine map with frozen statistics, so it can be merged into the weights and
bias of the convolution before it, which removes one full pass over every feature map. The pairs are found from the
data flow of a real forward pass (forward hooks) rather than from module order, so the rewrite works for Sequential
stacks and for modules that call `self.bn(self.conv(x))` alike; a BatchNorm is folded only when its input is the
output of a Conv2d that nothing else reads.
"""
from __future__ import annotations

import copy

import torch
from torch import nn


def fold_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    """Merge `bn` (eval statistics) into `conv` in place."""
    with torch.no_grad():
        inv_std = torch.rsqrt(bn.running_var.double() + bn.eps)
        gamma = bn.weight.double() if bn.weight is not None else torch.ones_like(inv_std)
        beta = bn.bias.double() if bn.bias is not None else torch.zeros_like(inv_std)
        scale = gamma * inv_std
        w = conv.weight.double() * scale.view(-1, *([1] * (conv.weight.dim() - 1)))
        b = conv.bias.double() if conv.bias is not None else torch.zeros_like(scale)
        b = beta + (b - bn.running_mean.double()) * scale
        conv.weight.copy_(w.to(conv.weight.dtype))
        if conv.bias is None:
            conv.bias = nn.Parameter(b.to(conv.weight.dtype))
        else:
            conv.bias.copy_(b.to(conv.bias.dtype))


def _foldable_pairs(model: nn.Module, run):
    """(conv name, bn name) pairs whose data flow is conv -> bn only, observed while `run(model)` executes."""
    names = {m: n for n, m in model.named_modules()}
    produced = {}      # id(output tensor) -> conv module
    consumers = {}     # id(tensor) -> number of leaf modules that read it
    bn_inputs = []     # (bn module, id(input tensor))
    keep_alive = []    # tensors held so that their ids are not reused during the pass

    def hook(module, inputs, output):
        for t in inputs:
            if isinstance(t, torch.Tensor):
                consumers[id(t)] = consumers.get(id(t), 0) + 1
                keep_alive.append(t)
        if isinstance(module, nn.Conv2d) and isinstance(output, torch.Tensor):
            produced[id(output)] = module
            keep_alive.append(output)
        if isinstance(module, nn.BatchNorm2d) and inputs and isinstance(inputs[0], torch.Tensor):
            bn_inputs.append((module, id(inputs[0])))

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        with torch.no_grad():
            run(model)
    finally:
        for h in handles:
            h.remove()
    pairs = {}
    for bn, src in bn_inputs:
        conv = produced.get(src)
        if conv is not None and consumers.get(src) == 1:
            pairs[names[bn]] = names[conv]
    return [(c, b) for b, c in pairs.items()]


def _set_submodule(model, name, module):
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)


def fold_batchnorm(model: nn.Module, run) -> nn.Module:
    """A copy of `model` in eval mode with every foldable BatchNorm merged into its convolution and replaced by
    nn.Identity. `run(m)` must exercise every branch of the model (e.g. the exemplar and the search branch)."""
    model = copy.deepcopy(model).eval()
    for conv_name, bn_name in _foldable_pairs(model, run):
        fold_conv_bn(model.get_submodule(conv_name), model.get_submodule(bn_name))
        _set_submodule(model, bn_name, nn.Identity())
    return model


def fold_siamese(model, exemplar_size: int, search_size: int, device=None) -> nn.Module:
    """`fold_batchnorm` for a SiameseNet, tracing its exemplar branch, search branch and head on zero crops, then each
    trunk's `fold_input_normalisation` where it has one."""
    device = device or next(model.parameters()).device

    def run(m):
        kernels = m.template(torch.zeros(1, 3, exemplar_size, exemplar_size, device=device))
        m.track(torch.zeros(1, 3, search_size, search_size, device=device), kernels)
        m.kernels = None

    model = fold_batchnorm(model, run)
    # a trunk that normalises its input can merge that into its first convolution too (EfficientNet-Lite0's)
    for m in model.modules():
        if hasattr(m, "fold_input_normalisation"):
            m.fold_input_normalisation()
    return model
