using Rlft.Policy.Checkpoints;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Rlft.Policy.Heads;

/// <summary>
/// A scalar per sequence read at its last real token (transformers' *ForSequenceClassification with one label:
/// key <c>score.weight</c>, no bias). Works for left or right padding.
/// </summary>
internal sealed class RewardHead : nn.Module<Tensor, Tensor, Tensor>
{
    public Linear score;   // (1, H)

    public RewardHead(long hidden, long seed = 0) : base(nameof(RewardHead))
    {
        score = nn.Linear(hidden, 1, hasBias: false);
        RegisterComponents();
        using var _ = no_grad();
        using var gen = new Generator((ulong)seed);
        score.weight!.normal_(0, 1.0 / Math.Sqrt(hidden + 1), gen);
    }

    /// <summary>hidden (B, T, H), attention mask (B, T) → rewards (B,).</summary>
    public override Tensor forward(Tensor hidden, Tensor attentionMask)
    {
        using var scope = NewDisposeScope();
        long t = hidden.shape[1];
        var idx = arange(t, dtype: ScalarType.Int64, device: hidden.device).unsqueeze(0) * attentionMask.to(ScalarType.Int64);
        var last = idx.argmax(-1);                                                       // (B,) last real position
        var h = hidden.gather(1, last.view(-1, 1, 1).expand(-1, 1, hidden.shape[2])).squeeze(1); // (B, H)
        // The head stays fp32 under a bf16 trunk (model.frozen-dtype): scores are read in fp32.
        return score.forward(h.to(score.weight!.dtype)).squeeze(-1).MoveToOuterDisposeScope();   // (B,)
    }

    public void Save(string path) => SafetensorsFile.Save(path, state_dict().ToDictionary(kv => kv.Key, kv => kv.Value));

    public static RewardHead Load(string path, long hidden)
    {
        var head = new RewardHead(hidden);
        var tensors = SafetensorsFile.Load(path);
        try { Checkpoint.CopyInto(head, tensors, path); }
        finally { foreach (var t in tensors.Values) t.Dispose(); }
        return head;
    }
}
