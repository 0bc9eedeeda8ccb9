using Rlft.Actors.Jobs;
using Rlft.Actors.Protocol;
using Rlft.Policy.Generation;
using Rlft.Policy.Runtime;
using Rlft.Policy.Training;
using Rlft.Policy.Training.Trainers;
using static TorchSharp.torch;

namespace Rlft.Actors.Compute;

/// <summary>
/// A policy replica: built from the first weight blob it receives (config and tokenizer travel with the
/// weights, so a rollout node needs no files), then updated in place between batches.
/// </summary>
public sealed class TorchRolloutEngine(JobSpec job) : IRolloutEngine
{
    readonly Device _device = TorchRuntime.ResolveDevice(job.Device);
    PolicyModel? _policy;

    public long PolicyVersion { get; private set; } = -1;

    /// <summary>The replica (null until the first weights arrive); tests compare it with the learner's.</summary>
    internal PolicyModel? Replica => _policy;

    public void ApplyWeights(long version, byte[] blob)
    {
        // The replica is built outside the dispose scope: its parameters must outlive this call.
        var contents = ModelBlob.Unpack(blob);
        _policy ??= ModelFiles.Build(contents.Files, _device, "replica");
        ModelBlob.CopyInto(_policy.Model, contents.Tensors);
        foreach (var t in contents.Tensors.Values) t.Dispose();
        PolicyVersion = version;
    }

    public RolloutSample[] Generate(PromptItem[] prompts, SamplingSettings sampling, long seed)
    {
        var policy = _policy ?? throw new InvalidOperationException("no policy weights received yet");
        using var scope = NewDisposeScope();
        var promptIds = prompts.Select(p => policy.EncodePrompt(p.Prompt)).ToList();
        var options = new GenerationOptions
        {
            MaxNewTokens = sampling.MaxNewTokens,
            Temperature = sampling.Temperature,
            TopK = sampling.TopK,
            TopP = sampling.TopP,
            Seed = seed,
        };
        var result = TextGenerator.Generate(policy.Model, promptIds, options, policy.Tokenizer.PadId, policy.Tokenizer.EosId);
        return prompts.Select((p, i) => new RolloutSample(
            p.Prompt, p.Answer, p.Group, policy.Tokenizer.Decode(result.Tokens[i]),
            promptIds[i], result.Tokens[i], result.LogProbs[i], result.Stopped[i])).ToArray();
    }

    public void Dispose() => _policy?.Model.Dispose();
}
