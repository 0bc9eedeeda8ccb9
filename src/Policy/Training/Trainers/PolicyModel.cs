using Rlft.Policy.Generation;
using Rlft.Policy.Models;
using Rlft.Policy.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace Rlft.Policy.Training.Trainers;

/// <summary>A causal LM with its tokenizer: what every trainer and the rollout worker hold.</summary>
public sealed class PolicyModel
{
    public CausalLM Model { get; }
    public ITokenizer Tokenizer { get; }

    /// <summary>Refuses a tokenizer that can produce ids outside the model's embedding table (they would crash in native code).</summary>
    public PolicyModel(CausalLM model, ITokenizer tokenizer)
    {
        if (Checkpoints.ModelDirectory.VocabularyProblem(tokenizer, model.Config, "tokenizer.json") is { } problem) throw new InvalidDataException(problem);
        (Model, Tokenizer) = (model, tokenizer);
    }
    public Device Device => Model.WordEmbeddings.device;

    /// <summary>Prompt ids; never empty (an empty prompt starts from EOS, as GPT-2 does).</summary>
    public int[] EncodePrompt(string prompt)
    {
        var ids = Tokenizer.Encode(prompt);
        return ids.Length > 0 ? ids : [Tokenizer.EosId];
    }

    /// <summary>Completion ids followed by EOS, the target the policy learns to stop on.</summary>
    public int[] EncodeCompletion(string completion) => [.. Tokenizer.Encode(completion), Tokenizer.EosId];

    /// <summary>Teacher-forced completion log-probs (see <see cref="LogProbs.OfCompletions"/>).</summary>
    public CompletionLogProbs LogProbsOf(IReadOnlyList<int[]> prompts, IReadOnlyList<int[]> completions) =>
        LogProbs.OfCompletions(Model, prompts, completions, Tokenizer.PadId);

    /// <summary>A frozen deep copy (the reference model when no LoRA adapters are used).</summary>
    public PolicyModel FrozenCopy()
    {
        if (Quantization.ModelQuantizer.IsQuantized(Model))
            throw new InvalidOperationException("a quantized base is not copied: it is frozen already, so the reference is the same model (adapters off, or a snapshot of them)");
        var copy = ModelFactory.Create(Model.Config);
        copy.to(Device);
        using (no_grad())
        {
            var source = Model.state_dict();
            foreach (var (name, p) in copy.state_dict())
                if (source.TryGetValue(name, out var s)) p.copy_(s);
        }
        foreach (var p in copy.parameters()) p.requires_grad = false;
        copy.eval();
        return new PolicyModel(copy, Tokenizer);
    }

    /// <summary>Hidden states that predict each completion column: (B, C, H) from (B, T, H).</summary>
    public static Tensor CompletionHidden(CompletionLogProbs lp)
    {
        long t = lp.HiddenStates.shape[1], c = lp.LogProbs.shape[1];
        return lp.HiddenStates.narrow(1, t - c - 1, c);
    }
}
