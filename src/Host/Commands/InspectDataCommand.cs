using System.CommandLine;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Rlft.Actors.Compute;
using Rlft.Actors.Jobs;
using Rlft.Policy.Chat;
using Rlft.Policy.Checkpoints;
using Rlft.Policy.Models;
using Rlft.Policy.Tokenization;
using Rlft.Rollout.Data;
using Rlft.Rollout.Tasks;

namespace Rlft.Host.Commands;

/// <summary>
/// `rlft inspect-data JOB.conf --stage N [--limit K] [--json]`: the first K examples of a stage exactly as its trainer
/// will see them — the text (a conversation rendered by the stage's chat template), the token ids, and which tokens
/// carry loss; both sides of a preference pair; an online stage's prompts as rendered for generation. In a terminal
/// the loss-carrying tokens are highlighted; written elsewhere they are bracketed ⟦…⟧ and their ids starred. With
/// --json, one object per example: <c>text</c>, <c>input_ids</c>, <c>loss_mask</c> (0/1), under <c>chosen</c> and
/// <c>rejected</c> for pairs. The job is validated first (model and data, as rlft run does); nothing is trained, and
/// for a job that makes its own model only the tokenizer is made.
/// </summary>
internal static class InspectDataCommand
{
    static readonly JsonSerializerOptions Json = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
    const string Highlight = "\u001b[1;4;32m", Reset = "\u001b[0m";

    public static Command Create()
    {
        var job = new Argument<string>("job") { Description = "Job file (HOCON), e.g. hocon/chat.conf" };
        var stage = new Option<int>("--stage") { Description = "The stage's index (0 = the first).", Required = true };
        var limit = new Option<int>("--limit") { Description = "Examples to show (default 3).", DefaultValueFactory = _ => 3 };
        var json = new Option<bool>("--json") { Description = "One JSON object per example: text, input_ids, loss_mask." };
        var set = new Option<string[]>("--set") { Description = "Override a job key: --set seed=3 (repeatable)", AllowMultipleArgumentsPerToken = false };
        var command = new Command("inspect-data", "Show a stage's first examples as the trainer sees them: text, token ids, and the tokens that carry loss.")
            { job, stage, limit, json, set };
        command.SetAction(result => ModelCommandSupport.Guard(() =>
        {
            var output = result.InvocationConfiguration.Output;
            int k = result.GetValue(limit);
            if (k < 1) throw new CliException($"--limit must be at least 1 (got {k})");
            var spec = JobSpec.LoadChecked(result.GetValue(job)!, result.GetValue(set) ?? [], JobParts.Learner);
            int index = result.GetValue(stage);
            if (index < 0 || index >= spec.Stages.Count)
                throw new CliException($"--stage {index}: the job has {spec.Stages.Count} stage{(spec.Stages.Count == 1 ? "" : "s")} (0 to {spec.Stages.Count - 1})");
            if (spec.Stages[index].TrainsEncoder)
                throw new CliException($"--stage {index}: stage {spec.Stages[index].Name} trains an encoder, whose examples are texts with labels or answers as the data file holds them (inspect-data shows the policy's token-level examples)");
            bool color = !result.GetValue(json) && ReferenceEquals(output, Console.Out) && !Console.IsOutputRedirected
                         && Environment.GetEnvironmentVariable("NO_COLOR") is null;
            Inspect(spec, spec.Stages[index], k, result.GetValue(json), color, output);
            return 0;
        }));
        return command;
    }

    static void Inspect(JobSpec job, StageSpec stage, int limit, bool json, bool color, TextWriter output)
    {
        string scratch = Directory.CreateTempSubdirectory("rlft-inspect").FullName;
        try
        {
            string modelDir = TokenizerDirectory(job, scratch);
            using var tokenizer = HfTokenizer.Load(modelDir);
            var encoder = ModelFiles.Encoder(modelDir, tokenizer, job.ChatTemplateFor(stage));
            string data = DataPath(job, stage, scratch);
            string Where(string where) => stage.Data.StartsWith("builtin:", StringComparison.Ordinal) ? stage.Data + where[data.Length..] : where;
            var show = new Shower(tokenizer, color, output);
            if (!json)
            {
                string template = job.ChatTemplateFor(stage) ?? (encoder.Template is null ? "none" : "the model's");
                output.WriteLine($"stage {stage.Index} ({stage.Name}, {Kind(stage)}): {stage.Data}; chat template: {template}; loss: {LossText(stage)}");
                output.WriteLine(color ? $"loss-carrying tokens are {Highlight}highlighted{Reset}" : "loss-carrying tokens are ⟦bracketed⟧ in the text and starred in the ids");
            }
            switch (stage.Kind)
            {
                case StageKind.Sft or StageKind.Distill:
                    var loss = new SftLoss(stage.CompletionOnlyLoss, stage.AssistantOnlyLoss);
                    foreach (var r in DatasetFormats.ReadSft(data).Take(limit))
                    {
                        var e = r.Encode(encoder, loss);
                        if (json) output.WriteLine(new JsonObject { ["where"] = Where(r.Where), ["example"] = Object(tokenizer, e) }.ToJsonString(Json));
                        else show.Example(Where(r.Where), e);
                    }
                    break;
                case StageKind.Dpo or StageKind.RewardModel:
                    foreach (var r in DatasetFormats.ReadPreferences(data).Take(limit))
                    {
                        var p = r.Encode(encoder);
                        if (json)
                            output.WriteLine(new JsonObject { ["where"] = Where(r.Where), ["chosen"] = Object(tokenizer, p.Chosen), ["rejected"] = Object(tokenizer, p.Rejected) }.ToJsonString(Json));
                        else
                        {
                            show.Example(Where(r.Where) + " chosen", p.Chosen);
                            show.Example(Where(r.Where) + " rejected", p.Rejected);
                        }
                    }
                    break;
                default:
                    foreach (var r in DatasetFormats.ReadPrompts(data).Take(limit))
                    {
                        var ids = r.Encode(encoder);
                        var prompt = new EncodedExample(ids, ids.Length, new bool[ids.Length]);
                        if (json)
                        {
                            var o = new JsonObject { ["where"] = Where(r.Where), ["prompt"] = Object(tokenizer, prompt) };
                            if (r.Answer is not null) o["answer"] = r.Answer;
                            output.WriteLine(o.ToJsonString(Json));
                        }
                        else show.Example(Where(r.Where) + " prompt", prompt);
                    }
                    break;
            }
        }
        finally { Directory.Delete(scratch, true); }
    }

    static string Kind(StageSpec stage) => stage.Kind switch
    {
        StageKind.RewardModel => "reward-model",
        StageKind.OnlineDpo => "online-dpo",
        var k => k.ToString().ToLowerInvariant(),
    };

    static string LossText(StageSpec stage) => stage.Kind switch
    {
        StageKind.Sft or StageKind.Distill => (stage.CompletionOnlyLoss, stage.AssistantOnlyLoss) switch
        {
            (true, true) => "completions only; in conversations every assistant turn and its end-of-turn token",
            (false, true) => "whole prompt/completion texts; in messages conversations every assistant turn and its end-of-turn token",
            (true, false) => "completions only; messages conversations whole",
            _ => "whole texts",
        },
        StageKind.Dpo or StageKind.RewardModel => "each side's completion (the reward model reads the whole sequence)",
        _ => "the replies sampled to these prompts (rendered with the generation prompt)",
    };

    /// <summary>
    /// A directory with the model's tokenizer files: the checkpoint's, the run's init-model when it holds the job's model, else the
    /// tokenizer the job's init model will have, made into <paramref name="scratch"/>.
    /// </summary>
    static string TokenizerDirectory(JobSpec job, string scratch)
    {
        if (job.Model.Path is { } path) return path;
        if (InitModel.Existing(Path.Combine(job.RunDirectory, "init-model"), job.Model, job.Seed) is { } init) return init;
        string dir = Path.Combine(scratch, "tokenizer");
        ModelPresets.InitTokenizer(job.Model.Preset, dir, ReviewTask.TokenizerCorpus(job.Seed), chatTemplate: job.Model.ChatTemplate);
        return dir;
    }

    /// <summary>The stage's dataset file: a built-in one is the run's copy when it exists, else written into <paramref name="scratch"/>.</summary>
    static string DataPath(JobSpec job, StageSpec stage, string scratch)
    {
        string key = $"rlft.job.stages[{stage.Index}].data";
        if (!stage.Data.StartsWith("builtin:", StringComparison.Ordinal)) return DataResolver.Resolve(stage.Data, job.RunDirectory, job.Seed, key);
        string existing = Path.Combine(job.RunDirectory, "data", stage.Data["builtin:".Length..] + ".jsonl");
        return File.Exists(existing) ? existing : DataResolver.Resolve(stage.Data, scratch, job.Seed, key);
    }

    static JsonObject Object(ITokenizer tokenizer, EncodedExample e) => new()
    {
        ["text"] = tokenizer.DecodeWithSpecialTokens(e.Ids),
        ["input_ids"] = new JsonArray(e.Ids.Select(i => (JsonNode)i).ToArray()),
        ["loss_mask"] = new JsonArray(e.LossMask.Select(m => (JsonNode)(m ? 1 : 0)).ToArray()),
    };

    /// <summary>The terminal form: the text with the loss-carrying runs marked, then the ids.</summary>
    sealed class Shower(ITokenizer tokenizer, bool color, TextWriter output)
    {
        public void Example(string title, EncodedExample e)
        {
            output.WriteLine();
            output.WriteLine($"── {title}: {e.Ids.Length} tokens, {e.LossTokens} carry loss");
            var text = new StringBuilder();
            for (int i = 0; i < e.Ids.Length;)
            {
                int j = i;
                while (j < e.Ids.Length && e.LossMask[j] == e.LossMask[i]) j++;
                string run = tokenizer.DecodeWithSpecialTokens(e.Ids[i..j]);
                text.Append(!e.LossMask[i] ? run : color ? Highlight + run + Reset : "⟦" + run + "⟧");
                i = j;
            }
            output.WriteLine(text.ToString());
            var ids = e.Ids.Select((id, i) => !e.LossMask[i] ? id.ToString() : color ? Highlight + id + Reset : id + "*");
            output.WriteLine("ids: " + string.Join(' ', ids));
        }
    }
}
