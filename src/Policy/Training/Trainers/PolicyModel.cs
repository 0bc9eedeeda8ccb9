using Rlft.Policy.Chat;
using Rlft.Policy.Generation;
using Rlft.Policy.Models;
using Rlft.Policy.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace Rlft.Policy.Training.Trainers;

/// <summary>
/// A causal LM with its tokenizer (and chat template, when it has one): what every trainer and the rollout worker
/// hold. Training text goes through <see cref="Encoder"/>, so a prompt and its completion are encoded as one text.
/// </summary>
internal sealed class PolicyModel
{
    public CausalLM Model { get; }
    public ITokenizer Tokenizer { get; }
    /// <summary>Encodes examples as the model sees them (joint text, loss masks, EOS only where nothing closes the text).</summary>
    public ExampleEncoder Encoder { get; }
    public Device Device => Model.WordEmbeddings.device;

    /// <summary>Refuses a tokenizer that can produce ids outside the model's embedding table (they would crash in native code).</summary>
    public PolicyModel(CausalLM model, ITokenizer tokenizer, ExampleEncoder? encoder = null)
    {
        if (Checkpoints.ModelDirectory.VocabularyProblem(tokenizer, model.Config, "tokenizer.json") is { } problem) throw new InvalidDataException(problem);
        Model = model;
        Tokenizer = tokenizer;
        Encoder = encoder ?? new ExampleEncoder(tokenizer);
        if (!ReferenceEquals(Encoder.Tokenizer, tokenizer)) throw new ArgumentException("the example encoder uses a different tokenizer than the model");
    }

    /// <summary>The same model and tokenizer seen through another encoder (a stage's chat template or end tokens).</summary>
    public PolicyModel WithEncoder(ExampleEncoder encoder) => ReferenceEquals(encoder, Encoder) ? this : new(Model, Tokenizer, encoder);

    /// <summary>Prompt ids for generation; never empty (an empty prompt starts from BOS, or EOS as GPT-2 does).</summary>
    public int[] EncodePrompt(string prompt) => Encoder.Prompt(prompt);

    /// <summary>Teacher-forced completion log-probs (see <see cref="LogProbs.OfCompletions"/>), with the entropy per position when asked.</summary>
    public CompletionLogProbs LogProbsOf(IReadOnlyList<int[]> prompts, IReadOnlyList<int[]> completions, bool entropy = false) =>
        LogProbs.OfCompletions(Model, prompts, completions, Tokenizer.PadId, entropy: entropy);

    /// <summary>
    /// Whether a forward pass in training mode computes what an eval-mode pass computes (nothing in the model draws
    /// random numbers: no active adapter dropout; the decoders apply no dropout). Then a trainer's behaviour log-probs
    /// may come from its first training pass (<see cref="PpoTrainer"/>, <see cref="GrpoTrainer"/>).
    /// </summary>
    public bool TrainsDeterministically => !Model.modules().OfType<Dense>().Any(d => d.HasDropout);

    /// <summary>Log-probs of the loss-carrying tokens of encoded examples; the mask is the examples' loss mask.</summary>
    public CompletionLogProbs LogProbsOf(IReadOnlyList<EncodedExample> examples) =>
        LogProbs.OfCompletions(Model, examples.Select(e => e.Prompt).ToList(), examples.Select(e => e.Completion).ToList(), Tokenizer.PadId,
            examples.Select(e => e.CompletionMask).ToList());

    /// <summary>
    /// A frozen deep copy (the reference model when no LoRA adapters are used), with the same gradient-checkpointing
    /// setting, its weights held in <paramref name="dtype"/>: fp32, or bf16 for half the memory (<c>model.frozen-dtype</c>).
    /// A bf16 copy computes its matmuls in bf16; log-softmax, sampling and the reward head run in fp32 (see README).
    /// The copy computes what the model computes now: LoRA adapters that are active (not merged, not switched off) are
    /// folded into the copy's plain weights (W + α/r·B·A, or the snapshot a reference holds in their place). With
    /// <paramref name="adapters"/> false, the copy is the base alone.
    /// </summary>
    public PolicyModel FrozenCopy(ScalarType dtype = ScalarType.Float32, bool adapters = true)
    {
        if (Quantization.ModelQuantizer.IsQuantized(Model))
            throw new InvalidOperationException("a quantized base is not copied: it is frozen already, so the reference is the same model (adapters off, or a snapshot of them)");
        var copy = ModelFactory.Create(Model.Config);
        copy.GradientCheckpointing = Model.GradientCheckpointing;
        copy.to(Device);
        // Converted before the copy, so the fp32 initial weights are released and the copy casts as it writes.
        if (dtype != ScalarType.Float32) copy.to(FrozenDtype(dtype));
        using (no_grad())
        {
            var source = Model.state_dict();
            foreach (var (name, p) in copy.state_dict())
                if (source.TryGetValue(name, out var s)) p.copy_(s);
            if (adapters)
            {
                var layers = copy.DenseLayers().ToDictionary(l => l.Name, l => l.Layer);
                foreach (var (name, layer) in Model.DenseLayers())
                {
                    using var delta = layer.ActiveAdapterDelta();
                    if (delta is not null) layers[name].weight!.add_(delta.to(layers[name].weight!.dtype));
                }
            }
        }
        return new PolicyModel(Freeze(copy, dtype), Tokenizer, Encoder);
    }

    /// <summary>
    /// Holds <paramref name="model"/> frozen in <paramref name="dtype"/> (fp32 or bf16): parameters without gradients,
    /// eval mode. What the rollout replica, the reward model used for scoring and a loaded reference or teacher do.
    /// With <paramref name="keepAdapterDtype"/>, LoRA adapters keep their own dtype (fp32 adapters on a bf16 base).
    /// </summary>
    public static CausalLM Freeze(CausalLM model, ScalarType dtype = ScalarType.Float32, bool keepAdapterDtype = false)
    {
        dtype = FrozenDtype(dtype);
        bool quantized = Quantization.ModelQuantizer.IsQuantized(model);
        if (dtype != ScalarType.Float32 && quantized)
            throw new InvalidOperationException("a quantized base keeps its projections in 4 or 8 bits; its compute dtype is set with model.compute-dtype");
        foreach (var p in model.parameters()) p.requires_grad = false;
        // LoRA adapters attached after an earlier conversion are converted too (unless kept); a quantized base is left as it is.
        if (keepAdapterDtype)
        {
            if (model.named_parameters().Any(p => !p.name.Contains(".lora_") && p.parameter.dtype != dtype))
                throw new InvalidOperationException($"the base is not held in {dtype}: convert it before its adapters attach");
        }
        else if (!quantized && model.parameters().Any(p => p.dtype != dtype)) model.to(dtype);
        model.eval();
        return model;
    }

    /// <summary>The dtypes a frozen copy may be held in: fp32 and bf16.</summary>
    public static ScalarType FrozenDtype(ScalarType dtype) => dtype is ScalarType.Float32 or ScalarType.BFloat16
        ? dtype
        : throw new ArgumentException($"frozen copies are held in fp32 or bf16, not {dtype}");

    /// <summary>Hidden states that predict each completion column: (B, C, H) from (B, T, H).</summary>
    public static Tensor CompletionHidden(CompletionLogProbs lp)
    {
        long t = lp.HiddenStates.shape[1], c = lp.LogProbs.shape[1];
        return lp.HiddenStates.narrow(1, t - c - 1, c);
    }
}
