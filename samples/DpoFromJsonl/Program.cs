// DPO on the program's own preference data: it writes a JSONL file of {"prompt", "chosen", "rejected"} pairs (your data
// would already be one), builds a DPO job on it in code, follows the job's events with await foreach, then loads the
// trained policy (a Hugging Face checkpoint) with Rlft.Policy and answers one prompt with it.
// Usage: Rlft.Samples.DpoFromJsonl [OUTPUT_DIR] [STEPS]
using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Rlft.Hosting;
using Rlft.Policy.Checkpoints;
using Rlft.Policy.Generation;
using Rlft.Policy.Tokenization;

string output = Path.GetFullPath(args.Length > 0 ? args[0] : "runs");
int steps = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 10;

// The data: answers that end with a polite word preferred over the same answers without it.
string data = Path.Combine(output, "my-preferences.jsonl");
Directory.CreateDirectory(output);
string[] topics = ["the sea", "a tree", "the sun", "a cat", "the moon", "a river", "the sky", "a bird"];
File.WriteAllLines(data, topics.SelectMany(t => new[]
{
    JsonSerializer.Serialize(new { prompt = $"Tell me about {t}.", chosen = $"It is {t}, thank you.", rejected = $"It is {t}." }),
    JsonSerializer.Serialize(new { prompt = $"Describe {t}.", chosen = $"I like {t}, thank you.", rejected = $"I like {t}." }),
}));

var job = RlftJob.Create("dpo-from-jsonl")
    .Seed(11).Device("cpu").OutputDir(output)
    .InitModel("gpt2", "tiny")
    .Set("eval-prompts", 8)
    .Stage(RlftStage.Dpo(RlftData.File(data), steps, batchSize: 8)
        .LearningRate(1e-3)
        .Set("dpo.beta", 0.1))
    .Build();

var builder = Host.CreateApplicationBuilder();
builder.Services.AddRlft();
using var host = builder.Build();
var runner = host.Services.GetRequiredService<IRlftJobRunner>();
using var cancel = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) => { e.Cancel = true; cancel.Cancel(); };

await foreach (var e in runner.RunAsync(job, cancel.Token))
{
    switch (e)
    {
        case StageStarted s: Console.WriteLine($"stage {s.Stage} {s.Name} ({s.Kind}, {s.Steps} steps)"); break;
        case StepCompleted s when s.Metrics.TryGetValue("loss/dpo", out var loss): Console.WriteLine($"step {s.Step}/{s.Steps} loss/dpo {loss:F4}"); break;
        case StageEnded s: Console.WriteLine($"stage {s.Stage} ended"); break;
        case JobEnded end:
            Console.WriteLine($"job {end.Outcome}: {end.Message}");
            Console.WriteLine($"run directory: {end.RunDirectory}");
            if (!end.Succeeded) return 1;
            var (tokens, text) = Answer(end.RunDirectory, "Tell me about the sea.");
            Console.WriteLine($"completion ({tokens} tokens): {text}");
            return 0;
    }
}
return 1;

// The last checkpoint's policy directory holds config.json, model.safetensors and the tokenizer, as transformers saves them.
static (int Tokens, string Text) Answer(string runDirectory, string prompt)
{
    string policy = Directory.GetDirectories(Path.Combine(runDirectory, "checkpoints"), "step-*")
        .OrderBy(d => int.Parse(Path.GetFileName(d)["step-".Length..], CultureInfo.InvariantCulture)).Last();
    policy = Path.Combine(policy, "policy");
    using var tokenizer = HfTokenizer.Load(policy);
    using var model = Checkpoint.Load(policy);
    var result = TextGenerator.Generate(model, [tokenizer.Encode(prompt)], new GenerationOptions { MaxNewTokens = 8, Temperature = 0 },
        tokenizer.PadId, tokenizer.EosId);
    return (result.Tokens[0].Length, tokenizer.Decode(result.Tokens[0]));
}
