using System.Text.Json;
using System.Text.Json.Nodes;

namespace Rlft.Policy.Lora;

/// <summary>LoRA hyperparameters (Hu et al. 2021, arXiv:2106.09685), stored as PEFT's adapter_config.json.</summary>
public sealed record LoraConfig
{
    /// <summary>Rank r of the update B·A (default 8).</summary>
    public int Rank { get; init; } = 8;
    /// <summary>Scale numerator: the update is multiplied by Alpha / Rank (default 16).</summary>
    public double Alpha { get; init; } = 16;
    /// <summary>Dropout on the adapter's input during training (default 0).</summary>
    public double Dropout { get; init; }
    /// <summary>Module names (last path component) to adapt: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj; GPT-2: c_attn, c_proj, c_fc.</summary>
    public IReadOnlyList<string> TargetModules { get; init; } = ["q_proj", "k_proj", "v_proj", "o_proj"];

    public double Scale => Alpha / Rank;

    public void Validate()
    {
        if (Rank < 1) throw new ArgumentException($"lora rank must be ≥ 1, got {Rank}");
        if (!(Dropout >= 0 && Dropout < 1)) throw new ArgumentException($"lora dropout must be in [0, 1), got {Dropout}");
        if (TargetModules.Count == 0) throw new ArgumentException("lora target_modules is empty");
    }

    /// <summary>
    /// PEFT's adapter_config.json. <paramref name="taskType"/> is PEFT's task (CAUSAL_LM, SEQ_CLS, QUESTION_ANS,
    /// TOKEN_CLS); <paramref name="modulesToSave"/> the modules trained in full beside the adapters (an encoder's head).
    /// </summary>
    public JsonObject ToPeftJson(bool fanInFanOut, string? baseModel, string taskType = "CAUSAL_LM", IReadOnlyList<string>? modulesToSave = null) => new()
    {
        ["peft_type"] = "LORA",
        ["task_type"] = taskType,
        ["r"] = Rank,
        ["lora_alpha"] = Alpha,
        ["lora_dropout"] = Dropout,
        ["target_modules"] = new JsonArray(TargetModules.Select(t => (JsonNode)JsonValue.Create(t)!).ToArray()),
        ["bias"] = "none",
        ["fan_in_fan_out"] = fanInFanOut,
        ["base_model_name_or_path"] = baseModel,
        ["inference_mode"] = true,
        ["init_lora_weights"] = true,
        ["use_rslora"] = false,
        ["use_dora"] = false,
        ["modules_to_save"] = modulesToSave is null ? null : new JsonArray(modulesToSave.Select(m => (JsonNode)JsonValue.Create(m)!).ToArray()),
        ["revision"] = null,
    };

    public static LoraConfig FromPeftJson(JsonObject o, string source)
    {
        string? type = o["peft_type"]?.GetValue<string>();
        if (type != "LORA") throw new InvalidDataException($"{source}: field 'peft_type' is '{type}', expected LORA");
        if (o["use_rslora"]?.GetValue<bool>() == true) throw new InvalidDataException($"{source}: field 'use_rslora' = true is not supported");
        if (o["use_dora"]?.GetValue<bool>() == true) throw new InvalidDataException($"{source}: field 'use_dora' = true is not supported");
        if (o["bias"]?.GetValue<string>() is string bias && bias != "none") throw new InvalidDataException($"{source}: field 'bias' = {bias} is not supported (only none)");
        var targets = o["target_modules"] switch
        {
            JsonArray a => a.Select(x => x!.GetValue<string>()).ToArray(),
            JsonValue v => [v.GetValue<string>()],
            _ => throw new InvalidDataException($"{source}: field 'target_modules' is missing"),
        };
        return new LoraConfig
        {
            Rank = o["r"]?.GetValue<int>() ?? throw new InvalidDataException($"{source}: field 'r' is missing"),
            Alpha = o["lora_alpha"]?.GetValue<double>() ?? 8,
            Dropout = o["lora_dropout"]?.GetValue<double>() ?? 0,
            TargetModules = targets,
        };
    }

    internal static JsonSerializerOptions Indented { get; } = new() { WriteIndented = true };
}
