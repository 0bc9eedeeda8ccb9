using System.Text.Json.Nodes;
using static TorchSharp.torch;

namespace Rlft.Tests.Policy;

/// <summary>
/// An independent float64 forward pass of transformers' decoders, one sequence at a time, written straight from
/// modeling_llama/qwen3/phi3/gemma2/gemma3.py with plain tensor ops and explicit per-head loops: it shares no code
/// with RLFT's modules and reads config.json with the transformers config classes' defaults itself.
/// Covered: llama, mistral, qwen2, qwen3, phi3 (fused qkv/gate_up, partial rotary, longrope, sliding window),
/// gemma2 and gemma3_text ((1 + w) norms in four places, √H embedding scale, GeGLU, q/k norms, query_pre_attn_scalar,
/// soft-caps, per-layer sliding windows with their own RoPE base).
/// </summary>
static class HfReference
{
    /// <summary>ids (T) → logits (T, V) float64. <paramref name="w"/>: the checkpoint's tensors by HF key.</summary>
    public static Tensor Logits(JsonObject cfg, IReadOnlyDictionary<string, Tensor> weights, long[] ids)
    {
        using var scope = NewDisposeScope();
        var w = weights.ToDictionary(kv => kv.Key, kv => kv.Value.to(ScalarType.Float64));
        string type = Str(cfg, "model_type")!;
        bool gemma = type.StartsWith("gemma"), g3 = type == "gemma3_text", phi3 = type == "phi3", qwen3 = type == "qwen3";
        int hidden = Int(cfg, "hidden_size")!.Value, layers = Int(cfg, "num_hidden_layers")!.Value;
        int nh = Int(cfg, "num_attention_heads") ?? (gemma ? 8 : 32);
        int kv = Int(cfg, "num_key_value_heads") ?? (gemma ? 4 : qwen3 ? 32 : nh);
        int d = Int(cfg, "head_dim") ?? (gemma ? 256 : qwen3 ? 128 : hidden / nh);
        int inter = Int(cfg, "intermediate_size")!.Value;
        double eps = Dbl(cfg, "rms_norm_eps") ?? (phi3 ? 1e-5 : 1e-6);
        double theta = Dbl(cfg, "rope_theta") ?? (g3 ? 1_000_000.0 : 10000.0);
        bool tied = Bool(cfg, "tie_word_embeddings") ?? (gemma || false);
        int? window = gemma ? (cfg.ContainsKey("sliding_window") ? Int(cfg, "sliding_window") : 4096)
                    : type is "mistral" or "phi3" ? Int(cfg, "sliding_window") : null;
        double scale = gemma ? Math.Pow(Dbl(cfg, "query_pre_attn_scalar") ?? 256, -0.5) : Math.Pow(d, -0.5);
        double? attnCap = gemma ? (cfg.ContainsKey("attn_logit_softcapping") ? Dbl(cfg, "attn_logit_softcapping") : g3 ? null : 50.0) : null;
        double? finalCap = gemma ? (cfg.ContainsKey("final_logit_softcapping") ? Dbl(cfg, "final_logit_softcapping") : g3 ? null : 30.0) : null;
        int rotary = phi3 ? (int)(d * (Dbl(cfg, "partial_rotary_factor") ?? 1.0)) : d;
        int t = ids.Length;

        bool Sliding(int i)
        {
            if (window is null) return false;
            if (!gemma) return true;                                                  // mistral, phi3: every layer
            if (cfg["layer_types"] is JsonArray a) return a[i]!.GetValue<string>() == "sliding_attention";
            int pattern = g3 ? Int(cfg, "sliding_window_pattern") ?? 6 : 2;
            return (i + 1) % pattern != 0;
        }

        Tensor Norm(Tensor x, string key)                                             // x (..., n)
        {
            var normed = x * (x.pow(2).mean([-1L], keepdim: true) + eps).rsqrt();
            return gemma ? normed * (1.0 + w[key]) : normed * w[key];
        }
        Tensor Linear(Tensor x, string key) => w.TryGetValue(key + ".bias", out var b) ? x.matmul(w[key + ".weight"].t()) + b : x.matmul(w[key + ".weight"].t());
        Tensor Act(Tensor x) => gemma
            ? 0.5 * x * (1.0 + (Math.Sqrt(2.0 / Math.PI) * (x + 0.044715 * x.pow(3))).tanh())   // gelu_pytorch_tanh
            : x * x.sigmoid();                                                                   // silu

        var x = w["model.embed_tokens.weight"].index_select(0, tensor(ids));            // (T, H)
        if (gemma) x = x * Math.Sqrt(hidden);
        for (int i = 0; i < layers; i++)
        {
            string p = $"model.layers.{i}.";
            bool sliding = Sliding(i);
            var h = Norm(x, p + "input_layernorm.weight");
            Tensor q, k, v;
            if (phi3)
            {
                var qkv = Linear(h, p + "self_attn.qkv_proj");                          // rows: q (nh·d), k (kv·d), v (kv·d)
                q = qkv.narrow(1, 0, nh * d); k = qkv.narrow(1, nh * d, kv * d); v = qkv.narrow(1, (nh + kv) * d, kv * d);
            }
            else { q = Linear(h, p + "self_attn.q_proj"); k = Linear(h, p + "self_attn.k_proj"); v = Linear(h, p + "self_attn.v_proj"); }
            q = q.view(t, nh, d); k = k.view(t, kv, d); v = v.view(t, kv, d);
            if (qwen3 || g3) { q = Norm(q, p + "self_attn.q_norm.weight"); k = Norm(k, p + "self_attn.k_norm.weight"); }
            double layerTheta = g3 && sliding ? Dbl(cfg, "rope_local_base_freq") ?? 10000.0 : theta;
            var (cos, sin) = Rope(cfg, layerTheta, rotary, t, applyScaling: !(g3 && sliding));   // (T, R)
            q = Rotate(q, cos, sin); k = Rotate(k, cos, sin);
            var heads = new List<Tensor>();
            for (int hd = 0; hd < nh; hd++)
            {
                int g = hd / (nh / kv);
                var s = q.select(1, hd).matmul(k.select(1, g).t()) * scale;            // (T, T)
                if (attnCap is double cap) s = (s / cap).tanh() * cap;
                var allowed = new bool[t * t];
                for (int a = 0; a < t; a++)
                    for (int b = 0; b <= a; b++)
                        allowed[a * t + b] = !sliding || b > a - window!.Value;   // kv_idx <= q_idx and kv_idx > q_idx − window (masking_utils)
                s = s.masked_fill(tensor(allowed, [t, t]).logical_not(), double.NegativeInfinity);
                heads.Add(s.softmax(-1).matmul(v.select(1, g)));                        // (T, d)
            }
            var o = Linear(cat(heads, 1), p + "self_attn.o_proj");                     // (T, H)
            if (gemma)
            {
                x = x + Norm(o, p + "post_attention_layernorm.weight");
                var f = Norm(x, p + "pre_feedforward_layernorm.weight");
                var m = Linear(Act(Linear(f, p + "mlp.gate_proj")) * Linear(f, p + "mlp.up_proj"), p + "mlp.down_proj");
                x = x + Norm(m, p + "post_feedforward_layernorm.weight");
            }
            else
            {
                x = x + o;
                var f = Norm(x, p + "post_attention_layernorm.weight");
                Tensor m;
                if (phi3)
                {
                    var gu = Linear(f, p + "mlp.gate_up_proj");                         // gate half, then up half
                    m = Linear(gu.narrow(1, inter, inter) * Act(gu.narrow(1, 0, inter)), p + "mlp.down_proj");
                }
                else m = Linear(Act(Linear(f, p + "mlp.gate_proj")) * Linear(f, p + "mlp.up_proj"), p + "mlp.down_proj");
                x = x + m;
            }
        }
        x = Norm(x, "model.norm.weight");
        var logits = x.matmul((tied ? w["model.embed_tokens.weight"] : w["lm_head.weight"]).t());   // (T, V)
        if (finalCap is double fc) logits = (logits / fc).tanh() * fc;
        return logits.MoveToOuterDisposeScope();
    }

    /// <summary>cos/sin (T, R) for positions 0..T−1: default, linear and longrope (modeling_rope_utils), in float64.</summary>
    static (Tensor Cos, Tensor Sin) Rope(JsonObject cfg, double theta, int r, int t, bool applyScaling)
    {
        var inv = new double[r / 2];
        for (int i = 0; i < r / 2; i++) inv[i] = 1.0 / Math.Pow(theta, 2.0 * i / r);
        double attention = 1.0;
        if (applyScaling && cfg["rope_scaling"] is JsonObject rs)
        {
            string kind = Str(rs, "rope_type") ?? Str(rs, "type")!;
            if (kind == "linear") for (int i = 0; i < inv.Length; i++) inv[i] /= Dbl(rs, "factor")!.Value;
            else if (kind == "longrope")
            {
                int original = Int(rs, "original_max_position_embeddings") ?? Int(cfg, "original_max_position_embeddings")!.Value;
                double factor = Dbl(rs, "factor") ?? (double)Int(cfg, "max_position_embeddings")!.Value / original;
                attention = Dbl(rs, "attention_factor") ?? (factor <= 1 ? 1.0 : Math.Sqrt(1 + Math.Log(factor) / Math.Log(original)));
                // seq_len = max(position_ids) + 1 = T picks the long factors past the original context.
                var ext = ((JsonArray)rs[t > original ? "long_factor" : "short_factor"]!).Select(n => n!.GetValue<double>()).ToArray();
                for (int i = 0; i < inv.Length; i++) inv[i] = 1.0 / (ext[i] * Math.Pow(theta, 2.0 * i / r));
            }
            else throw new NotSupportedException(kind);
        }
        var angles = new double[t * r];
        for (int pos = 0; pos < t; pos++)
            for (int i = 0; i < r / 2; i++) angles[pos * r + i] = angles[pos * r + i + r / 2] = pos * inv[i];
        var a = tensor(angles, [t, r], dtype: ScalarType.Float64);
        return (a.cos() * attention, a.sin() * attention);
    }

    /// <summary>x (T, heads, D): the first R dims of each head become x·cos + rotate_half(x)·sin; the rest pass.</summary>
    static Tensor Rotate(Tensor x, Tensor cos, Tensor sin)
    {
        long r = cos.shape[1], d = x.shape[2], half = r / 2;
        var rot = x.narrow(2, 0, r);
        var rotated = cat([rot.narrow(2, half, half).neg(), rot.narrow(2, 0, half)], 2);
        var turned = rot * cos.unsqueeze(1) + rotated * sin.unsqueeze(1);
        return r == d ? turned : cat([turned, x.narrow(2, r, d - r)], 2);
    }

    static string? Str(JsonObject o, string k) => o[k] is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;
    static int? Int(JsonObject o, string k) => o[k] is JsonValue v ? v.GetValue<int>() : null;
    static double? Dbl(JsonObject o, string k) => o[k] is JsonValue v ? (v.TryGetValue<int>(out var i) ? i : v.GetValue<double>()) : null;
    static bool? Bool(JsonObject o, string k) => o[k] is JsonValue v ? v.GetValue<bool>() : null;
}
