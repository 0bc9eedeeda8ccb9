using Rlft.Policy.Checkpoints;
using Rlft.Policy.Quantization;

namespace Rlft.Actors.Compute;

/// <summary>
/// What a quantized base (<c>rlft.job.model.quantize</c>) changes around the learner: its blobs carry
/// <c>quantization_config.json</c> (replicas rebuild the 4/8-bit layout and receive the quantized tensors, not fp32),
/// and a checkpoint's <c>policy/</c> is the checkpoint the base was quantized from, byte for byte, plus that file:
/// quantizing it again gives the same base bit for bit, so a resumed run continues on exactly the same weights.
/// </summary>
internal static class QuantizedBase
{
    /// <summary>The model files a quantized base's blob carries: config and tokenizer, and the quantization settings.</summary>
    public static Dictionary<string, string> BlobFiles(IReadOnlyDictionary<string, string> modelFiles, QuantizationOptions options)
    {
        var files = new Dictionary<string, string>(modelFiles);
        files[QuantizationOptions.FileName] = options.ToJson().ToJsonString();
        return files;
    }

    /// <summary>
    /// Writes <paramref name="policyDir"/>: config, weights (single file or shards with their index) and tokenizer files
    /// copied from <paramref name="sourceDir"/>, and quantization_config.json.
    /// </summary>
    public static void SaveBase(string sourceDir, string policyDir, QuantizationOptions options)
    {
        Directory.CreateDirectory(policyDir);
        var files = Checkpoint.WeightFiles(sourceDir).Select(Path.GetFileName)
            .Concat([Checkpoint.ConfigFile, Checkpoint.IndexFile, Checkpoint.BinIndexFile, .. Checkpoint.TokenizerFiles])
            .Where(f => File.Exists(Path.Combine(sourceDir, f!)));
        foreach (var file in files.Distinct())
            File.Copy(Path.Combine(sourceDir, file!), Path.Combine(policyDir, file!), overwrite: true);
        options.Save(policyDir);
    }

    /// <summary>
    /// Refuses to continue a checkpoint whose base was quantized differently from what the job now asks: its
    /// adapters were trained on that base.
    /// </summary>
    public static void CheckResumable(string policyDir, QuantizationOptions wanted)
    {
        var saved = QuantizationOptions.Load(policyDir)
            ?? throw new InvalidDataException($"{policyDir}: no {QuantizationOptions.FileName}; this checkpoint's base was not quantized, the job's is (rlft.job.model.quantize)");
        if (saved.ToJson().ToJsonString() != wanted.ToJson().ToJsonString())
            throw new InvalidDataException($"{Path.Combine(policyDir, QuantizationOptions.FileName)}: the checkpoint's base was quantized as {saved.ToJson().ToJsonString()}, the job asks {wanted.ToJson().ToJsonString()}; its adapters belong to the former");
    }
}
