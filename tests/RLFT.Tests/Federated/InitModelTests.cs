using System.Text.Json;
using Rlft.Actors.Compute;
using Rlft.Actors.Jobs;
using Rlft.Policy.Checkpoints;

namespace Rlft.Tests.Federated;

/// <summary>
/// The preset model a job without model.path starts from (the learner's run/init-model, a client node's work
/// directory): a directory written for another model is replaced, the same model is reused, and a directory left by a
/// process killed while writing is never loaded. A client node's work directory is named after its port, so a client
/// that once ran another job on that port must not train (or be refused for) that job's model.
/// </summary>
public sealed class InitModelTests
{
    static readonly ModelSpec Tiny = new(null, "gpt2", "tiny");
    static readonly ModelSpec Small = new(null, "gpt2", "small");

    static int Width(string dir) => JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, Checkpoint.ConfigFile))).RootElement.GetProperty("n_embd").GetInt32();
    static byte[] Weights(string dir) => File.ReadAllBytes(Path.Combine(dir, Checkpoint.WeightsFile));

    [Fact]
    public void A_directory_written_for_another_preset_or_seed_is_replaced_and_the_same_model_is_reused()
    {
        string parent = Directory.CreateTempSubdirectory("rlft-init").FullName;
        string dir = Path.Combine(parent, "init-model");

        InitModel.Ensure(dir, Tiny, seed: 1);
        Assert.Equal(64, Width(dir));
        var written = File.GetLastWriteTimeUtc(Path.Combine(dir, Checkpoint.WeightsFile));
        File.SetLastWriteTimeUtc(Path.Combine(dir, Checkpoint.WeightsFile), written.AddHours(-1));
        InitModel.Ensure(dir, Tiny, seed: 1);
        Assert.Equal(written.AddHours(-1), File.GetLastWriteTimeUtc(Path.Combine(dir, Checkpoint.WeightsFile)));   // reused, not rewritten

        InitModel.Ensure(dir, Small, seed: 1);
        Assert.Equal(256, Width(dir));
        var seed1 = Weights(dir);
        InitModel.Ensure(dir, Small, seed: 2);
        Assert.Equal(256, Width(dir));
        Assert.NotEqual(seed1, Weights(dir));
        Assert.Equal(InitModel.Identity(Small, 2), File.ReadAllText(Path.Combine(dir, InitModel.IdentityFile)));
        // What reads a run's model before the job writes it (memory estimate, data lengths) takes only the job's own.
        Assert.Equal(dir, InitModel.Existing(dir, Small, 2));
        Assert.Null(InitModel.Existing(dir, Small, 1));
        Assert.Null(InitModel.Existing(dir, Tiny, 2));
        Assert.Null(InitModel.Existing(Path.Combine(parent, "none"), Small, 2));

        // Nothing but the model itself is left beside it.
        Assert.Equal(["init-model"], Directory.GetFileSystemEntries(parent).Select(Path.GetFileName));
    }

    [Fact]
    public void A_directory_left_half_written_is_written_again()
    {
        string parent = Directory.CreateTempSubdirectory("rlft-init").FullName;
        string dir = Path.Combine(parent, "init-model");
        InitModel.Ensure(dir, Tiny, seed: 1);
        var whole = Weights(dir);
        // As a writer killed after config.json left it (the tokenizer and the identity not yet there), weights cut short.
        foreach (var f in Directory.GetFiles(dir).Where(f => Path.GetFileName(f) is not (Checkpoint.ConfigFile or Checkpoint.WeightsFile))) File.Delete(f);
        File.WriteAllBytes(Path.Combine(dir, Checkpoint.WeightsFile), whole[..(whole.Length / 2)]);

        InitModel.Ensure(dir, Tiny, seed: 1);
        Assert.Equal(whole, Weights(dir));
        Assert.True(File.Exists(Path.Combine(dir, "tokenizer.json")));
    }
}
