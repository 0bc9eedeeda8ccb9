using Rlft.Actors.Jobs;
using Rlft.Actors.Protocol;
using Rlft.Policy.Chat;
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
/// weights, so a rollout node needs no files), then updated in place between batches. It holds its weights in the
/// job's <c>model.frozen-dtype</c> (fp32 or bf16; weights travel as fp32 and are cast as they are copied in); under
/// LoRA with bf16 compute its base is bf16 and its adapters fp32, as the learner's are, so both compute alike.
/// </summary>
internal sealed class TorchRolloutEngine(JobSpec job) : IRolloutEngine
{
    readonly Device _device = TorchRuntime.ResolveDevice(job.Device);
    readonly ScalarType _dtype = job.PolicyFrozenDtype(TorchRuntime.ResolveDevice(job.Device));
    PolicyModel? _policy;
    LoraAdapters? _adapters;
    // The blob's tokenizer_config.json (the special-token variables of an overriding template) and the encoders of
    // the overrides seen so far, by Jinja source.
    string? _tokenizerConfig;
    readonly Dictionary<string, ExampleEncoder> _overrides = new();

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
            if (contents.Files.ContainsKey(LoraAdapters.ConfigFile)) ApplyAdapters(version, contents.Files, contents.Tensors);
            else
            {
                if (_adapters is not null) throw new InvalidOperationException($"full weights v{version} for a replica that carries LoRA adapters");
                if (_policy is null)
                {
                    _policy = ModelFiles.Build(contents.Files, _device, "replica");
                    PolicyModel.Freeze(_policy.Model, _dtype);
                    _tokenizerConfig = contents.Files.GetValueOrDefault("tokenizer_config.json");
                }
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

    public bool AcceptsLocalWeights => true;

    /// <summary>Shelved tensors shared with this replica at its last full version (tests check the storage is the learner's).</summary>
    internal int SharedTensors { get; private set; }

    /// <summary>
    /// A version from the learner's shelf in this process: full weights become this replica's parameters by sharing
    /// their storage (the model is rebuilt on the meta device, so the replica holds no weights of its own where the
    /// dtypes agree); adapters are copied into the replica's own adapter tensors.
    /// </summary>
    public void ApplyLocal(long version, WeightSync.LocalWeights weights)
    {
        if (weights.AdapterOnly)
        {
            ApplyAdapters(version, weights.Files, weights.Tensors);
            PolicyVersion = version;
            return;
        }
        if (_adapters is not null) throw new InvalidOperationException($"full weights v{version} for a replica that carries LoRA adapters");
        if (_policy is null)
        {
            (_policy, SharedTensors) = ModelFiles.BuildSharedPolicy(weights.Files, weights.Tensors, _dtype, "replica");
            _tokenizerConfig = weights.Files.GetValueOrDefault("tokenizer_config.json");
        }
        else
        {
            var (model, shared) = ModelFiles.BuildShared(weights.Files, weights.Tensors, _dtype);
            _policy.Model.Dispose();
            (_policy, SharedTensors) = (new PolicyModel(model, _policy.Tokenizer, _policy.Encoder), shared);
        }
        (BaseVersion, PolicyVersion) = (version, version);
    }

    void ApplyAdapters(long version, IReadOnlyDictionary<string, string> files, IReadOnlyDictionary<string, Tensor> tensors)
    {
        var policy = _policy ?? throw new InvalidOperationException($"adapter weights v{version} arrived before any full weights");
        if (_adapters is null)
        {
            var json = JsonNode.Parse(files[LoraAdapters.ConfigFile]) as JsonObject ?? throw new InvalidDataException($"weights v{version}: adapter config is not a JSON object");
            _adapters = LoraAdapters.Apply(policy.Model, LoraConfig.FromPeftJson(json, $"weights v{version}"));
            // The adapters compute in the replica's dtype (model.frozen-dtype), or in fp32 as the learner's do under
            // LoRA with bf16 compute; copy_ casts what arrives.
            PolicyModel.Freeze(policy.Model, _dtype, keepAdapterDtype: job.LoraInBf16(_device));
        }
        _adapters.CopyFrom(tensors, $"adapter weights v{version}");
    }

    /// <summary>
    /// Completes the prompts: a conversation is rendered with the chat template (the batch's override, else the
    /// model's) and the generation prompt, and every sequence stops at any of the model's end tokens (EOS, the
    /// template's end of turn, generation_config.json's eos_token_id). With continuous batching (the job's
    /// <c>rollout.slots</c>) at most that many sequences decode at once, a finished one's slot going to the next
    /// prompt; each prompt samples from its own stream (the batch seed, its index), so the samples are the same either way.
    /// </summary>
    public RolloutSample[] Generate(PromptItem[] prompts, SamplingSettings sampling, long seed)
    {
        var policy = _policy ?? throw new InvalidOperationException("no policy weights received yet");
        var encoder = EncoderFor(policy, sampling.ChatTemplate);
        using var scope = NewDisposeScope();
        var inputs = prompts.Select(p => p.Messages is null ? PromptInput.Plain(p.Prompt, p.Answer) : PromptInput.Chat(p.Messages, encoder, p.Answer)).ToList();
        var promptIds = inputs.Select(x => x.Encode(encoder)).ToList();
        var options = new GenerationOptions
        {
            MaxNewTokens = sampling.MaxNewTokens,
            Temperature = sampling.Temperature,
            TopK = sampling.TopK,
            TopP = sampling.TopP,
            Seed = seed,
            StopTokenIds = encoder.EndIds.Order().ToList(),
            Slots = job.RolloutSlots,
        };
        var result = TextGenerator.Generate(policy.Model, promptIds, options, policy.Tokenizer.PadId, policy.Tokenizer.EosId);
        return prompts.Select((p, i) => new RolloutSample(
            inputs[i].Text, p.Answer, p.Group, policy.Tokenizer.Decode(result.Tokens[i]),
            promptIds[i], result.Tokens[i], result.LogProbs[i], result.Stopped[i], p.Messages)).ToArray();
    }

    /// <summary>The replica's encoder, or one with the batch's template override (the model's special tokens and end ids).</summary>
    ExampleEncoder EncoderFor(PolicyModel policy, string? templateSource)
    {
        if (templateSource is null) return policy.Encoder;
        if (!_overrides.TryGetValue(templateSource, out var encoder))
        {
            var template = ChatTemplate.FromTokenizerConfig(templateSource, _tokenizerConfig, "the job's chat template");
            _overrides[templateSource] = encoder = new ExampleEncoder(policy.Tokenizer, template, policy.Encoder.EndIds);
        }
        return encoder;
    }

    public void Dispose() => _policy?.Model.Dispose();
}
