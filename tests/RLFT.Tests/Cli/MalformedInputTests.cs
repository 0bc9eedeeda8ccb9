using System.Text;
using System.Text.Json.Nodes;
using Rlft.Policy.Checkpoints;
using Rlft.Policy.Models;

namespace Rlft.Tests.Cli;

/// <summary>A valid tiny model (and a tokenizer too large for it) that the malformed-input cases copy and break.</summary>
public sealed class MalformedInputFixture : IDisposable
{
    public string Root { get; } = Directory.CreateTempSubdirectory("rlft-malformed").FullName;
    public string Model => Path.Combine(Root, "model");
    /// <summary>tokenizer.json of the small preset, whose vocabulary is larger than the tiny model's.</summary>
    public string LargeTokenizer => Path.Combine(Root, "large", "tokenizer.json");

    public MalformedInputFixture()
    {
        ModelPresets.InitModel("gpt2", "tiny", Model, seed: 1).Dispose();
        ModelPresets.InitModel("gpt2", "small", Path.Combine(Root, "large"), seed: 1).Dispose();
    }

    public void Dispose() => Directory.Delete(Root, recursive: true);
}

/// <summary>
/// The malformed-input corpus: bad model directories, datasets of every stage kind, reward specs, job keys, command
/// options and output paths. Each is refused before anything runs: exit 2, every line "rlft: …" naming the key, file
/// or line, no stack trace, and the file system exactly as it was (no run directory, nothing written).
/// </summary>
public class MalformedInputTests(MalformedInputFixture fixture) : IClassFixture<MalformedInputFixture>
{
    /// <summary>One bad input: what to break in a fresh case folder, the command, and what the error must name.</summary>
    public sealed record Case(string Name, Func<CaseDir, string[]> Arrange, params string[] Expected)
    {
        public override string ToString() => Name;
    }

    /// <summary>A fresh folder per case holding a copy of the valid model, valid datasets, and the job to run.</summary>
    public sealed class CaseDir(string root, MalformedInputFixture fixture)
    {
        public string Root { get; } = root;
        public MalformedInputFixture Fixture { get; } = fixture;
        public string Out => Path.Combine(Root, "out");
        public string Model => Path.Combine(Root, "model");
        public string Sft => Path.Combine(Root, "sft.jsonl");
        public string Prefs => Path.Combine(Root, "prefs.jsonl");
        public string Prompts => Path.Combine(Root, "prompts.jsonl");

        public string P(string name) => Path.Combine(Root, name).Replace('\\', '/');

        /// <summary>A job file with the given stages (default: one SFT stage) and extra keys inside rlft.job.</summary>
        public string Job(string? stages = null, string extra = "", string model = "", string around = "")
        {
            string path = Path.Combine(Root, "job.conf");
            File.WriteAllText(path, $$"""
                {{around}}
                rlft.job {
                  name = t
                  output-dir = "{{Out}}"
                  {{(model.Length > 0 ? model : $"model {{ path = \"{Model}\" }}")}}
                  {{extra}}
                  stages = [
                    {{stages ?? SftStage()}}
                  ]
                }
                """);
            return path;
        }

        public string SftStage(string? data = null) => $"{{ kind = sft, data = \"{data ?? Sft}\", steps = 2, batch-size = 2 }}";

        public string Stage(string kind, string data, string rest = "") => $"{{ kind = {kind}, data = \"{data}\", steps = 2, batch-size = 2\n {rest}\n }}";

        public string[] Run(string? stages = null, string extra = "") => ["run", Job(stages, extra)];

        public string Config => Path.Combine(Model, "config.json");
        public string Weights => Path.Combine(Model, "model.safetensors");
        public string Tokenizer => Path.Combine(Model, "tokenizer.json");

        public void EditConfig(Action<JsonObject> edit)
        {
            var o = JsonNode.Parse(File.ReadAllText(Config))!.AsObject();
            edit(o);
            File.WriteAllText(Config, o.ToJsonString());
        }

        /// <summary>Rewrites the weights with <paramref name="edit"/> applied to the tensor dictionary.</summary>
        public void EditWeights(Action<Dictionary<string, TorchSharp.torch.Tensor>> edit)
        {
            var tensors = SafetensorsFile.Load(Weights);
            edit(tensors);
            SafetensorsFile.Save(Weights, tensors);
            foreach (var t in tensors.Values) t.Dispose();
        }
    }

    static readonly string[] SftLines = ["{\"prompt\": \"a\", \"completion\": \"b\"}", "{\"prompt\": \"c\", \"completion\": \"d\"}"];
    static readonly string[] PrefLines = ["{\"prompt\": \"a\", \"chosen\": \"b\", \"rejected\": \"c\"}"];
    static readonly string[] PromptLines = ["{\"prompt\": \"a\", \"answer\": \"b\"}"];

    public static TheoryData<Case> Cases() => new(AllCases());

    static IEnumerable<Case> AllCases()
    {
        // ---- model directories ----
        yield return new("model path does not exist", d => ["run", d.Job(model: $"model {{ path = \"{d.P("no-model")}\" }}")], "rlft.job.model.path", "no such model directory");
        yield return new("model path is a file", d => { Directory.Delete(d.Model, true); File.WriteAllText(d.Model, "x"); return d.Run(); }, "rlft.job.model.path", "is a file");
        yield return new("no config.json", d => { File.Delete(d.Config); return d.Run(); }, "rlft.job.model.path", "config.json");
        yield return new("config.json is not JSON", d => { File.WriteAllText(d.Config, "{ not json"); return d.Run(); }, "config.json: invalid JSON");
        yield return new("config.json is a list", d => { File.WriteAllText(d.Config, "[1, 2]"); return d.Run(); }, "config.json: expected a JSON object");
        yield return new("unknown model_type", d => { d.EditConfig(o => o["model_type"] = "bert"); return d.Run(); }, "config.json", "'model_type' is 'bert'");
        yield return new("config misses a required field", d => { d.EditConfig(o => o.Remove("n_embd")); return d.Run(); }, "config.json", "n_embd");
        yield return new("config asks for an option not implemented", d => { d.EditConfig(o => o["activation_function"] = "relu"); return d.Run(); }, "config.json", "activation_function");
        yield return new("no weights file", d => { File.Delete(d.Weights); return d.Run(); }, "rlft.job.model.path", "no model.safetensors, model.safetensors.index.json, pytorch_model.bin or pytorch_model.bin.index.json");
        yield return new("pytorch_model.bin is garbage", d =>
        {
            File.Delete(d.Weights);
            File.WriteAllBytes(Path.Combine(d.Model, "pytorch_model.bin"), Encoding.UTF8.GetBytes("definitely not a torch.save archive"));
            return d.Run();
        }, "pytorch_model.bin", "not a torch.save zip archive");
        yield return new("pytorch_model.bin in the legacy format", d =>
        {
            File.Delete(d.Weights);
            File.WriteAllBytes(Path.Combine(d.Model, "pytorch_model.bin"), [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e]);
            return d.Run();
        }, "pytorch_model.bin", "legacy format", "safetensors");
        yield return new("truncated weights", d =>
        {
            using (var f = new FileStream(d.Weights, FileMode.Open)) f.SetLength(f.Length - 1000);
            return d.Run();
        }, "model.safetensors", "truncated");
        yield return new("weights file is garbage", d => { File.WriteAllBytes(d.Weights, Encoding.UTF8.GetBytes("definitely not safetensors")); return d.Run(); }, "model.safetensors");
        yield return new("a tensor is missing", d => { d.EditWeights(t => { t["transformer.h.0.ln_1.weight"].Dispose(); t.Remove("transformer.h.0.ln_1.weight"); }); return d.Run(); },
            "missing tensors: transformer.h.0.ln_1.weight");
        yield return new("an extra tensor", d => { d.EditWeights(t => t["transformer.h.0.surprise"] = TorchSharp.torch.zeros(3)); return d.Run(); },
            "unexpected tensors: transformer.h.0.surprise");
        yield return new("vocab_size does not match the weights", d => { d.EditConfig(o => o["vocab_size"] = 600); return d.Run(); },
            "wrong shapes", "transformer.wte.weight");
        yield return new("no tokenizer.json", d => { File.Delete(d.Tokenizer); return d.Run(); }, "tokenizer.json: missing");
        yield return new("tokenizer.json is not JSON", d => { File.WriteAllText(d.Tokenizer, "{\"model\": "); return d.Run(); }, "tokenizer.json: invalid JSON");
        yield return new("tokenizer ids beyond the vocabulary", d => { File.Copy(d.Fixture.LargeTokenizer, d.Tokenizer, true); return d.Run(); },
            "tokenizer.json", "the tokenizer's largest id is", "but the model's vocab_size is");
        yield return new("sharded index names a missing shard", d =>
        {
            File.Move(d.Weights, Path.Combine(d.Model, "model-00001-of-00002.safetensors"));
            File.WriteAllText(Path.Combine(d.Model, "model.safetensors.index.json"),
                "{\"weight_map\": {\"transformer.wte.weight\": \"model-00001-of-00002.safetensors\", \"transformer.wpe.weight\": \"model-00002-of-00002.safetensors\"}}");
            return d.Run();
        }, "model.safetensors.index.json", "shard model-00002-of-00002.safetensors is missing");
        yield return new("sharded index is not JSON", d =>
        {
            File.Delete(d.Weights);
            File.WriteAllText(Path.Combine(d.Model, "model.safetensors.index.json"), "{ weight_map");
            return d.Run();
        }, "model.safetensors.index.json: invalid JSON");
        yield return new("distillation without a teacher", d => d.Run(d.Stage("distill", d.Sft)), "rlft.job.stages[0].teacher.path", "needs a teacher");
        yield return new("teacher directory does not exist", d => d.Run(d.Stage("distill", d.Sft, $"teacher {{ path = \"{d.P("no-teacher")}\" }}")),
            "rlft.job.stages[0].teacher.path", "no such model directory");

        // ---- datasets, every stage kind ----
        yield return new("sft data file missing", d => d.Run(d.SftStage(d.P("none.jsonl"))), "rlft.job.stages[0].data", "none.jsonl: dataset file not found");
        yield return new("sft data file empty", d => { File.WriteAllText(d.Sft, "\n\n"); return d.Run(); }, "rlft.job.stages[0].data", "no records");
        yield return new("sft line is not JSON", d => { File.WriteAllLines(d.Sft, [SftLines[0], "{\"prompt\": "]); return d.Run(); }, "sft.jsonl:2: invalid JSON");
        yield return new("sft line is not an object", d => { File.WriteAllLines(d.Sft, ["[1, 2]"]); return d.Run(); }, "sft.jsonl:1: expected a JSON object");
        yield return new("sft line without completion", d => { File.WriteAllLines(d.Sft, [SftLines[0], "{\"prompt\": \"x\"}"]); return d.Run(); }, "sft.jsonl:2: completion: missing");
        yield return new("sft completion is a number", d => { File.WriteAllLines(d.Sft, ["{\"prompt\": \"x\", \"completion\": 4}"]); return d.Run(); }, "sft.jsonl:1: completion: expected a string, got a number");
        yield return new("sft line with invalid UTF-8", d =>
        {
            File.WriteAllLines(d.Sft, SftLines);
            using (var f = new FileStream(d.Sft, FileMode.Append)) f.Write([(byte)'{', (byte)'"', 0xC3, 0x28, (byte)'"', (byte)'}', (byte)'\n']);
            return d.Run();
        }, "sft.jsonl:3: invalid UTF-8");
        yield return new("sft data is a directory", d => { Directory.CreateDirectory(d.P("dir.jsonl")); return d.Run(d.SftStage(d.P("dir.jsonl"))); }, "dir.jsonl: is a directory");
        yield return new("reward-model pairs without rejected", d => { File.WriteAllLines(d.Prefs, ["{\"prompt\": \"a\", \"chosen\": \"b\"}"]); return d.Run(d.Stage("reward-model", d.Prefs)); },
            "rlft.job.stages[0].data", "prefs.jsonl:1: rejected: missing");
        yield return new("dpo chosen is null", d => { File.WriteAllLines(d.Prefs, ["{\"prompt\": \"a\", \"chosen\": null, \"rejected\": \"c\"}"]); return d.Run(d.Stage("dpo", d.Prefs)); },
            "prefs.jsonl:1: chosen: expected a string, got null");
        yield return new("ppo prompts without prompt", d => { File.WriteAllLines(d.Prompts, ["{\"question\": \"a\"}"]); return d.Run(d.Stage("ppo", d.Prompts)); },
            "prompts.jsonl:1: prompt: missing");
        yield return new("grpo answer is a number", d => { File.WriteAllLines(d.Prompts, ["{\"prompt\": \"2+2\", \"answer\": 4}"]); return d.Run(d.Stage("grpo", d.Prompts)); },
            "prompts.jsonl:1: answer: expected a string, got a number");
        yield return new("online-dpo prompts file missing", d => d.Run(d.Stage("online-dpo", d.P("gone.jsonl"))), "rlft.job.stages[0].data", "gone.jsonl: dataset file not found");
        yield return new("ppo eval-data malformed", d => { File.WriteAllLines(d.P("eval.jsonl"), ["nope"]); return d.Run(d.Stage("ppo", d.Prompts, $"eval-data = \"{d.P("eval.jsonl")}\"")); },
            "rlft.job.stages[0].eval-data", "eval.jsonl:1: invalid JSON");
        yield return new("distill data malformed", d => { File.WriteAllLines(d.Sft, ["{}"]); return d.Run(d.Stage("distill", d.Sft, $"teacher {{ path = \"{d.Model}\" }}")); },
            "sft.jsonl:1: messages: missing (an SFT line has \"messages\", or \"prompt\" and \"completion\")");
        yield return new("unknown built-in dataset", d => d.Run(d.SftStage("builtin:nothing")), "rlft.job.stages[0].data: unknown built-in dataset 'nothing'");
        yield return new("a later stage's dataset is named before the first trains", d => d.Run(string.Join("\n", d.SftStage(), d.Stage("dpo", d.P("later.jsonl")))),
            "rlft.job.stages[1].data", "later.jsonl: dataset file not found");
        yield return new("many bad lines are counted", d => { File.WriteAllLines(d.Sft, Enumerable.Repeat("{}", 25)); return d.Run(); }, "sft.jsonl:10:", "and 15 more problems");

        // ---- reward specs ----
        string ppo(CaseDir d, string rewards) => d.Stage("ppo", d.Prompts, $"rewards {{ {rewards} }}");
        yield return new("reward source type unknown", d => d.Run(ppo(d, "sources = [ { type = magic } ]")), "rlft.job.stages[0].rewards.sources[0].type", "'magic'");
        yield return new("reward component source unknown", d => d.Run(ppo(d, "components = [ { source = astrology } ]")), "rlft.job.stages[0].rewards.components[0].source", "'astrology'");
        yield return new("reward function not registered", d => d.Run(ppo(d, "components = [ { source = function, function = nope } ]")), "rlft.job.stages[0].rewards.components[0].function", "no reward function named 'nope'");
        yield return new("reward model without a reward-model stage", d => d.Run(ppo(d, "sources = [ { type = reward-model } ]")), "rlft.job.stages[0].rewards.sources", "reward-model stage");
        yield return new("reward model component without a reward-model stage", d => d.Run(ppo(d, "components = [ { source = reward-model, model = job } ]")), "rlft.job.stages[0].rewards.components[0]", "no reward-model stage comes before");
        yield return new("human raters without a feedback section", d => d.Run(ppo(d, "components = [ { source = human } ]")), "rlft.job.stages[0].rewards.components[0]", "no rlft.feedback section");
        yield return new("http scorer with a bad url", d => d.Run(ppo(d, "components = [ { source = http, url = \"ftp://x\" } ]")), "rlft.job.stages[0].rewards.components[0].url", "not an http(s) URL");
        yield return new("negative reward weight", d => d.Run(ppo(d, "components = [ { source = length, target = 5, weight = -1 } ]")), "rlft.job.stages[0].rewards.components[0].weight");
        yield return new("classifier source without a model directory", d => d.Run(ppo(d, $"components = [ {{ source = classifier, model = \"{d.P("no-classifier")}\", label = POSITIVE }} ]")),
            "rlft.job.stages[0].rewards.components[0].model", "no-classifier: no such model directory");
        yield return new("classifier source on a decoder model", d => d.Run(ppo(d, $"components = [ {{ source = classifier, model = \"{d.Model}\", label = POSITIVE }} ]")),
            "rlft.job.stages[0].rewards.components[0].model");
        yield return new("classifier score unknown", d => d.Run(ppo(d, "components = [ { source = classifier, model = x, label = POSITIVE, score = vibes } ]")),
            "rlft.job.stages[0].rewards.components[0].score", "'vibes'");
        yield return new("empty component list", d => d.Run(ppo(d, "components = []")), "rlft.job.stages[0].rewards.components", "at least one component");

        // ---- job keys ----
        yield return new("unknown job key", d => d.Run(extra: "colour = blue"), "rlft.job.colour: unknown key");
        yield return new("seed is not a number", d => d.Run(extra: "seed = abc"), "rlft.job.seed: expected an integer, got 'abc'");
        yield return new("no stages", d => d.Run("", ""), "rlft.job.stages: a job needs at least one stage");
        yield return new("stage without data", d => d.Run("{ kind = sft, steps = 2 }"), "rlft.job.stages[0].data: missing required key");
        yield return new("zero steps", d => d.Run("{ kind = sft, data = \"builtin:sft\", steps = 0 }"), "rlft.job.stages[0].steps: 0 is outside");
        yield return new("unknown stage kind", d => d.Run("{ kind = pretrain, data = \"builtin:sft\", steps = 2 }"), "rlft.job.stages[0].kind: 'pretrain' is not one of");
        yield return new("lora with a reward-model stage and no online stage", d => d.Run(d.Stage("reward-model", d.Prefs), "lora { rank = 4 }"), "rlft.job.stages[0]", "adapters attach at the start");
        yield return new("lora targets no projection of the model", d => d.Run(d.Stage("ppo", d.Prompts), "lora { target-modules = [ nothing_here ] }"), "rlft.job.lora.target-modules", "nothing_here");

        // ---- many tasks: replay, regularizers, early stopping, plateau, meta and adapt stages ----
        string two(CaseDir d, string second) => string.Join("\n", d.SftStage(), d.Stage("sft", d.Sft, second));
        yield return new("replay fraction of one", d => d.Run(two(d, "replay = 1")), "rlft.job.stages[1].replay: 1 is outside [0, 1)");
        yield return new("replay fraction below zero", d => d.Run(two(d, "replay = -0.1")), "rlft.job.stages[1].replay: -0.1 is outside [0, 1)");
        yield return new("replay on the first stage", d => d.Run(d.Stage("sft", d.Sft, "replay = 0.2")), "rlft.job.stages[0].replay: no earlier stage has sft data to replay");
        yield return new("replay with no earlier data of the kind", d => d.Run(string.Join("\n", d.SftStage(), d.Stage("dpo", d.Prefs, "replay = 0.2"))),
            "rlft.job.stages[1].replay: no earlier stage has preference data to replay");
        yield return new("ewc on the first stage", d => d.Run(d.Stage("sft", d.Sft, "ewc = 10")), "rlft.job.stages[0].ewc: needs an earlier stage that trained the policy");
        yield return new("negative l2-sp weight", d => d.Run(two(d, "l2-sp = -1")), "rlft.job.stages[1].l2-sp: -1 is outside [0,");
        yield return new("early stopping on a ppo stage", d => d.Run(d.Stage("ppo", d.Prompts, "early-stopping { patience = 2 }")), "rlft.job.stages[0].early-stopping: stops on a held-out loss", "schedule = plateau");
        yield return new("early stopping with zero patience", d => d.Run(d.Stage("sft", d.Sft, "early-stopping { patience = 0 }")), "rlft.job.stages[0].early-stopping.patience: 0 is outside [1,");
        yield return new("early stopping unknown key", d => d.Run(d.Stage("sft", d.Sft, "early-stopping { patients = 2 }")), "rlft.job.stages[0].early-stopping.patients: unknown key");
        yield return new("plateau settings without the plateau schedule", d => d.Run(d.Stage("sft", d.Sft, "optimizer { schedule = cosine, plateau { factor = 0.5 } }")),
            "rlft.job.stages[0].optimizer.plateau: applies to schedule = plateau");
        yield return new("plateau factor of one", d => d.Run(d.Stage("sft", d.Sft, "optimizer { schedule = plateau, plateau { factor = 1 } }")), "rlft.job.stages[0].optimizer.plateau.factor: 1 is outside (0, 1)");
        yield return new("meta stage without a task family", d => d.Run("{ kind = meta, steps = 2 }"), "rlft.job.stages[0].meta.tasks: a meta stage needs a task family");
        yield return new("meta stage on a dataset", d => d.Run($"{{ kind = meta, data = \"{d.Sft}\", steps = 2, meta {{ tasks = [add, max] }} }}"),
            "rlft.job.stages[0].data: a meta stage trains and evaluates on its tasks' data");
        yield return new("meta stage with an unknown task", d => d.Run("{ kind = meta, steps = 2, meta { tasks = [add, mod] } }"), "rlft.job.stages[0].meta.tasks[1]: unknown task 'mod'", "add, diff, times, max, min, join");
        yield return new("meta stage drawing more tasks than it has", d => d.Run("{ kind = meta, steps = 2, meta { tasks = [add, max], tasks-per-round = 3 } }"), "rlft.job.stages[0].meta.tasks-per-round: 3 is outside [1, 2]");
        yield return new("meta stage with outer-lr 0", d => d.Run("{ kind = meta, steps = 2, meta { tasks = [add], outer-lr = 0 } }"), "rlft.job.stages[0].meta.outer-lr: 0 is outside (0, 1]");
        yield return new("meta stage with an unknown inner loop", d => d.Run("{ kind = meta, steps = 2, meta { tasks = [add, max], inner = ppo } }"), "rlft.job.stages[0].meta.inner: 'ppo' is not one of");
        yield return new("unknown task in a family mix", d => d.Run("{ kind = sft, data = \"builtin:family/add+nope\", steps = 2 }"), "rlft.job.stages[0].data", "unknown task 'nope'");
        yield return new("unknown family task", d => d.Run(d.SftStage("builtin:family/mod")), "rlft.job.stages[0].data: unknown task 'mod' in builtin:family/mod");
        yield return new("many-task settings on a stage kind that does not apply them yet", d => d.Run(string.Join("\n", d.SftStage(), d.Stage("dpo", d.Prefs, "l2-sp = 0.1, ewc = 5\n early-stopping { patience = 2 }\n optimizer { schedule = plateau }"))),
            "rlft.job.stages[1].l2-sp: l2-sp is not supported yet in Dpo stages", "rlft.job.stages[1].ewc: ewc is not supported yet",
            "rlft.job.stages[1].early-stopping: early-stopping is not supported yet", "rlft.job.stages[1].optimizer.schedule: schedule = plateau is not supported yet",
            "rlft.job.stages[1].eval-every: eval-every is not supported yet");
        // ---- federated stages ----
        yield return new("federated stage naming its data in the job", d => d.Run($"{{ kind = sft, data = \"{d.Sft}\", federated {{ rounds = 2 }} }}"),
            "rlft.job.stages[0].data: a federated stage trains on its clients' data");
        yield return new("federated sampling more clients than the federation has", d => d.Run("{ kind = sft, federated { rounds = 2, clients = 2, clients-per-round = 3 } }"),
            "rlft.job.stages[0].federated.clients-per-round: 3 is more than the 2 clients");
        yield return new("federated privacy with a negative noise multiplier", d => d.Run("{ kind = sft, federated { rounds = 2, clients = 4, privacy { clip-norm = 1, noise-multiplier = -0.5 } } }"),
            "rlft.job.stages[0].federated.privacy.noise-multiplier: -0.5 is outside");
        yield return new("federated stage without held-out data", d => d.Run("{ kind = sft, federated { rounds = 2 } }"),
            "rlft.job.stages[0].eval-data: a federated stage measures its held-out figures");
        yield return new("ewc after a dpo stage", d => d.Run(string.Join("\n", d.SftStage(), d.Stage("dpo", d.Prefs), d.Stage("sft", d.Sft, "ewc = 5"))),
            "rlft.job.stages[2].ewc: the previous policy stage (1, Dpo) is not an SFT stage");
        // ---- quantized base (QLoRA) ----
        string quantized(CaseDir d, string keys) => $"model {{ path = \"{d.Model}\", {keys} }}";
        yield return new("quantize without lora", d => ["run", d.Job(model: quantized(d, "quantize = nf4"))], "rlft.job.model.quantize", "rlft.job.lora");
        yield return new("quantize names no format", d => ["run", d.Job(model: quantized(d, "quantize = nf3"), extra: "lora { rank = 4 }")], "rlft.job.model.quantize: 'nf3' is not one of");
        yield return new("quantized base with a reward-model stage", d => ["run", d.Job(d.Stage("reward-model", d.Prefs), "lora { rank = 4 }", quantized(d, "quantize = int8"))],
            "rlft.job.stages[0]", "reward-model stage trains a full copy");
        yield return new("double quantization with int8", d => ["run", d.Job(extra: "lora { rank = 4 }", model: quantized(d, "quantize = int8, double-quant = on"))], "rlft.job.model.double-quant", "int8");
        yield return new("compute dtype without quantize", d => ["run", d.Job(model: quantized(d, "compute-dtype = bf16"))], "rlft.job.model.compute-dtype", "quantize is none");
        yield return new("bf16 mixed precision with a quantized base", d => ["run", d.Job(extra: "lora { rank = 4 }\n precision = bf16", model: quantized(d, "quantize = nf4"))],
            "rlft.job.precision", "compute-dtype = bf16");
        yield return new("skipping a module the model lacks", d => ["run", d.Job(extra: "lora { rank = 4 }", model: quantized(d, "quantize = nf4, quantize-skip-modules = [lm_head, q_proj]"))],
            "rlft.job.model.quantize-skip-modules", "'q_proj' is not a projection");
        yield return new("skipping every projection", d => ["run", d.Job(extra: "lora { rank = 4 }", model: quantized(d, "quantize = nf4, quantize-skip-modules = [c_attn, c_proj, c_fc]"))],
            "rlft.job.model.quantize-skip-modules", "nothing would be quantized");
        yield return new("quantizing a distillation teacher", d => d.Run(d.Stage("distill", d.Sft, $"teacher {{ path = \"{d.Model}\", quantize = nf4 }}")),
            "rlft.job.stages[0].teacher.quantize: unknown key");
        yield return new("job name with a slash", d => d.Run(extra: "name = \"a/b\""), "rlft.job.name", "not usable as a directory name");
        yield return new("several errors are all reported", d =>
        {
            File.WriteAllLines(d.Sft, ["{}"]);
            return d.Run(string.Join("\n", d.SftStage(), "{ kind = ppo, data = \"builtin:prompts\", steps = 0 }"), "seed = -1");
        }, "rlft.job.seed", "rlft.job.stages[1].steps", "rlft.job.stages[0].data");
        yield return new("HOCON syntax error names the line", d => { File.WriteAllText(d.P("job.conf"), "rlft.job {\n  name = t\n  stages = [ { kind = sft, data = x }, ] ]\n}"); return ["run", d.P("job.conf")]; },
            "job.conf", "line 3");

        // ---- command options ----
        yield return new("--set without a value", d => ["run", d.Job(), "--set", "seed"], "--set seed: expected key=value");
        yield return new("--set an unknown key", d => ["run", d.Job(), "--set", "bogus=1"], "rlft.job.bogus: unknown key");
        yield return new("unknown option", d => ["run", d.Job(), "--frobnicate"], "--frobnicate");
        yield return new("job file missing", d => ["run", d.P("missing.conf")], "config file not found", "missing.conf");
        yield return new("node port out of range", d => ["node", "--config", d.Job(), "--roles", "learner", "--port", "70000"], "--port: 70000 is not a TCP port");
        yield return new("node with a bad dataset is refused before it joins", d => ["node", "--config", d.Job(d.SftStage(d.P("x.jsonl"))), "--roles", "learner", "--port", "4999"],
            "rlft.job.stages[0].data", "x.jsonl: dataset file not found");
        // A client node's own data, checked before it joins (the job has a federated stage; the seed is never reached).
        string fedJob(CaseDir d) => d.Job($"{{ kind = sft, eval-data = \"{d.Sft}\", federated {{ rounds = 2 }} }}");
        string[] client(CaseDir d, params string[] data) => ["node", "--config", fedJob(d), "--roles", "client", "--seed-nodes", "akka.tcp://rlft@127.0.0.1:4999", .. data];
        yield return new("client node without data", d => client(d), "--data: a client node trains on its own data");
        yield return new("client node whose data path is missing", d => client(d, "--data", d.P("nowhere.jsonl")), "--data", "nowhere.jsonl: no such file or directory");
        yield return new("client node with a malformed data line", d => { File.WriteAllLines(d.P("mine.jsonl"), [SftLines[0], "{\"prompt\": \"a\""]); return client(d, "--data", d.P("mine.jsonl")); },
            "--data", "mine.jsonl:2:");
        yield return new("client node with a directory lacking the stage's file", d => { Directory.CreateDirectory(d.P("shard")); return client(d, "--data", d.P("shard")); },
            "--data", "no sft.jsonl for federated stage 0");
        yield return new("client node for a job without federated stages", d => ["node", "--config", d.Job(), "--roles", "client", "--data", d.Sft, "--seed-nodes", "akka.tcp://rlft@127.0.0.1:4999"],
            "--roles client: the job has no federated stage");
        yield return new("data on a node that is not a client", d => ["node", "--config", d.Job(), "--roles", "rollout", "--data", d.Sft, "--seed-nodes", "akka.tcp://rlft@127.0.0.1:4999"],
            "--data: only a node with role client");

        // ---- output paths ----
        yield return new("output-dir below a file", d => { File.WriteAllText(d.P("afile"), "x"); return d.Run(extra: $"output-dir = \"{d.P("afile")}/runs\""); }, "rlft.job.output-dir", "afile is a file");
        yield return new("output-dir not writable", d => d.Run(extra: "output-dir = \"/proc/rlft-runs\""), "rlft.job.output-dir", "not writable");
        yield return new("output-dir empty", d => d.Run(extra: "output-dir = \"\""), "rlft.job.output-dir: must not be empty");
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Bad_input_is_refused_before_anything_runs(Case c)
    {
        string root = Directory.CreateTempSubdirectory("rlft-case").FullName;
        try
        {
            var d = new CaseDir(root, fixture);
            CopyDirectory(fixture.Model, d.Model);
            File.WriteAllLines(d.Sft, SftLines);
            File.WriteAllLines(d.Prefs, PrefLines);
            File.WriteAllLines(d.Prompts, PromptLines);
            string[] args = c.Arrange(d);
            var before = Snapshot(root);
            var (o, e) = (new StringWriter(), new StringWriter());
            // In-process, with a deadline: an input that slipped through validation would start a job.
            int code = await Task.Run(() => Rlft.Host.Commands.Cli.Run(args, o, e), TestContext.Current.CancellationToken)
                .WaitAsync(TimeSpan.FromSeconds(60), TestContext.Current.CancellationToken);
            string err = e.ToString();
            Assert.True(code == 2, $"exit {code}\nstdout: {o}\nstderr: {err}");
            var lines = err.TrimEnd().Split('\n');
            Assert.All(lines, l => Assert.StartsWith("rlft: ", l));
            Assert.DoesNotContain("   at ", err);
            Assert.DoesNotContain("Exception", err);
            foreach (var expected in c.Expected) Assert.Contains(expected, err);
            Assert.Equal(before, Snapshot(root));
            Assert.False(Directory.Exists(d.Out), "the run's output directory was created");
        }
        finally { Directory.Delete(root, recursive: true); }
    }

    [Fact]
    public void The_corpus_covers_at_least_fifty_inputs() => Assert.True(AllCases().Count() >= 50, $"{AllCases().Count()} cases");

    static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from)) File.Copy(f, Path.Combine(to, Path.GetFileName(f)));
    }

    /// <summary>Every file and folder under <paramref name="root"/> with size and write time.</summary>
    static string Snapshot(string root) => string.Join("\n", Directory.GetFileSystemEntries(root, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal)
        .Select(p => File.Exists(p) ? $"{p} {new FileInfo(p).Length} {File.GetLastWriteTimeUtc(p).Ticks}" : $"{p}/"));
}
