using Rlft.Policy.Checkpoints;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Rlft.Policy.Heads;

/// <summary>
/// A scalar per token from the policy's hidden states (PPO's critic). Key names follow TRL's
/// AutoModelForCausalLMWithValueHead (<c>v_head.summary.weight</c> in its files; here saved without the prefix).
/// </summary>
internal sealed class ValueHead : nn.Module<Tensor, Tensor>
{
    public Linear summary;   // (1, H)

    public ValueHead(long hidden, long seed = 0) : base(nameof(ValueHead))
    {
        summary = nn.Linear(hidden, 1);
        RegisterComponents();
        using var _ = no_grad();
        using var gen = new Generator((ulong)seed);
        summary.weight!.normal_(0, 1.0 / Math.Sqrt(hidden + 1), gen);
        summary.bias!.zero_();
    }

    /// <summary>hidden (B, T, H) → values (B, T).</summary>
    public override Tensor forward(Tensor hidden)
    {
        using var scope = NewDisposeScope();
        return summary.forward(hidden).squeeze(-1).MoveToOuterDisposeScope();
    }

    public void Save(string path) => SafetensorsFile.Save(path, state_dict().ToDictionary(kv => kv.Key, kv => kv.Value));

    public static ValueHead Load(string path, long hidden)
    {
        var head = new ValueHead(hidden);
        var tensors = SafetensorsFile.Load(path);
        try { Checkpoint.CopyInto(head, tensors, path); }
        finally { foreach (var t in tensors.Values) t.Dispose(); }
        return head;
    }
}
