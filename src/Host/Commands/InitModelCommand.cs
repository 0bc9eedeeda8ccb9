using System.CommandLine;
using Rlft.Policy.Encoders;
using Rlft.Policy.Models;

namespace Rlft.Host.Commands;

/// <summary>
/// `rlft init-model`: a randomly initialised checkpoint in HF layout with a tokenizer trained on a corpus — a causal LM
/// (byte-level BPE) or an encoder (bert and distilbert with WordPiece, roberta with byte-level BPE) with a task head. The
/// published decoder shapes (gpt2-124m, qwen2-0.5b, qwen2-1.5b, llama3-1b) imply their architecture and are written
/// tensor by tensor, so the memory needed grows with the embedding matrix, not the model.
/// </summary>
internal static class InitModelCommand
{
    static readonly string[] Heads = ["classify", "qa", "token"];
    static readonly string[] ProblemTypes = ["single_label_classification", "multi_label_classification", "regression"];

    public static Command Create()
    {
        var arch = new Option<string?>("--arch")
        {
            Description = "Architecture: gpt2, llama, qwen2, qwen3, gemma2, gemma3 (model_type gemma3_text), phi3 (implied by a published shape); encoders bert, roberta, distilbert.",
        };
        arch.AcceptOnlyFromAmong([.. ModelPresets.Architectures, .. EncoderPresets.Architectures]);
        var preset = new Option<string>("--preset")
        {
            Description = "Size: tiny (2 layers × d64) or small (4 layers × d256) of --arch; or a published decoder shape with random weights: " +
                          "gpt2-124m, qwen2-0.5b, qwen2-1.5b, llama3-1b, qwen3-0.6b, gemma3-1b, phi4-mini (vocabulary padded to the published size).",
            DefaultValueFactory = _ => "tiny",
        };
        preset.AcceptOnlyFromAmong(ModelPresets.Presets);
        var output = new Option<string>("--out") { Description = "Directory to write config.json, model.safetensors, tokenizer.json.", Required = true };
        var seed = new Option<long>("--seed") { Description = "Initialisation seed (default 0).", DefaultValueFactory = _ => 0 };
        var corpus = new Option<string?>("--vocab-corpus") { Description = "Text file to train the tokenizer on (default: the built-in corpus)." };
        var vocab = new Option<int?>("--vocab-size") { Description = "Tokenizer vocabulary size (default 512 tiny, 2048 otherwise)." };
        var template = new Option<string?>("--chat-template") { Description = "A built-in chat template for the tokenizer to carry, with its special tokens (chatml)." };
        template.AcceptOnlyFromAmong(Rlft.Policy.Chat.BuiltinChatTemplates.Names);
        var head = new Option<string?>("--head") { Description = "Encoders: the task head, classify (sequence classification, default), qa (extractive QA) or token (token classification)." };
        head.AcceptOnlyFromAmong(Heads);
        var numLabels = new Option<int?>("--num-labels") { Description = "Encoders: labels of a classify or token head (default 2; 1 is a regression or reward head)." };
        var labels = new Option<string?>("--labels") { Description = "Encoders: comma-separated label names, id 0 first (id2label); sets --num-labels." };
        var problem = new Option<string?>("--problem-type") { Description = "Encoders: single_label_classification, multi_label_classification or regression (config.json problem_type)." };
        problem.AcceptOnlyFromAmong(ProblemTypes);
        var command = new Command("init-model", "Write a randomly initialised model in Hugging Face layout.")
        {
            arch, preset, output, seed, corpus, vocab, template, head, numLabels, labels, problem,
        };
        command.SetAction(result => ModelCommandSupport.Guard(() =>
        {
            string? corpusPath = result.GetValue(corpus);
            string? text = null;
            if (corpusPath is not null)
            {
                if (!File.Exists(corpusPath)) throw new CliException($"corpus file not found: {corpusPath}");
                text = File.ReadAllText(corpusPath);
            }
            string dir = result.GetValue(output)!, size = result.GetValue(preset)!;
            string? given = result.GetValue(arch);
            var stdout = result.InvocationConfiguration.Output;
            if (given is not null && EncoderPresets.Architectures.Contains(given))
            {
                if (result.GetValue(template) is not null) throw new CliException("--chat-template: encoder architectures take no chat template");
                var (task, names, problemType) = EncoderHead(result.GetValue(head), result.GetValue(numLabels), result.GetValue(labels), result.GetValue(problem));
                using var encoder = EncoderPresets.InitModel(given, size, dir, result.GetValue(seed), text, result.GetValue(vocab), task, names, problemType);
                var e = encoder.Config;
                string headText = task == EncoderTask.QuestionAnswering ? "" : $" with {e.NumLabels} label{(e.NumLabels == 1 ? "" : "s")}";
                stdout.WriteLine($"wrote {e.ArchitectureName}{headText} ({e.NumLayers} layers, hidden {e.HiddenSize}, vocab {e.VocabSize}, {encoder.ParameterCount():N0} parameters) to {dir}");
                return 0;
            }
            foreach (var (name, isGiven) in new (string, bool)[] { ("--head", result.GetValue(head) is not null), ("--num-labels", result.GetValue(numLabels) is not null),
                                                                   ("--labels", result.GetValue(labels) is not null), ("--problem-type", result.GetValue(problem) is not null) })
                if (isGiven) throw new CliException($"{name}: only encoder architectures ({string.Join(", ", EncoderPresets.Architectures)}) take a task head");
            string architecture;
            try { architecture = ModelPresets.ResolveArchitecture(given, size); }
            catch (ArgumentException e) { throw new CliException($"--arch: {e.Message}"); }
            var c = ModelPresets.Write(architecture, size, dir, result.GetValue(seed), text, result.GetValue(vocab), result.GetValue(template));
            long parameters;
            using (var meta = ModelFactory.CreateMeta(c)) parameters = meta.ParameterCount();
            stdout.WriteLine($"wrote {c.ModelType} ({c.NumLayers} layers, hidden {c.HiddenSize}, vocab {c.VocabSize}, {parameters:N0} parameters) to {dir}");
            return 0;
        }));
        return command;
    }

    /// <summary>The head the encoder options describe, checked before anything is written.</summary>
    static (EncoderTask, IReadOnlyList<string>, ProblemType?) EncoderHead(string? head, int? numLabels, string? labels, string? problem)
    {
        var task = head switch { "qa" => EncoderTask.QuestionAnswering, "token" => EncoderTask.TokenClassification, _ => EncoderTask.SequenceClassification };
        ProblemType? problemType = problem switch
        {
            null => null,
            "multi_label_classification" => ProblemType.MultiLabel,
            "regression" => ProblemType.Regression,
            _ => ProblemType.SingleLabel,
        };
        if (task == EncoderTask.QuestionAnswering)
        {
            if (numLabels is not null || labels is not null || problem is not null)
                throw new CliException("--head qa: a question-answering head has start and end logits; --num-labels, --labels and --problem-type do not apply");
            return (task, ["start", "end"], null);
        }
        IReadOnlyList<string> names;
        if (labels is not null)
        {
            names = labels.Split(',').Select(l => l.Trim()).ToList();
            if (names.Any(n => n.Length == 0)) throw new CliException($"--labels: '{labels}' has an empty label name");
            if (names.Distinct().Count() != names.Count) throw new CliException($"--labels: '{labels}' names a label twice");
            if (numLabels is int n && n != names.Count) throw new CliException($"--num-labels: {n} disagrees with --labels ({names.Count} names)");
        }
        else
        {
            int n = numLabels ?? 2;
            if (n < 1) throw new CliException($"--num-labels: {n} must be at least 1");
            names = Enumerable.Range(0, n).Select(i => $"LABEL_{i}").ToList();
        }
        if (problemType == ProblemType.Regression && task != EncoderTask.SequenceClassification)
            throw new CliException("--problem-type regression: only a classify head regresses");
        if (problemType == ProblemType.SingleLabel && names.Count < 2)
            throw new CliException("--problem-type single_label_classification needs at least 2 labels");
        return (task, names, problemType);
    }
}
