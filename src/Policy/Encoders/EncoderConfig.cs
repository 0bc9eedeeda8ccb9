using System.Text.Json;
using System.Text.Json.Nodes;
using Rlft.Policy.Models;

namespace Rlft.Policy.Encoders;

/// <summary>What an encoder checkpoint's head does (its <c>architectures</c> entry).</summary>
internal enum EncoderTask
{
    /// <summary>The body alone (BertModel, *ForMaskedLM, *ForPreTraining): a starting point for a task head.</summary>
    Base,
    /// <summary>*ForSequenceClassification: labels (or one score) per sequence.</summary>
    SequenceClassification,
    /// <summary>*ForQuestionAnswering: start and end logits per token (qa_outputs).</summary>
    QuestionAnswering,
    /// <summary>*ForTokenClassification: labels per token.</summary>
    TokenClassification,
}

/// <summary>The feed-forward activation (<c>hidden_act</c>, DistilBERT's <c>activation</c>): gelu is the exact (erf) GELU.</summary>
internal enum EncoderActivation { Gelu, GeluTanh, Relu }

/// <summary>transformers' <c>problem_type</c>: which loss a sequence classifier trains with.</summary>
public enum ProblemType { SingleLabel, MultiLabel, Regression }

/// <summary>
/// A BERT-family <c>config.json</c> (<c>bert</c>, <c>roberta</c>, <c>distilbert</c>), read into the fields the encoder
/// modules use, with the head it carries: task (from <c>architectures</c>), <c>num_labels</c>, <c>id2label</c> and
/// <c>problem_type</c>. Options that change the mathematics and are not implemented are refused with the field's
/// name. Defaults are those of transformers' BertConfig, RobertaConfig and DistilBertConfig.
/// </summary>
internal sealed class EncoderConfig
{
    public static readonly string[] SupportedTypes = ["bert", "roberta", "distilbert"];

    public required string ModelType { get; init; }
    public required int VocabSize { get; init; }
    public required int HiddenSize { get; init; }
    public required int NumLayers { get; init; }
    public required int NumHeads { get; init; }
    public required int IntermediateSize { get; init; }
    public required int MaxPositions { get; init; }
    /// <summary>Token types (segments); 0 for DistilBERT, which has no token-type embeddings.</summary>
    public required int TypeVocabSize { get; init; }
    /// <summary>LayerNorm ε: <c>layer_norm_eps</c> (BERT, RoBERTa); DistilBERT's is fixed at 1e-12.</summary>
    public required double NormEps { get; init; }
    public required EncoderActivation Activation { get; init; }
    public required int PadTokenId { get; init; }
    public EncoderTask Task { get; init; }
    /// <summary>Labels of a classification head (1 for a regression or reward head); 2 for QA's start/end.</summary>
    public int NumLabels { get; init; } = 2;
    /// <summary>Label names by id (<c>id2label</c>); LABEL_i where the file names none.</summary>
    public IReadOnlyList<string> Labels { get; init; } = ["LABEL_0", "LABEL_1"];
    /// <summary>Null: as transformers decides at the first loss (1 label → regression, else single-label).</summary>
    public ProblemType? Problem { get; init; }
    public JsonObject Raw { get; init; } = new();

    /// <summary>The base model's key prefix and attribute name in transformers (<c>bert.</c>, <c>roberta.</c>, <c>distilbert.</c>).</summary>
    public string Prefix => ModelType;
    public int HeadDim => HiddenSize / NumHeads;
    /// <summary>BERT's sequence classifier reads the pooler (dense + tanh on [CLS]); RoBERTa's and DistilBERT's heads have their own dense layer.</summary>
    public bool HasPooler => ModelType == "bert" && Task == EncoderTask.SequenceClassification;
    public ProblemType EffectiveProblem => Problem ?? (NumLabels == 1 ? ProblemType.Regression : ProblemType.SingleLabel);
    /// <summary>RoBERTa counts positions from padding_idx + 1; the others from 0.</summary>
    public int PositionOffset => ModelType == "roberta" ? PadTokenId + 1 : 0;
    /// <summary>The longest sequence the position table holds (RoBERTa loses padding_idx + 1 positions to its offset).</summary>
    public int MaxSequenceLength => MaxPositions - PositionOffset;

    /// <summary>transformers' class name for this type and task (RobertaForQuestionAnswering…).</summary>
    public string ArchitectureName => ClassPrefix(ModelType) + Task switch
    {
        EncoderTask.SequenceClassification => "ForSequenceClassification",
        EncoderTask.QuestionAnswering => "ForQuestionAnswering",
        EncoderTask.TokenClassification => "ForTokenClassification",
        _ => "Model",
    };

    static string ClassPrefix(string type) => type switch { "roberta" => "Roberta", "distilbert" => "DistilBert", _ => "Bert" };

    /// <summary>Whether <paramref name="dir"/>'s config.json names an encoder model_type (false when absent or unreadable).</summary>
    public static bool IsEncoderDirectory(string dir)
    {
        string path = Path.Combine(dir, "config.json");
        if (!File.Exists(path)) return false;
        try { return JsonNode.Parse(File.ReadAllText(path)) is JsonObject o && ModelConfig.Str(o, "model_type") is { } t && SupportedTypes.Contains(t); }
        catch (JsonException) { return false; }
    }

    public static EncoderConfig Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"model config not found: {path}", path);
        JsonNode? node;
        try { node = JsonNode.Parse(File.ReadAllText(path)); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: invalid JSON ({e.Message})", e); }
        if (node is not JsonObject obj) throw new InvalidDataException($"{path}: expected a JSON object");
        try { return Parse(obj); }
        catch (InvalidDataException e) { throw new InvalidDataException($"{path}: {e.Message}", e); }
    }

    public static EncoderConfig Parse(JsonObject o)
    {
        string type = ModelConfig.Str(o, "model_type") ?? throw new InvalidDataException("field 'model_type' is missing");
        if (!SupportedTypes.Contains(type))
            throw new InvalidDataException($"field 'model_type' is '{type}': encoder types are {string.Join(", ", SupportedTypes)}");
        if (ModelConfig.Bool(o, "is_decoder") == true) ModelConfig.Refuse("is_decoder", "true", "encoders only");
        if (ModelConfig.Bool(o, "add_cross_attention") == true) ModelConfig.Refuse("add_cross_attention", "true", "encoders only");
        var (task, labels, problem) = ReadHead(o, type);
        bool distil = type == "distilbert";
        string actKey = distil ? "activation" : "hidden_act";
        string act = ModelConfig.Str(o, actKey) ?? "gelu";
        var activation = act switch
        {
            "gelu" => EncoderActivation.Gelu,
            "gelu_new" or "gelu_pytorch_tanh" => EncoderActivation.GeluTanh,
            "relu" => EncoderActivation.Relu,
            _ => throw new InvalidDataException($"field '{actKey}' = {act} is not supported: gelu, gelu_new, gelu_pytorch_tanh or relu"),
        };
        int hidden, layers, heads, inter;
        if (distil)
        {
            if (ModelConfig.Bool(o, "sinusoidal_pos_embds") == true) ModelConfig.Refuse("sinusoidal_pos_embds", "true", "not implemented (learned positions only)");
            hidden = ModelConfig.Int(o, "dim") ?? 768; layers = ModelConfig.Int(o, "n_layers") ?? 6;
            heads = ModelConfig.Int(o, "n_heads") ?? 12; inter = ModelConfig.Int(o, "hidden_dim") ?? 4 * 768;
        }
        else
        {
            string pos = ModelConfig.Str(o, "position_embedding_type") ?? "absolute";
            if (pos != "absolute") ModelConfig.Refuse("position_embedding_type", pos, "only absolute positions are implemented");
            hidden = ModelConfig.Int(o, "hidden_size") ?? 768; layers = ModelConfig.Int(o, "num_hidden_layers") ?? 12;
            heads = ModelConfig.Int(o, "num_attention_heads") ?? 12; inter = ModelConfig.Int(o, "intermediate_size") ?? 3072;
        }
        if (heads <= 0 || hidden % heads != 0)
            throw new InvalidDataException($"field '{(distil ? "dim" : "hidden_size")}' ({hidden}) is not divisible by '{(distil ? "n_heads" : "num_attention_heads")}' ({heads})");
        var config = new EncoderConfig
        {
            ModelType = type,
            VocabSize = ModelConfig.Int(o, "vocab_size") ?? (type == "roberta" ? 50265 : 30522),
            HiddenSize = hidden,
            NumLayers = layers,
            NumHeads = heads,
            IntermediateSize = inter,
            MaxPositions = ModelConfig.Int(o, "max_position_embeddings") ?? 512,
            TypeVocabSize = distil ? 0 : ModelConfig.Int(o, "type_vocab_size") ?? 2,
            NormEps = distil ? 1e-12 : ModelConfig.Dbl(o, "layer_norm_eps") ?? 1e-12,
            Activation = activation,
            PadTokenId = ModelConfig.Int(o, "pad_token_id") ?? (type == "roberta" ? 1 : 0),
            Task = task,
            NumLabels = labels.Count,
            Labels = labels,
            Problem = problem,
            Raw = o,
        };
        if (config.MaxSequenceLength < 2) throw new InvalidDataException($"field 'max_position_embeddings' ({config.MaxPositions}) leaves no room for a sequence");
        return config;
    }

    /// <summary>The head: task from architectures, labels from id2label / num_labels, problem_type.</summary>
    static (EncoderTask, IReadOnlyList<string>, ProblemType?) ReadHead(JsonObject o, string type)
    {
        string? arch = o["architectures"] is JsonArray a && a.Count > 0 && a[0] is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;
        var task = arch switch
        {
            null => EncoderTask.Base,
            _ when arch.EndsWith("ForSequenceClassification", StringComparison.Ordinal) => EncoderTask.SequenceClassification,
            _ when arch.EndsWith("ForQuestionAnswering", StringComparison.Ordinal) => EncoderTask.QuestionAnswering,
            _ when arch.EndsWith("ForTokenClassification", StringComparison.Ordinal) => EncoderTask.TokenClassification,
            _ when arch.EndsWith("Model", StringComparison.Ordinal) || arch.EndsWith("ForMaskedLM", StringComparison.Ordinal) || arch.EndsWith("ForPreTraining", StringComparison.Ordinal) => EncoderTask.Base,
            _ => throw new InvalidDataException($"field 'architectures' = {arch} is not supported: *ForSequenceClassification, *ForQuestionAnswering, *ForTokenClassification or a base model"),
        };
        List<string>? names = null;
        if (o["id2label"] is JsonObject map && map.Count > 0)
        {
            var byId = new SortedDictionary<int, string>();
            foreach (var (k, node) in map)
            {
                if (!int.TryParse(k, out int id) || id < 0) throw new InvalidDataException($"field 'id2label' has key '{k}': expected label ids 0, 1, …");
                byId[id] = node is JsonValue nv && nv.TryGetValue<string>(out var name) ? name : throw new InvalidDataException($"field 'id2label[{k}]' must be a string");
            }
            if (byId.Keys.Last() != byId.Count - 1) throw new InvalidDataException("field 'id2label' must number its labels 0 … n−1 without gaps");
            names = byId.Values.ToList();
        }
        int? numLabels = ModelConfig.Int(o, "num_labels");
        if (names is not null && numLabels is int n && n != names.Count)
            throw new InvalidDataException($"field 'num_labels' ({n}) disagrees with 'id2label' ({names.Count} labels)");
        names ??= Enumerable.Range(0, numLabels ?? 2).Select(i => $"LABEL_{i}").ToList();
        if (names.Count < 1) throw new InvalidDataException("field 'num_labels' must be at least 1");
        ProblemType? problem = ModelConfig.Str(o, "problem_type") switch
        {
            null => null,
            "single_label_classification" => ProblemType.SingleLabel,
            "multi_label_classification" => ProblemType.MultiLabel,
            "regression" => ProblemType.Regression,
            var p => throw new InvalidDataException($"field 'problem_type' = {p} is not one of single_label_classification, multi_label_classification, regression"),
        };
        return (task, names, problem);
    }

    /// <summary>A copy for another head (a stage puts a classifier on a base checkpoint).</summary>
    public EncoderConfig WithHead(EncoderTask task, IReadOnlyList<string> labels, ProblemType? problem)
    {
        var raw = (JsonObject)Raw.DeepClone();
        raw.Remove("id2label"); raw.Remove("label2id"); raw.Remove("num_labels"); raw.Remove("problem_type"); raw.Remove("architectures");
        var copy = Parse(raw);
        return new EncoderConfig
        {
            ModelType = copy.ModelType, VocabSize = copy.VocabSize, HiddenSize = copy.HiddenSize, NumLayers = copy.NumLayers,
            NumHeads = copy.NumHeads, IntermediateSize = copy.IntermediateSize, MaxPositions = copy.MaxPositions,
            TypeVocabSize = copy.TypeVocabSize, NormEps = copy.NormEps, Activation = copy.Activation,
            PadTokenId = copy.PadTokenId, Task = task, NumLabels = labels.Count, Labels = labels, Problem = problem, Raw = raw,
        };
    }

    /// <summary>The JSON to write as <c>config.json</c>: the original fields plus the head and the shapes.</summary>
    public JsonObject ToJson()
    {
        var o = (JsonObject)Raw.DeepClone();
        o["model_type"] = ModelType;
        o["architectures"] = new JsonArray(ArchitectureName);
        o["vocab_size"] = VocabSize;
        o["max_position_embeddings"] = MaxPositions;
        o["pad_token_id"] = PadTokenId;
        if (ModelType == "distilbert")
        {
            o["dim"] = HiddenSize; o["n_layers"] = NumLayers; o["n_heads"] = NumHeads; o["hidden_dim"] = IntermediateSize;
            o["activation"] ??= "gelu";
        }
        else
        {
            o["hidden_size"] = HiddenSize; o["num_hidden_layers"] = NumLayers; o["num_attention_heads"] = NumHeads;
            o["intermediate_size"] = IntermediateSize; o["type_vocab_size"] = TypeVocabSize; o["layer_norm_eps"] = NormEps;
            o["hidden_act"] ??= "gelu"; o["position_embedding_type"] ??= "absolute";
        }
        if (Task is EncoderTask.SequenceClassification or EncoderTask.TokenClassification)
        {
            o["id2label"] = new JsonObject(Labels.Select((l, i) => KeyValuePair.Create(i.ToString(System.Globalization.CultureInfo.InvariantCulture), (JsonNode?)l)));
            o["label2id"] = new JsonObject(Labels.Select((l, i) => KeyValuePair.Create(l, (JsonNode?)i)));
            o.Remove("num_labels");
            if (Problem is { } p) o["problem_type"] = p switch
            {
                ProblemType.MultiLabel => "multi_label_classification",
                ProblemType.Regression => "regression",
                _ => "single_label_classification",
            };
        }
        o["torch_dtype"] ??= "float32";
        return o;
    }

    public void Save(string path) =>
        File.WriteAllText(path, ToJson().ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
}
