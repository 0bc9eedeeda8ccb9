using TorchSharp;
using TorchSharp.Modules;
using Rlft.Policy.Models;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Rlft.Policy.Encoders;

/// <summary>BertSelfAttention: query, key, value projections; bidirectional attention over the real keys.</summary>
internal sealed class BertSelfAttention : nn.Module
{
    public Dense query, key, value;   // (H, H) each, with bias
    readonly int heads, headDim;

    public BertSelfAttention(EncoderConfig c) : base(nameof(BertSelfAttention))
    {
        heads = c.NumHeads; headDim = c.HeadDim;
        query = new Dense(c.HiddenSize, c.HiddenSize, hasBias: true);
        key = new Dense(c.HiddenSize, c.HiddenSize, hasBias: true);
        value = new Dense(c.HiddenSize, c.HiddenSize, hasBias: true);
        RegisterComponents();
    }

    /// <summary>x (B, T, H), keyMask (B, 1, 1, T) bool (true = a real token) → context (B, T, H).</summary>
    public Tensor Forward(Tensor x, Tensor keyMask) => EncoderAttention.Attend(x, query, key, value, keyMask, heads, headDim);
}

/// <summary>Scaled dot-product attention of an encoder: every query sees every real key, scores scaled by head_dim^-½.</summary>
internal static class EncoderAttention
{
    public static Tensor Attend(Tensor x, Dense q, Dense k, Dense v, Tensor keyMask, int heads, int headDim)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], t = x.shape[1];
        Tensor Split(Tensor y) => y.view(b, t, heads, headDim).transpose(1, 2);                // (B, nh, T, hs)
        var y = F.scaled_dot_product_attention(Split(q.forward(x)), Split(k.forward(x)), Split(v.forward(x)), keyMask); // (B, nh, T, hs)
        return y.transpose(1, 2).reshape(b, t, heads * headDim).MoveToOuterDisposeScope();   // (B, T, H)
    }

    /// <summary>The feed-forward activation; gelu is the exact (erf) GELU.</summary>
    public static Tensor Activate(Tensor x, EncoderActivation activation) => activation switch
    {
        EncoderActivation.GeluTanh => x.gelu(GELU.Approximate.tanh),
        EncoderActivation.Relu => x.relu(),
        _ => x.gelu(),
    };
}

/// <summary>BertSelfOutput: dense, then LayerNorm over the residual sum.</summary>
internal sealed class BertSelfOutput : nn.Module
{
    public Dense dense;        // (H, H)
    public LayerNorm LayerNorm;

    public BertSelfOutput(EncoderConfig c) : base(nameof(BertSelfOutput))
    {
        dense = new Dense(c.HiddenSize, c.HiddenSize, hasBias: true);
        LayerNorm = nn.LayerNorm(c.HiddenSize, c.NormEps, device: ParameterDevice.Current);
        RegisterComponents();
    }

    public Tensor Forward(Tensor h, Tensor residual) => LayerNorm.forward(dense.forward(h) + residual);
}

/// <summary>BertAttention: self (the heads) and output (projection + post-LayerNorm).</summary>
internal sealed class BertAttention : nn.Module
{
    public BertSelfAttention @self;
    public BertSelfOutput output;

    public BertAttention(EncoderConfig c) : base(nameof(BertAttention))
    {
        @self = new BertSelfAttention(c);
        output = new BertSelfOutput(c);
        RegisterComponents();
    }

    public Tensor Forward(Tensor x, Tensor keyMask)
    {
        using var scope = NewDisposeScope();
        return output.Forward(@self.Forward(x, keyMask), x).MoveToOuterDisposeScope();   // (B, T, H)
    }
}

/// <summary>BertIntermediate: dense up to intermediate_size and the activation.</summary>
internal sealed class BertIntermediate : nn.Module
{
    public Dense dense;        // (I, H)
    readonly EncoderActivation act;

    public BertIntermediate(EncoderConfig c) : base(nameof(BertIntermediate))
    {
        act = c.Activation;
        dense = new Dense(c.HiddenSize, c.IntermediateSize, hasBias: true);
        RegisterComponents();
    }

    public Tensor Forward(Tensor x) => EncoderAttention.Activate(dense.forward(x), act);
}

/// <summary>BertOutput: dense back to hidden_size, then LayerNorm over the residual sum.</summary>
internal sealed class BertOutput : nn.Module
{
    public Dense dense;        // (H, I)
    public LayerNorm LayerNorm;

    public BertOutput(EncoderConfig c) : base(nameof(BertOutput))
    {
        dense = new Dense(c.IntermediateSize, c.HiddenSize, hasBias: true);
        LayerNorm = nn.LayerNorm(c.HiddenSize, c.NormEps, device: ParameterDevice.Current);
        RegisterComponents();
    }

    public Tensor Forward(Tensor h, Tensor residual) => LayerNorm.forward(dense.forward(h) + residual);
}

/// <summary>BertLayer (post-LayerNorm): x → LN(x + attn(x)) → LN(· + ffn(·)).</summary>
internal sealed class BertLayer : nn.Module
{
    public BertAttention attention;
    public BertIntermediate intermediate;
    public BertOutput output;

    public BertLayer(EncoderConfig c) : base(nameof(BertLayer))
    {
        attention = new BertAttention(c);
        intermediate = new BertIntermediate(c);
        output = new BertOutput(c);
        RegisterComponents();
    }

    public Tensor Forward(Tensor x, Tensor keyMask)
    {
        using var scope = NewDisposeScope();
        var a = attention.Forward(x, keyMask);                         // (B, T, H)
        return output.Forward(intermediate.Forward(a), a).MoveToOuterDisposeScope();
    }
}
