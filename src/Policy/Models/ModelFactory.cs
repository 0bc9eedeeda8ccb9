namespace Rlft.Policy.Models;

/// <summary>Builds the module for a config's <c>model_type</c>, with uninitialised (then seeded) weights.</summary>
public static class ModelFactory
{
    public static CausalLM Create(ModelConfig config) => config.Family switch
    {
        ModelFamily.Gpt2 => new Gpt2LMHeadModel(config),
        ModelFamily.Gemma => new GemmaForCausalLM(config),
        _ => new LlamaForCausalLM(config),
    };

    /// <summary>A freshly initialised model (normal(0, 0.02), as transformers' _init_weights).</summary>
    public static CausalLM CreateInitialized(ModelConfig config, long seed)
    {
        var model = Create(config);
        model.InitWeights(seed);
        model.eval();
        return model;
    }
}
