"""Linear4bit and Linear8bitLt: frozen linear layers whose weight is stored quantized (bitsandbytes.nn's names).

The weight is a Params4bit (packed 4-bit indices [(n*k + 1) // 2, 1] uint8 plus a QuantState) or an
Int8Params (int8 [n, k] plus SCB, the float32 absmax of each row). Assigning a float array to
`weight.data` quantizes it on the spot: that is how a checkpoint is loaded one tensor at a time, so the
float32 weight lives only as long as one layer's array. `quant_shape` is the weight's logical [out, in];
numel() counts logical values, as PEFT and transformers count a 4-bit parameter.
"""
import numpy as np

from .. import nn
from ..nn.init import Unallocated
from ..nn.module import _RAW, Parameter
from . import functional as QF
from .ops import PURELY_QUANTIZED_MESSAGE, quantized_linear


class _QuantizedParameter(Parameter):
    """A frozen Parameter whose float values are quantized when assigned."""

    quant_kind = None
    loads_transposed = False

    def __init__(self, data=None, requires_grad=False, quant_shape=None):
        float_values = isinstance(data, np.ndarray) and data.dtype.kind == "f"
        super().__init__(Unallocated(data.shape, np.float32) if float_values else data, requires_grad=False)
        self.quant_shape = tuple(quant_shape if quant_shape is not None else data.shape)
        if requires_grad:
            self.requires_grad_(True)
        if float_values:  # quantized now, by the subclass's _quantize (its settings are set before this)
            self.data = data

    @property
    def data(self):
        return Parameter.data.fget(self)

    @data.setter
    def data(self, value):
        arr = getattr(value, "data", value) if not isinstance(value, np.ndarray) else value
        if isinstance(arr, np.ndarray) and arr.dtype.kind == "f" and "quant_shape" in self.__dict__:
            if self.loads_transposed and tuple(arr.shape) == self.quant_shape[::-1]:
                arr = arr.T  # GPT-2's Conv1D stores [in, out]; the quantized weight is [out, in]
            if tuple(arr.shape) != self.quant_shape:
                raise ValueError(f"A {type(self).__name__} of shape {self.quant_shape} cannot take values of "
                                 f"shape {tuple(arr.shape)}.")
            self._quantize(arr)
        else:
            _RAW.__set__(self, arr)

    def requires_grad_(self, requires_grad=True):
        if requires_grad:
            raise RuntimeError(PURELY_QUANTIZED_MESSAGE)
        self.requires_grad = False
        return self

    def numel(self):
        return int(np.prod(self.quant_shape))

    def is_quantized(self):
        return not isinstance(_RAW.__get__(self), Unallocated)

    def dequantize(self):
        from .matmul import dequantize

        return dequantize(self)


class Params4bit(_QuantizedParameter):
    quant_kind = "4bit"

    def __init__(self, data=None, requires_grad=False, quant_state=None, blocksize=64, compress_statistics=True,
                 quant_type="fp4", quant_shape=None):
        QF.get_4bit_type(quant_type)  # an unknown type fails here, with the list of known ones
        self.blocksize, self.compress_statistics, self.quant_type = blocksize, compress_statistics, quant_type
        self.quant_state = quant_state
        super().__init__(data, requires_grad, quant_shape)

    def _quantize(self, arr):
        packed, self.quant_state = QF.quantize_4bit(arr, self.blocksize, self.compress_statistics, self.quant_type)
        _RAW.__set__(self, packed)


class Int8Params(_QuantizedParameter):
    quant_kind = "8bit"

    def __init__(self, data=None, requires_grad=False, has_fp16_weights=False, quant_shape=None):
        if has_fp16_weights:
            raise NotImplementedError("tinypeft's Int8Params keeps only int8 weights: pass has_fp16_weights=False.")
        self.SCB = None
        super().__init__(data, requires_grad, quant_shape)

    def _quantize(self, arr):
        CB, self.SCB = QF.int8_vectorwise_quant(arr)
        _RAW.__set__(self, CB)


def _bias(out_features, bias):
    return Parameter(nn.init.empty(out_features)) if bias else None


class Linear4bit(nn.Linear):
    """bitsandbytes.nn.Linear4bit: y = x dequantize(W)^T + b, W in 4-bit blocks, b float32."""

    def __init__(self, input_features, output_features, bias=True, compute_dtype=None, compress_statistics=True,
                 quant_type="fp4", quant_storage=np.uint8, device=None):
        nn.Module.__init__(self)  # not nn.Linear's: no float32 weight is ever made
        if compute_dtype not in (None, np.float32, "float32"):
            raise ValueError(f"compute_dtype {compute_dtype!r}: tinypeft computes in float32 only.")
        if np.dtype(quant_storage) != np.uint8:
            raise ValueError(f"quant_storage {quant_storage!r}: tinypeft packs 4-bit values into uint8 only.")
        self.in_features, self.out_features = input_features, output_features
        self.compute_dtype = np.float32
        self.weight = Params4bit(Unallocated((output_features, input_features), np.float32),
                                 compress_statistics=compress_statistics, quant_type=quant_type)
        self.bias = _bias(output_features, bias)
        if self.bias is None:
            self.register_parameter("bias", None)

    def reset_parameters(self):
        pass  # the values come from a checkpoint, quantized as they arrive

    def forward(self, x):
        return quantized_linear(x, self.weight, self.bias)  # [..., in] -> [..., out]

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, "
                f"quant_type={self.weight.quant_type}")


class Linear8bitLt(nn.Linear):
    """bitsandbytes.nn.Linear8bitLt with has_fp16_weights=False: W in int8 rows with a float32 absmax each.

    tinypeft multiplies float32 activations by the dequantized int8 weight; bitsandbytes also quantizes the
    activations to int8 and keeps outlier columns (|x| > threshold) in 16 bits. `threshold` is recorded only."""

    def __init__(self, input_features, output_features, bias=True, has_fp16_weights=True, threshold=0.0,
                 index=None, device=None):
        nn.Module.__init__(self)
        self.in_features, self.out_features = input_features, output_features
        self.threshold = threshold
        self.weight = Int8Params(Unallocated((output_features, input_features), np.float32),
                                 has_fp16_weights=has_fp16_weights)
        self.bias = _bias(output_features, bias)
        if self.bias is None:
            self.register_parameter("bias", None)

    def reset_parameters(self):
        pass

    def forward(self, x):
        return quantized_linear(x, self.weight, self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


def is_quantized_linear(module):
    return isinstance(module, (Linear4bit, Linear8bitLt))
