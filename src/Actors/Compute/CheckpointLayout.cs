using static TorchSharp.torch;

namespace Rlft.Actors.Compute;

/// <summary>Where a checkpoint keeps each part; written by SaveCheckpoint and read back on resume.</summary>
internal static class CheckpointLayout
{
    public const string Policy = "policy", Adapter = "policy-adapter", ValueHead = "value_head.safetensors";
    public const string RewardModel = "reward-model", RewardHead = "reward_head.safetensors";
    /// <summary>trainer/: the training state beyond the weights.</summary>
    public const string Trainer = "trainer", Reference = "reference", Optimizer = "optimizer.bin", PpoShuffle = "ppo_shuffle.bin", GlobalRng = "rng.bin";
    /// <summary>trainer/reference-adapter: with a quantized base, the adapters as the current stage found them (its reference).</summary>
    public const string ReferenceAdapter = "reference-adapter";

    /// <summary>
    /// Writes a checkpoint beside its final name (<c>DIR.partial</c>) and renames it when complete: a process killed
    /// mid-write leaves no half checkpoint at <paramref name="directory"/> for anyone to read.
    /// </summary>
    public static void WriteAtomically(string directory, Action<string> write)
    {
        string partial = directory + ".partial";
        if (Directory.Exists(partial)) Directory.Delete(partial, recursive: true);
        Directory.CreateDirectory(partial);
        write(partial);
        if (Directory.Exists(directory)) Directory.Delete(directory, recursive: true);
        Directory.Move(partial, directory);
    }

    public static void SaveRng(Generator generator, string path)
    {
        using var state = generator.get_state();
        File.WriteAllBytes(path, state.data<byte>().ToArray());
    }

    public static void LoadRng(Generator generator, string path)
    {
        using var state = tensor(File.ReadAllBytes(path), dtype: ScalarType.Byte);
        generator.set_state(state);
    }
}

/// <summary>trainer_state.json in a checkpoint: versions and the KL coefficient.</summary>
internal sealed record TrainerState(long PolicyVersion, long RewardModelVersion, long AdapterBaseVersion, double? KlCoef)
{
    const string FileName = "trainer_state.json";
    static readonly System.Text.Json.JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = System.Text.Json.JsonNamingPolicy.SnakeCaseLower,
    };

    public void Write(string checkpoint) => File.WriteAllText(Path.Combine(checkpoint, FileName), System.Text.Json.JsonSerializer.Serialize(this, Json) + "\n");

    public static TrainerState Read(string checkpoint)
    {
        string path = Path.Combine(checkpoint, FileName);
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: not found (not a checkpoint written by rlft?)", path);
        return System.Text.Json.JsonSerializer.Deserialize<TrainerState>(File.ReadAllText(path), Json) ?? throw new InvalidDataException($"{path}: empty");
    }
}
