using System.Text.Json.Nodes;
using static TorchSharp.torch;

namespace Rlft.Tests.Encoders;

/// <summary>
/// An independent float64 forward pass of transformers' BERT, RoBERTa and DistilBERT with their task heads, one
/// sequence at a time, written straight from modeling_bert.py, modeling_roberta.py and modeling_distilbert.py with
/// plain tensor ops and an explicit loop over heads: it shares no code with RLFT's modules and reads config.json
/// (with the transformers config classes' defaults) and the checkpoint's tensors by their HF keys itself.
/// </summary>
static class EncoderReference
{
    /// <summary>
    /// ids (T) and token types (T, or null for zeros) → the head's logits, float64: sequence classification (L),
    /// question answering (T, 2), token classification (T, L). <paramref name="w"/> holds the tensors by HF key.
    /// </summary>
    public static Tensor Logits(JsonObject cfg, IReadOnlyDictionary<string, Tensor> weights, long[] ids, long[]? types = null)
    {
        using var scope = NewDisposeScope();
        var w = weights.ToDictionary(kv => kv.Key, kv => kv.Value.to(ScalarType.Float64));
        string type = cfg["model_type"]!.GetValue<string>();
        bool distil = type == "distilbert", roberta = type == "roberta";
        string arch = cfg["architectures"]![0]!.GetValue<string>();
        int t = ids.Length;
        int hidden = (int)(distil ? Num(cfg, "dim", 768) : Num(cfg, "hidden_size", 768));
        int nh = (int)(distil ? Num(cfg, "n_heads", 12) : Num(cfg, "num_attention_heads", 12));
        int layers = (int)(distil ? Num(cfg, "n_layers", 6) : Num(cfg, "num_hidden_layers", 12));
        int d = hidden / nh;
        double eps = distil ? 1e-12 : Num(cfg, "layer_norm_eps", 1e-12);
        long pad = (long)Num(cfg, "pad_token_id", roberta ? 1 : 0);
        string act = (distil ? cfg["activation"] : cfg["hidden_act"])?.GetValue<string>() ?? "gelu";
        string p = type + ".";

        Tensor LayerNorm(Tensor x, string key)                                        // x (T, H)
        {
            var mean = x.mean([-1L], keepdim: true);
            var variance = (x - mean).pow(2).mean([-1L], keepdim: true);              // biased, as torch.nn.LayerNorm
            return (x - mean) / (variance + eps).sqrt() * w[key + ".weight"] + w[key + ".bias"];
        }
        Tensor Linear(Tensor x, string key) => x.matmul(w[key + ".weight"].t()) + w[key + ".bias"];
        Tensor Act(Tensor x) => act switch
        {
            "gelu" => 0.5 * x * (1.0 + (x / Math.Sqrt(2.0)).erf()),                   // GELUActivation: exact
            "relu" => x.clamp_min(0),
            _ => 0.5 * x * (1.0 + (Math.Sqrt(2.0 / Math.PI) * (x + 0.044715 * x.pow(3))).tanh()),
        };
        Tensor Attention(Tensor x, string q, string k, string v)                      // x (T, H) → context (T, H)
        {
            var qs = Linear(x, q); var ks = Linear(x, k); var vs = Linear(x, v);
            var heads = new List<Tensor>();
            for (int h = 0; h < nh; h++)
            {
                var qh = qs.narrow(1, h * d, d); var kh = ks.narrow(1, h * d, d); var vh = vs.narrow(1, h * d, d);
                var scores = qh.matmul(kh.t()) / Math.Sqrt(d);                          // (T, T): every token sees every token
                heads.Add(scores.softmax(-1).matmul(vh));                               // (T, d)
            }
            return cat(heads, 1);
        }

        // Embeddings: word + position (+ token type), LayerNorm.
        long[] positions = roberta
            ? ids.Select((_, i) => ids[i] == pad ? pad : pad + ids.Take(i + 1).Count(x => x != pad)).ToArray()   // create_position_ids_from_input_ids
            : Enumerable.Range(0, t).Select(i => (long)i).ToArray();
        var x = w[p + "embeddings.word_embeddings.weight"].index_select(0, tensor(ids))
              + w[p + "embeddings.position_embeddings.weight"].index_select(0, tensor(positions));
        if (!distil) x = x + w[p + "embeddings.token_type_embeddings.weight"].index_select(0, tensor(types ?? new long[t]));
        x = LayerNorm(x, p + "embeddings.LayerNorm");
        for (int i = 0; i < layers; i++)
        {
            if (distil)
            {
                string l = $"{p}transformer.layer.{i}.";
                var sa = LayerNorm(Linear(Attention(x, l + "attention.q_lin", l + "attention.k_lin", l + "attention.v_lin"), l + "attention.out_lin") + x, l + "sa_layer_norm");
                x = LayerNorm(Linear(Act(Linear(sa, l + "ffn.lin1")), l + "ffn.lin2") + sa, l + "output_layer_norm");
            }
            else
            {
                string l = $"{p}encoder.layer.{i}.";
                var a = LayerNorm(Linear(Attention(x, l + "attention.self.query", l + "attention.self.key", l + "attention.self.value"), l + "attention.output.dense") + x, l + "attention.output.LayerNorm");
                x = LayerNorm(Linear(Act(Linear(a, l + "intermediate.dense")), l + "output.dense") + a, l + "output.LayerNorm");
            }
        }
        Tensor logits;
        if (arch.EndsWith("ForQuestionAnswering")) logits = Linear(x, "qa_outputs");                                  // (T, 2)
        else if (arch.EndsWith("ForTokenClassification")) logits = Linear(x, "classifier");                          // (T, L)
        else if (roberta) logits = Linear(Linear(x[0], "classifier.dense").tanh(), "classifier.out_proj");          // RobertaClassificationHead
        else if (distil) logits = Linear(Linear(x[0], "pre_classifier").clamp_min(0), "classifier");               // pre_classifier → ReLU → classifier
        else logits = Linear(Linear(x[0], p + "pooler.dense").tanh(), "classifier");                               // BertPooler → classifier
        return logits.MoveToOuterDisposeScope();
    }

    static double Num(JsonObject cfg, string key, double fallback) => cfg[key] is JsonValue v ? v.GetValue<double>() : fallback;
}
