namespace Rlft.Policy.Models;

/// <summary>Builds the module for a config's <c>model_type</c>, with uninitialised (then seeded) weights.</summary>
internal static class ModelFactory
{
    public static CausalLM Create(ModelConfig config) => config.Family switch
    {
        ModelFamily.Gpt2 => new Gpt2LMHeadModel(config),
        ModelFamily.Gemma => new GemmaForCausalLM(config),
        _ => new LlamaForCausalLM(config),
    };

    /// <summary>
    /// The model on the <c>meta</c> device: every parameter's name and shape, no memory and no initialisation —
    /// what checking a checkpoint's tensors against a config, or estimating a job's memory, needs.
    /// </summary>
    public static CausalLM CreateMeta(ModelConfig config)
    {
        using var _ = ParameterDevice.Use(TorchSharp.torch.META);
        return Create(config);
    }

    /// <summary>A freshly initialised model (normal(0, 0.02), as transformers' _init_weights).</summary>
    public static CausalLM CreateInitialized(ModelConfig config, long seed)
    {
        var model = Create(config);
        model.InitWeights(seed);
        model.eval();
        return model;
    }
}
