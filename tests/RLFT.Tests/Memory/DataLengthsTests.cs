using System.Text;
using System.Text.Json;
using Rlft.Actors.Compute;
using Rlft.Actors.Configuration;
using Rlft.Actors.Jobs;
using Rlft.Policy.Checkpoints;
using Rlft.Policy.Memory;
using Rlft.Policy.Models;
using Rlft.Policy.Tokenization;
using Rlft.Policy.Training.Trainers;

namespace Rlft.Tests.Memory;

/// <summary>
/// The memory estimate reads the token lengths of a job's data: the longest offline example (a pair's longer side) and
/// the longest online prompt, encoded as the stage encodes them; without a tokenizer, line bytes bound them.
/// </summary>
public sealed class DataLengthsTests : IDisposable
{
    readonly string _root = Directory.CreateTempSubdirectory("rlft-lengths").FullName;

    public void Dispose() => Directory.Delete(_root, true);

    string Model()
    {
        string tok = Path.Combine(_root, "tok"), dir = Path.Combine(_root, "model");
        if (Directory.Exists(dir)) return dir;
        ModelPresets.InitTokenizer("tiny", tok);
        using var t = HfTokenizer.Load(tok);
        var config = ModelConfig.Parse(new System.Text.Json.Nodes.JsonObject
        {
            ["model_type"] = "gpt2", ["vocab_size"] = t.VocabSize, ["n_embd"] = 32, ["n_layer"] = 1, ["n_head"] = 2, ["n_positions"] = 512,
            ["bos_token_id"] = t.EosId, ["eos_token_id"] = t.EosId, ["pad_token_id"] = t.PadId,
        });
        Checkpoint.SaveInitialized(config, dir, seed: 1, tok);
        return dir;
    }

    string Write(string name, params object[] records)
    {
        string path = Path.Combine(_root, name);
        File.WriteAllLines(path, records.Select(r => JsonSerializer.Serialize(r)));
        return path;
    }

    JobSpec Job(string stage, string? model)
    {
        string modelKey = model is null ? "arch = gpt2, preset = tiny" : $"path = {JsonSerializer.Serialize(model)}";
        string text = $"rlft.job {{ name = lengths, device = cpu, output-dir = {JsonSerializer.Serialize(Path.Combine(_root, "runs"))}\n model {{ {modelKey} }}\n stages = [ {{ {stage} }} ] }}";
        return JobSpec.Parse(RlftConfig.ParseText(text, "job.conf"));
    }

    static string Q(string path) => JsonSerializer.Serialize(path);

    [Fact]
    public void An_offline_stage_is_estimated_at_its_longest_example_as_the_model_encodes_it()
    {
        string model = Model();
        string longCompletion = string.Join(" ", Enumerable.Repeat("the movie was great", 30));
        string sft = Write("sft.jsonl", new { prompt = "Review:", completion = " fine." }, new { prompt = "Review:", completion = " " + longCompletion }, new { prompt = "Q", completion = " ok" });
        var job = Job($"kind = sft, data = {Q(sft)}, steps = 1, batch-size = 4", model);

        using var tokenizer = HfTokenizer.Load(model);
        var encoder = ModelFiles.Encoder(model, tokenizer);
        int longest = Rlft.Rollout.Data.DatasetFormats.ReadSft(sft).Max(r => r.Encode(encoder).Ids.Length);
        Assert.True(longest > 60, $"the long example is {longest} tokens");

        var stage = JobMemory.Describe(job).Stages.Single();
        Assert.Equal(longest, stage.SequenceTokens);
        // The activations line of the estimate uses it.
        Assert.Contains(JobMemory.Estimate(job).Items, i => i.What.StartsWith($"activations (4 × {longest} tokens", StringComparison.Ordinal));
        // Given lengths win over the data's.
        Assert.Null(JobMemory.Describe(job, sequenceTokens: 100).Stages.Single().SequenceTokens);
        Assert.Contains(JobMemory.Estimate(job, sequenceTokens: 100).Items, i => i.What.StartsWith("activations (4 × 100 tokens", StringComparison.Ordinal));
    }

    [Fact]
    public void A_pair_counts_its_longer_side_and_eval_data_counts_too()
    {
        string model = Model();
        string train = Write("pairs.jsonl", new { prompt = "Review:", chosen = " good.", rejected = " bad." });
        string eval = Write("eval-pairs.jsonl", new { prompt = "Review:", chosen = " good.", rejected = " " + string.Join(" ", Enumerable.Repeat("bad", 40)) });
        using var tokenizer = HfTokenizer.Load(model);
        var encoder = ModelFiles.Encoder(model, tokenizer);
        var pair = Rlft.Rollout.Data.DatasetFormats.ReadPreferences(eval).Single().Encode(encoder);
        int longest = Math.Max(pair.Chosen.Ids.Length, pair.Rejected.Ids.Length);
        Assert.True(pair.Rejected.Ids.Length > pair.Chosen.Ids.Length + 20);

        var stage = JobMemory.Describe(Job($"kind = dpo, data = {Q(train)}, eval-data = {Q(eval)}, steps = 1, batch-size = 2", model)).Stages.Single();
        Assert.Equal(longest, stage.SequenceTokens);
        Assert.Null(stage.PromptTokens);
    }

    [Fact]
    public void An_online_stage_is_estimated_at_its_longest_prompt()
    {
        string model = Model();
        string longPrompt = "Write a review of " + string.Join(" and ", Enumerable.Repeat("the movie", 25)) + ":";
        string prompts = Write("prompts.jsonl", new { prompt = "Hi" }, new { prompt = longPrompt });
        using var tokenizer = HfTokenizer.Load(model);
        int longest = Rlft.Rollout.Data.DatasetFormats.ReadPrompts(prompts).Max(r => r.Encode(ModelFiles.Encoder(model, tokenizer)).Length);

        var stage = JobMemory.Describe(Job($"kind = ppo, data = {Q(prompts)}, steps = 1, batch-size = 4, sampling {{ max-new-tokens = 8 }}", model)).Stages.Single();
        Assert.Equal(longest, stage.PromptTokens);
        Assert.Null(stage.SequenceTokens);
        Assert.Contains(JobMemory.Estimate(Job($"kind = ppo, data = {Q(prompts)}, steps = 1, batch-size = 4, sampling {{ max-new-tokens = 8 }}", model)).Items,
            i => i.What.Contains($"× {longest + 8} tokens", StringComparison.Ordinal));
    }

    [Fact]
    public void Without_a_tokenizer_yet_the_longest_line_in_bytes_bounds_the_tokens()
    {
        string line = JsonSerializer.Serialize(new { prompt = "Prix:", completion = " très cher, ça." });
        string sft = Write("sft.jsonl", new { prompt = "a", completion = " b" }, new { prompt = "Prix:", completion = " très cher, ça." });
        // A preset the run has not made: no tokenizer exists before the run.
        var stage = JobMemory.Describe(Job($"kind = sft, data = {Q(sft)}, steps = 1, batch-size = 4", model: null)).Stages.Single();
        Assert.Equal(Encoding.UTF8.GetByteCount(line), stage.SequenceTokens);
    }

    [Fact]
    public void Built_in_data_is_measured_without_writing_into_the_run_directory()
    {
        var job = Job("kind = sft, data = \"builtin:sft\", steps = 1, batch-size = 4", Model());
        var stage = JobMemory.Describe(job).Stages.Single();
        Assert.InRange(stage.SequenceTokens!.Value, 5, 100);
        Assert.False(Directory.Exists(Path.Combine(_root, "runs")));
    }

    [Fact]
    public void Data_that_cannot_be_read_is_not_measured_and_the_assumed_length_stands()
    {
        var job = Job($"kind = sft, data = {Q(Path.Combine(_root, "missing.jsonl"))}, steps = 1, batch-size = 4", Model());
        var described = JobMemory.Describe(job);
        Assert.Null(described.Stages.Single().SequenceTokens);
        Assert.Contains(MemoryEstimator.Estimate(described).Items, i => i.What.StartsWith("activations (4 × 256 tokens", StringComparison.Ordinal));
    }

    [Fact]
    public void The_held_out_loss_in_batches_equals_one_pass_over_every_example()
    {
        using var tokenizer = HfTokenizer.Load(Model());
        var policy = new PolicyModel(Checkpoint.Load(Model()), tokenizer);
        var rng = new Random(5);
        var examples = Enumerable.Range(0, 11).Select(i =>
        {
            int n = rng.Next(3, 20), p = rng.Next(1, n);
            var ids = Enumerable.Range(0, n).Select(_ => rng.Next(1, tokenizer.VocabSize)).ToArray();
            return new Rlft.Policy.Chat.EncodedExample(ids, p, Enumerable.Range(0, n).Select(j => j >= p).ToArray());
        }).ToList();
        double whole = SftTrainer.Loss(policy, examples, batchSize: 1000);
        foreach (int size in new[] { 1, 3, 4, 10 })
            Assert.Equal(whole, SftTrainer.Loss(policy, examples, size), 5);
        Assert.True(whole > 0);
    }
}
