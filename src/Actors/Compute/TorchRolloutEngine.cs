using Rlft.Actors.Jobs;
using Rlft.Actors.Protocol;
using System.Text.Json.Nodes;
using Rlft.Policy.Generation;
using Rlft.Policy.Lora;
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
    LoraAdapters? _adapters;

    public long PolicyVersion { get; private set; } = -1;
    public long BaseVersion { get; private set; } = -1;

    /// <summary>The replica's LoRA adapters (null until adapter weights arrive).</summary>
    internal LoraAdapters? Adapters => _adapters;

    /// <summary>The replica (null until the first weights arrive); tests compare it with the learner's.</summary>
    internal PolicyModel? Replica => _policy;

    public void ApplyWeights(long version, byte[] blob)
    {
        // The replica is built outside the dispose scope: its parameters must outlive this call.
        var contents = ModelBlob.Unpack(blob);
        try
        {
            if (contents.Files.TryGetValue(LoraAdapters.ConfigFile, out var adapterConfig))
            {
                var policy = _policy ?? throw new InvalidOperationException($"adapter weights v{version} arrived before any full weights");
                if (_adapters is null)
                {
                    var json = JsonNode.Parse(adapterConfig) as JsonObject ?? throw new InvalidDataException($"weights v{version}: adapter config is not a JSON object");
                    _adapters = LoraAdapters.Apply(policy.Model, LoraConfig.FromPeftJson(json, $"weights v{version}"));
                }
                _adapters.CopyFrom(contents.Tensors, $"adapter weights v{version}");
            }
            else
            {
                if (_adapters is not null) throw new InvalidOperationException($"full weights v{version} for a replica that carries LoRA adapters");
                _policy ??= ModelFiles.Build(contents.Files, _device, "replica");
                ModelBlob.CopyInto(_policy.Model, contents.Tensors);
                BaseVersion = version;
            }
        }
        finally
        {
            foreach (var t in contents.Tensors.Values) t.Dispose();
        }
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
