using Rlft.Policy.Models;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.autograd;
using F = TorchSharp.torch.nn.functional;

namespace Rlft.Policy.Quantization;

/// <summary>
/// y = x Wᵀ for a quantized, frozen W (bitsandbytes' <c>MatMul4Bit</c>): the forward dequantizes W into the compute
/// dtype, multiplies and drops it; the backward dequantizes again for the input gradient (∂L/∂x = ∂L/∂y · W) and
/// gives W no gradient. Nothing is saved for the backward but a reference to the quantized weight, so a layer's
/// full-precision W exists only while its own matmul runs (one layer at a time, forward or backward).
/// On the CPU, a few rows (decoding) are multiplied straight from the codes (<see cref="Nf4Kernel.Gemv"/>, what
/// bitsandbytes' gemv_4bit does on a GPU); elsewhere W is rebuilt with tensor operations, and on a GPU a fused
/// dequantize-and-multiply kernel would save writing W out and reading it back.
/// </summary>
internal static class QuantizedLinear
{
    /// <summary>x (..., in) → (..., out) in x's dtype; <paramref name="computeDtype"/> is the dtype W is rebuilt in and the matmul runs in.</summary>
    public static Tensor Apply(Tensor x, QuantizedWeight weight, ScalarType computeDtype)
    {
        if (is_grad_enabled() && x.requires_grad) return Function.apply(x, weight, computeDtype);
        using var scope = NewDisposeScope();
        return Multiply(x, weight, computeDtype).MoveToOuterDisposeScope();
    }

    static Tensor Multiply(Tensor x, QuantizedWeight weight, ScalarType computeDtype)
    {
        long rows = x.numel() / weight.InFeatures;
        if (weight.Kind == QuantizationKind.Nf4 && x.dtype == computeDtype && Nf4Kernel.GemvApplies(x.device, computeDtype, rows, weight.InFeatures))
        {
            // Decoding: a few rows, multiplied straight from the codes (W is not written out).
            using var scope = NewDisposeScope();
            var y = Nf4Kernel.Gemv(x.reshape(rows, weight.InFeatures).contiguous(), weight.Data, weight.BlockScales().contiguous(), weight.OutFeatures, weight.InFeatures);
            return y.view([.. x.shape[..^1], weight.OutFeatures]).MoveToOuterDisposeScope();   // (..., out)
        }
        using var w = weight.Dequantize(computeDtype);                                      // (out, in)
        // Decoding without the AVX-512 kernel: the rebuilt W goes through the small-batch projection (MKL would pack it again).
        return x.dtype == computeDtype ? DecodeLinear.Forward(x, w, null) : F.linear(x.to(computeDtype), w).to(x.dtype);
    }

    /// <summary>The custom autograd node: the input is the only differentiable argument.</summary>
    sealed class Function : SingleTensorFunction<Function>
    {
        // The gradient handed back to libtorch is copied there; its managed handle is released on the next
        // backward of this thread, so at most one such handle lingers instead of one per layer until the
        // caller's dispose scope ends.
        [ThreadStatic] static Tensor? _handedBack;

        public override string Name => "QuantizedLinear";

        public override Tensor forward(AutogradContext ctx, params object[] vars)
        {
            var (x, weight, dtype) = ((Tensor)vars[0], (QuantizedWeight)vars[1], (ScalarType)vars[2]);
            ctx.save_data("weight", weight);
            ctx.save_data("dtype", dtype);
            ctx.save_data("input_dtype", x.dtype);
            return Multiply(x, weight, dtype);
        }

        public override List<Tensor> backward(AutogradContext ctx, Tensor gradOutput)
        {
            _handedBack?.Dispose();
            var weight = (QuantizedWeight)ctx.get_data("weight");
            var dtype = (ScalarType)ctx.get_data("dtype");
            var inputDtype = (ScalarType)ctx.get_data("input_dtype");
            Tensor gradInput;
            using (var scope = NewDisposeScope())
            using (var w = weight.Dequantize(dtype))                                              // (out, in)
            {
                var g = gradOutput.dtype == dtype ? gradOutput.matmul(w) : gradOutput.to(dtype).matmul(w);   // (..., in)
                gradInput = (g.dtype == inputDtype ? g : g.to(inputDtype)).MoveToOuterDisposeScope();
            }
            gradOutput.Dispose();
            _handedBack = gradInput.DetachFromDisposeScope();
            return [gradInput, null!, null!];
        }
    }
}
