using Rlft.Policy.Models;
using Rlft.Policy.Quantization;
using static TorchSharp.torch;

namespace Rlft.Policy.Memory;

/// <summary>
/// The bytes a job will hold, per role, from the model's config.json and the job's settings (the model is built on
/// the meta device for its parameter names and shapes; no weight is read). It counts the copies RLFT makes today in
/// one process (<c>rlft run</c>):
/// <list type="bullet">
/// <item>learner: the policy (fp32, or a 4/8-bit base plus its full-precision rest), a bf16 compute copy with mixed
/// precision, LoRA adapters, fp32 gradients and AdamW's two moments for what is trained, the frozen reference
/// (online stages, offline DPO), the reward model once one is trained, the distillation teacher, and a step's
/// activations; with a learner group (<c>learners = N</c>) each learner runs a 1/N share's activations and the N − 1
/// replicas hold all of the rest again;</item>
/// <item>weight server: the serialized versions it serves (the current and the previous full version; with LoRA the
/// base once), and the reward model's;</item>
/// <item>rollout, per in-process replica: its copy of the weights, the KV cache of a batch, and the weights as
/// received (chunks, the assembled blob and the unpacked tensors while a version is applied);</item>
/// <item>reward: the reward model's copy and its received forms while it is applied;</item>
/// <item>process: the runtime (.NET, libtorch, Akka) before any model.</item>
/// </list>
/// Stages run one after another, so the total is the largest stage's; the items of that stage are reported.
/// </summary>
internal static class MemoryEstimator
{
    /// <summary>Resident memory of an <c>rlft run</c> process before it holds any model (measured: a one-step PPO job on the tiny preset peaks at 297 MiB).</summary>
    public const long RuntimeBytes = 300L << 20;

    /// <summary>
    /// Activation words kept for the backward pass, per token and layer: <c>HiddenWords</c>·hidden (norm inputs and
    /// outputs, q/k/v and their rotated or transposed copies, attention output, projection inputs) plus, per
    /// intermediate unit, 2 words for GPT-2's MLP (up-projection output, activation) and 4 for a gated MLP (gate, up,
    /// activation, product). Checked against measured peaks (see README, Memory and model size).
    /// </summary>
    public const double HiddenWords = 12;

    public static MemoryEstimate Estimate(MemoryJob job)
    {
        var shape = ModelShape.Of(job.Model, job.Lora, job.Quantization);
        var teacherShapes = job.Stages.Where(s => s.Teacher is not null).Select(s => s.Teacher!).Distinct()
            .ToDictionary(c => c, c => ModelShape.Of(c, null, new QuantizationOptions()));
        int firstOnline = job.Stages.Select((s, i) => (s, i)).FirstOrDefault(x => x.s.IsOnline, (null!, -1)).Item2;
        bool rewardModelTrained = false;
        MemoryEstimate? peak = null;
        for (int i = 0; i < job.Stages.Count; i++)
        {
            var stage = job.Stages[i];
            // LoRA: adapters from the first online stage on (from the start with a quantized base, or with no online stage).
            bool lora = job.Lora is not null && (job.Quantization.Enabled || job.LoraFromStart || (firstOnline >= 0 && i >= firstOnline));
            var items = StageItems(job, stage, shape, lora, rewardModelTrained,
                stage.Teacher is null ? null : teacherShapes[stage.Teacher]).Where(x => x.Bytes > 0).ToList();
            var estimate = new MemoryEstimate(stage.Name, items);
            if (peak is null || estimate.Total > peak.Total) peak = estimate;
            if (stage.Kind == MemoryStageKind.RewardModel) rewardModelTrained = true;
        }
        return peak ?? new MemoryEstimate("none", [new MemoryItem(MemoryRole.Process, "runtime", RuntimeBytes)]);
    }

    static IEnumerable<MemoryItem> StageItems(MemoryJob job, MemoryStage stage, ModelShape shape, bool lora, bool rewardModelTrained, ModelShape? teacher)
    {
        const string L = MemoryRole.Learner, S = MemoryRole.WeightServer, R = MemoryRole.Rollout, W = MemoryRole.Reward;
        int frozenBytes = ElementSize(job.FrozenDtype);
        int promptTokens = stage.PromptTokens ?? job.PromptTokens;
        string frozenName = job.FrozenDtype == ScalarType.BFloat16 ? "bf16" : "fp32";
        yield return new(MemoryRole.Process, "runtime (.NET, libtorch)", RuntimeBytes, HostOnly: true);
        if (stage.Kind == MemoryStageKind.Encoder)
        {
            // The learner keeps the policy loaded; the stage trains its own encoder beside it.
            yield return new(L, "policy weights (held, not trained by this stage)", shape.BaseBytes);
            foreach (var item in EncoderItems(stage)) yield return item;
            yield break;
        }

        // The learner's models and training state; with learners = N every replica holds them too.
        var learner = new List<MemoryItem>();
        // The policy: fp32 weights, or a quantized base whose other parameters stay fp32, or (LoRA with bf16 compute,
        // once the adapters attach) a bf16 base with no fp32 master.
        bool bf16Base = lora && job.LoraBf16 && !job.Quantization.Enabled;
        if (bf16Base) learner.Add(new(L, "policy base (bf16, frozen)", 2 * shape.Parameters));
        else learner.Add(new(L, job.Quantization.Enabled ? $"policy base ({QuantizationOptions.KindName(job.Quantization.Kind)} projections, fp32 rest)" : "policy weights (fp32)", shape.BaseBytes));
        if (job.MixedPrecision && !bf16Base) learner.Add(new(L, "bf16 compute copy", 2 * shape.Parameters));
        if (lora) learner.Add(new(L, $"LoRA adapters (r{job.Lora!.Rank}, fp32)", 4 * shape.LoraParameters));

        long trained = stage.Kind == MemoryStageKind.RewardModel ? shape.Parameters + shape.Hidden + 1
            : (lora ? shape.LoraParameters : shape.Parameters) + (stage.Kind == MemoryStageKind.Ppo ? shape.Hidden + 1 : 0);
        learner.Add(new(L, "gradients (fp32)", 4 * trained));
        learner.Add(stage.Optimizer == Training.OptimizerKind.AdamW8bit
            ? new(L, "AdamW moments (8-bit block-wise, 2 per weight)", 2 * trained + 2 * 4 * Ceil(trained, 2048))
            : new(L, "AdamW moments (fp32, 2 per weight)", 8 * trained));

        // Frozen copies the learner makes: the online stages' reference under full fine-tuning (with LoRA the reference
        // is the policy with its adapters off), offline DPO's stage-start policy under full fine-tuning (with adapters, the
        // base plus a snapshot of the adapters), the reward-model stage's trunk (trained, so fp32).
        bool reference = !job.Quantization.Enabled && !lora && (stage.IsOnline || stage.Kind == MemoryStageKind.Dpo);
        if (lora && stage.Kind == MemoryStageKind.Dpo) learner.Add(new(L, "reference adapters (stage-start snapshot, fp32)", 4 * shape.LoraParameters));
        if (reference) learner.Add(new(L, $"frozen reference ({frozenName})", frozenBytes * shape.Parameters));
        if (stage.Kind == MemoryStageKind.RewardModel) learner.Add(new(L, "reward model being trained (fp32)", 4 * shape.Parameters));
        else if (rewardModelTrained) learner.Add(new(L, "reward model (fp32)", 4 * shape.Parameters));
        if (teacher is not null) learner.Add(new(L, $"distillation teacher ({frozenName})", frozenBytes * teacher.Parameters));
        foreach (var item in learner) yield return item;

        // One training step's activations: the sequences a forward pass sees at once.
        long sequences = stage.Kind switch
        {
            MemoryStageKind.Ppo => Ceil(stage.Completions, stage.MiniBatches),
            MemoryStageKind.Grpo or MemoryStageKind.OnlineDpo => stage.Completions,
            MemoryStageKind.Dpo or MemoryStageKind.RewardModel => 2L * stage.BatchSize,
            _ => stage.BatchSize,
        };
        // In a group each learner runs the forward passes of its share of the sequences.
        int n = job.Learners;
        sequences = Ceil(sequences, n);
        long tokensPerSequence = stage.IsOnline ? promptTokens + stage.CompletionTokens : stage.SequenceTokens ?? job.SequenceTokens;
        long activations = Activations(shape, sequences * tokensPerSequence, stage.GradientCheckpointing);
        // An online stage samples its held-out prompts before and after it, at another time than a training step:
        // the learner's working memory is the larger of the two.
        long evalSequences = stage.IsOnline ? Math.Min(64, job.EvalPrompts) : 0;
        long evaluation = Generation(shape, evalSequences, promptTokens + stage.CompletionTokens, 4);
        yield return evaluation > activations
            ? new(L, $"evaluation sampling ({evalSequences} × {promptTokens + stage.CompletionTokens} tokens, KV cache)", evaluation)
            : new(L, $"activations ({sequences} × {tokensPerSequence} tokens{(stage.GradientCheckpointing ? ", checkpointed" : "")})", activations);
        // The replicas of a learner group: each its own models, training state and share's activations (they measure nothing).
        if (n > 1)
            yield return new(L, $"{n - 1} learner replica(s), each its own models, gradients, moments and a 1/{n} share's activations", (n - 1) * (learner.Sum(x => x.Bytes) + activations));

        if (!stage.IsOnline && !rewardModelTrained) yield break;
        // Published policy versions are shelved as tensors for the replicas of this process (no bytes; bytes are packed
        // only for remote replicas). The learner's own tensors serve when nothing changes them while replicas read: a
        // LoRA base, or full weights with max-policy-lag = 0. Full fine-tuning with a lag makes a copy per version in
        // the replicas' dtype; a replica may still generate with the previous one while the newest is shelved.
        bool snapshots = stage.IsOnline && !lora && job.MaxPolicyLag >= 1;
        if (snapshots) yield return new(S, $"published versions for the replicas (newest and the one in use, {frozenName})", 2L * frozenBytes * shape.Parameters);
        if (!stage.IsOnline) yield break;

        long generated = stage.Completions;
        // Under LoRA with bf16 compute the replicas share the learner's bf16 base: bf16 whatever frozen-dtype says.
        var (replicaBytes, replicaName) = bf16Base ? (2, "bf16") : (frozenBytes, frozenName);
        long kv = Generation(shape, generated, promptTokens + stage.CompletionTokens, replicaBytes);
        // A replica takes the shelved tensors' storage as its own; only a dtype the learner does not hold (a bf16 replica
        // of an fp32 LoRA base) is a copy, its own.
        long replicaWeights = lora && !job.Quantization.Enabled && replicaBytes != 4 && !bf16Base ? replicaBytes * shape.Parameters : 0;
        for (int r = 0; r < job.RolloutReplicas; r++)
        {
            string who = job.RolloutReplicas == 1 ? "replica" : $"replica {r + 1}";
            string weights = replicaWeights > 0 ? $"its own {replicaName} copy" : snapshots ? "a published version's, shared" : "the learner's, shared";
            yield return new(R, $"{who} weights ({weights}){(lora ? " + adapters" : "")}", replicaWeights + (lora ? 4 * shape.LoraParameters : 0));
            yield return new(R, $"{who} KV cache and logits ({generated} × {promptTokens + stage.CompletionTokens} tokens)", kv);
        }
        // The reward worker reads the learner's reward model in place (it changes only in reward-model stages, when
        // nothing scores); only a bf16 copy for an fp32 reward model is its own.
        if (stage.ScoredByRewardModel && frozenBytes != 4)
            yield return new(W, $"reward model for scoring (its own {frozenName} copy)", frozenBytes * shape.Parameters);
    }

    /// <summary>
    /// An encoder stage (classify, qa, an encoder reward model): the encoder's fp32 weights, its adapters with LoRA, the
    /// gradients and AdamW moments of what it trains, and one step's activations over the stage's batch at the encoder's
    /// longest input (an upper bound: batches are padded to their longest text).
    /// </summary>
    static IEnumerable<MemoryItem> EncoderItems(MemoryStage stage)
    {
        const string L = MemoryRole.Learner;
        var e = stage.Encoder!;
        long parameters = EncoderParameters(e);
        // LoRA on the attention's query, key and value (the default targets): rank × (in + out) each; the head trains in full.
        long adapters = stage.EncoderLora is { } lora ? (long)e.NumLayers * 3 * lora.Rank * 2 * e.HiddenSize : 0;
        long head = (long)e.HiddenSize * e.HiddenSize + e.HiddenSize + (e.HiddenSize + 1L) * Math.Max(2, e.NumLabels);
        long trained = stage.EncoderLora is null ? parameters : adapters + head;
        yield return new(L, $"encoder weights ({e.ModelType}, {e.NumLayers} × d{e.HiddenSize}, fp32)", 4 * parameters);
        if (adapters > 0) yield return new(L, $"encoder LoRA adapters (r{stage.EncoderLora!.Rank}, fp32)", 4 * adapters);
        yield return new(L, "encoder gradients (fp32)", 4 * trained);
        yield return stage.Optimizer == Training.OptimizerKind.AdamW8bit
            ? new(L, "encoder AdamW moments (8-bit block-wise)", 2 * trained + 2 * 4 * Ceil(trained, 2048))
            : new(L, "encoder AdamW moments (fp32, 2 per weight)", 8 * trained);
        long sequences = (long)stage.BatchSize * stage.EncoderSequencesPerExample;
        long tokens = Math.Min(stage.SequenceTokens ?? e.MaxSequenceLength, e.MaxSequenceLength);
        var encoderShape = new ModelShape(parameters, adapters, 4 * parameters, e.NumLayers, e.HiddenSize, e.IntermediateSize, e.HiddenSize, Vocab: 2, GatedMlp: false);
        yield return new(L, $"encoder activations ({sequences} × {tokens} tokens)", Activations(encoderShape, sequences * tokens, checkpointed: false));
    }

    /// <summary>An encoder's parameters with its head, counted on a model made on the meta device (no memory).</summary>
    internal static long EncoderParameters(Encoders.EncoderConfig e)
    {
        using var model = Encoders.EncoderCheckpoint.CreateMeta(e);
        return model.parameters().Sum(p => p.numel());
    }

    /// <summary>
    /// Activations of one forward and backward over <paramref name="tokens"/> positions: per layer the kept tensors
    /// (all of them, or only the block input when checkpointed plus one block recomputed), the embeddings and final
    /// norm, and the LM head's chunks (logits, log-softmax and their gradient; 64 MiB of logits at a time).
    /// </summary>
    public static long Activations(ModelShape shape, long tokens, bool checkpointed)
    {
        double perLayer = 4.0 * (HiddenWords * shape.Hidden + (shape.GatedMlp ? 4 : 2) * shape.Intermediate);   // bytes per token
        double layers = checkpointed ? shape.Layers * 4.0 * shape.Hidden + perLayer : shape.Layers * perLayer;
        double head = 3.0 * Math.Min(4.0 * tokens * shape.Vocab, ChunkedLmHead.DefaultChunkBytes);
        return (long)(tokens * (layers + 3 * 4.0 * shape.Hidden) + head);
    }

    /// <summary>Sampling <paramref name="sequences"/> of <paramref name="tokens"/>: the KV cache (keys and values of every layer) and a step's logits and probabilities.</summary>
    public static long Generation(ModelShape shape, long sequences, long tokens, int bytesPerValue) =>
        2L * shape.Layers * shape.KvWidth * sequences * tokens * bytesPerValue + 2L * sequences * shape.Vocab * 4;

    static long Ceil(long a, long b) => (a + b - 1) / b;

    static int ElementSize(ScalarType t) => t switch
    {
        ScalarType.BFloat16 or ScalarType.Float16 => 2,
        ScalarType.Float32 => 4,
        _ => throw new ArgumentException($"frozen copies are held in fp32 or bf16, not {t}"),
    };
}

/// <summary>What the estimate needs of a model's shape: counts from the model built on the meta device.</summary>
internal sealed record ModelShape(long Parameters, long LoraParameters, long BaseBytes, int Layers, int Hidden, int Intermediate, int KvWidth, int Vocab, bool GatedMlp)
{
    /// <summary>Parameter counts of <paramref name="config"/> (tied weights once), its LoRA adapters and its base's bytes.</summary>
    public static ModelShape Of(ModelConfig config, Lora.LoraConfig? lora, QuantizationOptions quantization)
    {
        // Built on the meta device with a vocabulary of 16 and of 32, the vocabulary-sized tensors (embeddings, an
        // untied head) are then counted by hand: libtorch materialises an embedding table on the CPU while building it.
        const int small = 16;
        long Count(int vocab) { using var m = ModelFactory.CreateMeta(Reshaped(config, vocab)); return m.ParameterCount(); }
        long atSmall = Count(small), perToken = (Count(2 * small) - atSmall) / small;   // H (tied) or 2H (untied head)
        long parameters = atSmall + perToken * (config.VocabSize - small);
        using var meta = ModelFactory.CreateMeta(Reshaped(config, small));
        // Projections with the real vocabulary as a dimension (an lm_head Dense).
        var dense = meta.DenseLayers()
            .Select(d => (d.Name, In: d.Layer.InFeatures, Out: d.Layer.OutFeatures == small && d.Name.EndsWith("lm_head", StringComparison.Ordinal) ? (long)config.VocabSize : d.Layer.OutFeatures))
            .ToList();
        long loraParameters = lora is null ? 0 : dense
            .Where(d => lora.TargetModules.Any(t => d.Name == t || d.Name.EndsWith("." + t, StringComparison.Ordinal)))
            .Sum(d => (long)lora.Rank * (d.In + d.Out));
        long baseBytes = 4 * parameters;
        if (quantization.Enabled)
            foreach (var d in dense.Where(d => quantization.Quantizes(d.Name)))
            {
                long n = d.In * d.Out;
                baseBytes += QuantizedBytes(quantization, n, d.Out) - 4 * n;
            }
        return new ModelShape(parameters, loraParameters, baseBytes, config.NumLayers, config.HiddenSize, config.IntermediateSize,
            config.NumKeyValueHeads * config.HeadDim, config.VocabSize, config.Family != ModelFamily.Gpt2);
    }

    /// <summary>
    /// The config with another vocabulary and, for rotary families, a short context for the meta build: rotary tables
    /// are real CPU tensors of max_position_embeddings rows (131,072 for Llama 3) and change no parameter count. GPT-2's
    /// learned positions are parameters, so its context is kept; so is any context the shorter one would not parse.
    /// </summary>
    static ModelConfig Reshaped(ModelConfig config, int vocab)
    {
        const int context = 4096;
        var raw = (System.Text.Json.Nodes.JsonObject)config.ToJson().DeepClone();
        raw["vocab_size"] = vocab;
        foreach (var id in new[] { "bos_token_id", "eos_token_id", "pad_token_id" }) raw.Remove(id);
        if (config.Family != ModelFamily.Gpt2 && config.MaxPositions > context)
        {
            var shorter = (System.Text.Json.Nodes.JsonObject)raw.DeepClone();
            shorter["max_position_embeddings"] = context;
            shorter.Remove("rope_scaling");
            try { return ModelConfig.Parse(shorter); }
            catch (InvalidDataException) { }
        }
        return ModelConfig.Parse(raw);
    }

    /// <summary>Bytes of one quantized weight matrix: NF4 codes at 4 bits plus block scales (8-bit with double quantization), int8 plus a scale per row.</summary>
    static long QuantizedBytes(QuantizationOptions q, long count, long rows) => q.Kind switch
    {
        QuantizationKind.Nf4 when q.DoubleQuant => count / 2 + count / 64 + 4 * (count / (64 * 256) + 1) * 2,
        QuantizationKind.Nf4 => count / 2 + 4 * (count / 64),
        _ => count + 4 * rows,
    };
}
