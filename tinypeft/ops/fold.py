"""unfold and fold (torch.nn.functional's im2col and col2im), each one Function; OFT's conv layer needs both.

    unfold: x [B, C, H, W]  ->  cols [B, C*kh*kw, L]      cols[b, (c, i, j), l] = x_pad[b, c, s*p + d*i, s*q + d*j]
    fold:   cols [B, C*kh*kw, L]  ->  x [B, C, H, W]       x_pad[b, c, s*p + d*i, s*q + d*j] += cols[b, (c, i, j), l]

(l = p * Wo + q runs over the output windows). fold is the adjoint of unfold: both are the same 0/1 matrix U,
unfold applies U and fold applies U^T (overlapping windows add up). So the backward of each is the other:
    unfold: y = U x  =>  dx = U^T g = fold(g);          fold: y = U^T c  =>  dc = U g = unfold(g).
Padding is cropped off (fold) or added (unfold) around the same maps.
"""
from .. import backend
from ..autograd import Function
from .conv import _col2im, _im2col, _pair, _windows


def _unfold(x, kernel, dilation, padding, stride):
    xp = backend.xp_of(x)
    (ph, pw) = padding
    xpad = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))) if (ph or pw) else x
    Ho, Wo = _windows(xpad.shape[2:], kernel, stride, dilation)
    cols = _im2col(xpad, kernel, stride, dilation, (Ho, Wo))  # [B, C, kh, kw, Ho, Wo]
    B, C = x.shape[:2]
    return cols.reshape(B, C * kernel[0] * kernel[1], Ho * Wo)


def _fold(cols, output_size, kernel, dilation, padding, stride):
    B, CK, L = cols.shape
    C = CK // (kernel[0] * kernel[1])
    (H, W), (ph, pw) = output_size, padding
    Ho, Wo = _windows((H + 2 * ph, W + 2 * pw), kernel, stride, dilation)
    if Ho * Wo != L or C * kernel[0] * kernel[1] != CK:
        raise ValueError(f"fold: input {tuple(cols.shape)} does not fit output_size {output_size} with kernel "
                         f"{kernel}: expected [B, C*{kernel[0] * kernel[1]}, {Ho * Wo}].")
    dcols = cols.reshape(B, C, kernel[0], kernel[1], Ho, Wo)
    xpad = _col2im(dcols, (H + 2 * ph, W + 2 * pw), kernel, stride, dilation)
    return backend.xp_of(cols).ascontiguousarray(xpad[:, :, ph: ph + H, pw: pw + W])


class Unfold(Function):
    name = "unfold"

    @staticmethod
    def forward(ctx, x, *, kernel_size, dilation, padding, stride):
        ctx.geom = (tuple(x.shape[2:]), kernel_size, dilation, padding, stride)
        return _unfold(x, kernel_size, dilation, padding, stride)

    @staticmethod
    def backward(ctx, g):
        # y = U x  =>  dx = U^T g: fold
        return _fold(g, *ctx.geom)


class Fold(Function):
    name = "fold"

    @staticmethod
    def forward(ctx, cols, *, output_size, kernel_size, dilation, padding, stride):
        ctx.geom = (kernel_size, dilation, padding, stride)
        return _fold(cols, output_size, kernel_size, dilation, padding, stride)

    @staticmethod
    def backward(ctx, g):
        # y = U^T c  =>  dc = U g: unfold
        return _unfold(g, *ctx.geom)


def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """torch.nn.functional.unfold: [B, C, H, W] -> [B, C*kh*kw, L] (sliding windows as columns)."""
    if input.ndim != 4:
        raise ValueError(f"unfold expects a 4-D input [B, C, H, W], got shape {tuple(input.shape)}.")
    return Unfold.apply(input, kernel_size=_pair(kernel_size, 2, "kernel_size"), dilation=_pair(dilation, 2, "dilation"),
                        padding=_pair(padding, 2, "padding"), stride=_pair(stride, 2, "stride"))


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """torch.nn.functional.fold: [B, C*kh*kw, L] -> [B, C, H, W], overlapping windows summed."""
    if input.ndim != 3:
        raise ValueError(f"fold expects a 3-D input [B, C*kh*kw, L], got shape {tuple(input.shape)}.")
    return Fold.apply(input, output_size=_pair(output_size, 2, "output_size"),
                      kernel_size=_pair(kernel_size, 2, "kernel_size"), dilation=_pair(dilation, 2, "dilation"),
                      padding=_pair(padding, 2, "padding"), stride=_pair(stride, 2, "stride"))
