"""LoRA initialisations that start from the base weight itself (PEFT's pissa_init / olora_init), for Linear layers.

Both move the adapter's starting part out of the frozen weight, so the model is unchanged at step 0:

    PiSSA:  W = U S V^T (SVD).  B = U_r sqrt(S_r / s),  A = sqrt(S_r / s) V_r^T,  W_res = W - s B A
            (the top-r singular triplets train; the rest stays frozen). "pissa_niter_K": U_r, S_r, V_r from the
            randomized range finder with K power iterations instead of a full SVD.
    OLoRA:  W = Q R (QR).  B = Q[:, :r],  A = R[:r],  W_res = W - s B A.

s is the adapter's scaling. As in PEFT, OLoRA factors the stored weight as it is (so GPT-2's [in, out] Conv1D
would get the wrong shapes: refused), and PiSSA factors the [out, in] view.
"""
import re

import numpy as np

from ....creation import generator


def _top_r_svd(W, r, niter):
    """(U_r [out, r], S_r [r], Vh_r [r, in]) of W [out, in]: LAPACK's SVD, or Halko et al.'s randomized one."""
    if niter is None:
        U, S, Vh = np.linalg.svd(W, full_matrices=False)
        return U[:, :r], S[:r], Vh[:r]
    # range finder: Q spans W G (G Gaussian [in, r]), refined by niter rounds of W W^T, re-orthogonalised each time
    Q = np.linalg.qr(W @ generator().standard_normal((W.shape[1], r)).astype(W.dtype))[0]
    for _ in range(niter):
        Q = np.linalg.qr(W.T @ Q)[0]
        Q = np.linalg.qr(W @ Q)[0]
    Ub, S, Vh = np.linalg.svd(Q.T @ W, full_matrices=False)  # SVD of the small projection [r, in]
    return Q @ Ub, S, Vh


def _plain_weight(layer, method):
    if hasattr(layer, "_dequantized_weight"):
        raise NotImplementedError(f"{method} on a quantized layer is not supported by tinypeft: initialise it on the "
                                  "float model, then quantize the residual weight.")
    return layer.base_layer.weight.data.astype(np.float32)


def pissa_init(layer, adapter, init_lora_weights):
    m = re.fullmatch(r"pissa(?:_niter_(\d+))?", init_lora_weights)
    if m is None:
        raise ValueError(f"init_lora_weights should be 'pissa' or 'pissa_niter_[number of iters]', got "
                         f"{init_lora_weights} instead.")
    W = _plain_weight(layer, "PiSSA")
    W = W.T if layer.fan_in_fan_out else W  # [out, in]
    r, s = layer.r[adapter], layer.scaling[adapter]
    U, S, Vh = _top_r_svd(W, r, None if m.group(1) is None else int(m.group(1)))
    root = np.sqrt(S / s)
    A, B = (root[:, None] * Vh).astype(np.float32), (U * root[None, :]).astype(np.float32)
    layer.lora_A[adapter].weight.data, layer.lora_B[adapter].weight.data = A, B
    W_res = W - s * B @ A
    layer.base_layer.weight.data = (W_res.T if layer.fan_in_fan_out else W_res).astype(layer.base_layer.weight.dtype)


def olora_init(layer, adapter):
    if layer.fan_in_fan_out:
        raise NotImplementedError("OLoRA on a layer stored [in, out] (GPT-2's Conv1D) is not supported: PEFT factors "
                                  "the stored weight, which gives lora_A/lora_B the wrong shapes there.")
    W = _plain_weight(layer, "OLoRA")
    r, s = layer.r[adapter], layer.scaling[adapter]
    Q, R = np.linalg.qr(W)
    B, A = np.ascontiguousarray(Q[:, :r]), np.ascontiguousarray(R[:r])
    layer.lora_A[adapter].weight.data, layer.lora_B[adapter].weight.data = A, B
    layer.base_layer.weight.data = (W - s * B @ A).astype(layer.base_layer.weight.dtype)
