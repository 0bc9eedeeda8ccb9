using System.Text.Json;
using System.Text.Json.Nodes;
using Rlft.Actors.Compute;
using Rlft.Actors.Configuration;
using Rlft.Actors.Jobs;
using Rlft.Policy.Chat;
using Rlft.Tests.Cluster;

namespace Rlft.Tests.Chat;

/// <summary>
/// Conversational data through a job: what the SFT trainer learns from a messages dataset, what the validator refuses
/// before any model loads, and what rlft inspect-data shows.
/// </summary>
public class ChatJobTests
{
    const string Chatml = "model { chat-template = chatml }";

    static readonly ChatMessage[][] Conversations =
    [
        [new("system", "You answer in one short sentence."), new("user", "review the tea:"), new("assistant", "the tea was warm.")],
        [new("user", "add 2 and 3:"), new("assistant", "5."), new("user", "and 4 more?"), new("assistant", "9, I think — ünïcödé.")],
        [new("user", "say <|im_end|> literally"), new("assistant", "ok: <|im_end|> is text here")],
    ];

    static string Jsonl(string name, IEnumerable<JsonObject> lines)
    {
        string path = Path.Combine(Directory.CreateTempSubdirectory("rlft-chatjob").FullName, name);
        File.WriteAllLines(path, lines.Select(l => l.ToJsonString()));
        return path;
    }

    static JsonArray Json(IEnumerable<ChatMessage> messages) => new(messages.Select(m => (JsonNode)m.ToJson()).ToArray());

    static string MessagesFile() => Jsonl("messages.jsonl", Conversations.Select(c => new JsonObject { ["messages"] = Json(c) }));

    /// <summary>The runs of consecutive loss-carrying tokens, each decoded with its special tokens.</summary>
    static List<string> LossRuns(EncodedExample e, Rlft.Policy.Tokenization.ITokenizer tokenizer)
    {
        var runs = new List<string>();
        for (int i = 0; i < e.Ids.Length; i++)
        {
            if (!e.LossMask[i]) continue;
            int j = i;
            while (j < e.Ids.Length && e.LossMask[j]) j++;
            runs.Add(tokenizer.DecodeWithSpecialTokens(e.Ids[i..j]));
            i = j;
        }
        return runs;
    }

    [Fact]
    public void Sft_on_messages_trains_on_exactly_each_assistant_turn_and_its_end_of_turn_token()
    {
        string data = MessagesFile();
        var job = JobHarness.Job($"{{ kind = sft, data = \"{data}\", eval-data = \"{data}\", steps = 2, batch-size = 3\n}}", extra: Chatml);
        Assert.Empty(JobValidator.Check(job));
        using var engine = new TorchLearnerEngine(job);
        engine.RunOfflineStage(job.Stages[0], _ => { }, TestContext.Current.CancellationToken);

        var trained = engine.TrainedExamples;
        Assert.Equal(Conversations.Length, trained.Count);
        var tokenizer = engine.Policy.Tokenizer;
        int imEnd = tokenizer.SpecialTokens["<|im_end|>"];
        for (int c = 0; c < Conversations.Length; c++)
        {
            var expected = Conversations[c].Where(m => m.Role == "assistant").Select(m => m.Content + "<|im_end|>").ToList();
            Assert.Equal(expected, LossRuns(trained[c], tokenizer));
            // The closing <|im_end|> of each assistant turn is the special token itself, and nothing of the user's or
            // system's turns (nor the literal "<|im_end|>" text inside content, which the template renders as text
            // the tokenizer then reads as the token) is learned beyond what the assistant says.
            Assert.Equal(expected.Count, Enumerable.Range(0, trained[c].Ids.Length).Count(i => trained[c].LossMask[i] && trained[c].Ids[i] == imEnd
                && (i + 1 == trained[c].Ids.Length || !trained[c].LossMask[i + 1])));
            Assert.Equal(tokenizer.DecodeWithSpecialTokens(trained[c].Ids),
                string.Concat(Conversations[c].Select(m => $"<|im_start|>{m.Role}\n{m.Content}<|im_end|>\n")));
        }
    }

    [Fact]
    public void Assistant_only_loss_off_trains_on_the_whole_conversation()
    {
        string data = MessagesFile();
        var job = JobHarness.Job($"{{ kind = sft, data = \"{data}\", eval-data = \"{data}\", steps = 1, batch-size = 3, assistant-only-loss = false\n}}", extra: Chatml);
        using var engine = new TorchLearnerEngine(job);
        engine.RunOfflineStage(job.Stages[0], _ => { }, TestContext.Current.CancellationToken);
        Assert.All(engine.TrainedExamples, e => Assert.Equal(e.Ids.Length - 1, e.LossTokens));
    }

    [Fact]
    public void Rollouts_render_conversations_with_the_generation_prompt_and_stop_on_any_end_token_of_generation_config()
    {
        var job = JobHarness.Job("{ kind = grpo, data = \"builtin:chat-prompts\", steps = 1, batch-size = 1\n}", extra: Chatml);
        ChatMessage[] conversation = [new("system", "Be brief."), new("user", "review the tea:")];
        var prompt = new Rlft.Actors.Protocol.PromptItem("", null, 0, conversation);
        var greedy = new Rlft.Actors.Protocol.SamplingSettings(6, 0, 0, 1);

        Rlft.Actors.Protocol.RolloutSample Sample()
        {
            using var learner = new TorchLearnerEngine(job);
            using var rollout = new TorchRolloutEngine(job);
            rollout.ApplyWeights(1, learner.ExportWeights(Rlft.Actors.Protocol.WeightKind.Policy));
            var encoder = rollout.Replica!.Encoder;
            Assert.Contains(encoder.Tokenizer.SpecialTokens["<|im_end|>"], encoder.EndIds);
            var sample = Assert.Single(rollout.Generate([prompt], greedy, seed: 1));
            Assert.Equal("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nreview the tea:<|im_end|>\n<|im_start|>assistant\n", sample.Prompt);
            Assert.Equal(encoder.Tokenizer.Encode(sample.Prompt, addSpecialTokens: false), sample.PromptTokens);
            Assert.Equal(conversation, sample.Messages);
            return sample;
        }

        var free = Sample();
        Assert.Equal(6, free.CompletionTokens.Length);
        // The model's generation_config.json names a token of the greedy path as an end token too (the latest that
        // is new there): generation stops right after it, the token kept.
        var tokens = free.CompletionTokens;
        int at = Enumerable.Range(0, tokens.Length).Last(k => Array.IndexOf(tokens, tokens[k]) == k);
        int stop = tokens[at];
        string config = Path.Combine(job.RunDirectory, "init-model", "generation_config.json");
        var generation = JsonNode.Parse(File.ReadAllText(config))!.AsObject();
        generation["eos_token_id"]!.AsArray().Add(stop);
        File.WriteAllText(config, generation.ToJsonString());
        var stopped = Sample();
        Assert.Equal(tokens[..(at + 1)], stopped.CompletionTokens);
        Assert.True(stopped.Finished);
    }

    [Fact]
    public void Every_stage_kind_runs_on_the_built_in_conversational_data()
    {
        string Stage(string kind, string data, string rest = "") => $"{{ kind = {kind}, data = \"{data}\", steps = 2, batch-size = 4\n sampling {{ max-new-tokens = 6 }}\n {rest}\n }}";
        const string rewards = "rewards { components = [ { name = rm, source = reward-model, model = job }\n { name = task, source = function, function = review-task, weight = 0.5 } ] }";
        var job = JobHarness.Job(string.Join("\n",
            Stage("sft", "builtin:chat-sft"), Stage("reward-model", "builtin:chat-preferences"), Stage("dpo", "builtin:chat-preferences"),
            Stage("ppo", "builtin:chat-prompts", rewards), Stage("grpo", "builtin:chat-prompts", "grpo { group-size = 2 }\n rewards { sources = [ { type = reward-model } ] }"),
            Stage("online-dpo", "builtin:chat-prompts")), extra: Chatml + "\neval-prompts = 4");
        Assert.Empty(JobValidator.Check(job));
        var result = PlainLoop.Run(job, new TorchEngineFactory());
        foreach (var stage in job.Stages)
            Assert.True(result.Summary.Keys.Any(k => k.StartsWith($"{stage.Name}/after/eval/", StringComparison.Ordinal)), $"{stage.Name} reported no held-out figures");
        Assert.True(result.OnlineSamples > 0);
    }

    [Fact]
    public void Chat_keys_are_read_and_misplaced_ones_refused_naming_the_key()
    {
        var job = JobHarness.Job("{ kind = sft, data = \"builtin:chat-sft\", steps = 1, batch-size = 1, completion-only-loss = false, chat-template = \"builtin:chatml\" }\n"
            + "{ kind = dpo, data = \"builtin:chat-preferences\", steps = 1, batch-size = 1 }", extra: Chatml);
        Assert.Equal("chatml", job.Model.ChatTemplate);
        Assert.False(job.Stages[0].CompletionOnlyLoss);
        Assert.True(job.Stages[0].AssistantOnlyLoss);
        Assert.Equal("builtin:chatml", job.ChatTemplateFor(job.Stages[0]));
        Assert.Null(job.ChatTemplateFor(job.Stages[1]));

        string Refusal(string stages, string extra) =>
            string.Join("\n", Assert.Throws<ConfigException>(() => JobHarness.Job(stages, extra: extra)).Errors);
        Assert.Equal("rlft.job.stages[0].assistant-only-loss: applies to sft and distill stages (a dpo stage's loss covers the completions it compares or samples)",
            Refusal("{ kind = dpo, data = \"builtin:chat-preferences\", steps = 1, batch-size = 1, assistant-only-loss = false }", Chatml));
        Assert.Contains("rlft.job.model.chat-template: 'llama' is not one of chatml",
            Refusal("{ kind = sft, data = \"builtin:chat-sft\", steps = 1, batch-size = 1 }", "model { chat-template = llama }"));
    }

    [Fact]
    public void A_reward_model_scores_a_conversation_rendered_with_its_own_template_not_the_policys_text()
    {
        string dir = Path.Combine(Directory.CreateTempSubdirectory("rlft-rm-template").FullName, "model");
        Rlft.Policy.Models.ModelPresets.InitModel("gpt2", "tiny", dir, seed: 3, corpus: Rlft.Rollout.Tasks.ReviewTask.TokenizerCorpus(3), chatTemplate: "chatml").Dispose();
        using var tokenizer = Rlft.Policy.Tokenization.HfTokenizer.Load(dir);
        var policyEncoder = ModelFiles.Encoder(dir, tokenizer);
        // The reward model reads conversations in another layout than the policy's ChatML.
        var rmEncoder = new ExampleEncoder(tokenizer, ChatTemplate.FromSource("{% for m in messages %}[{{ m.role }}] {{ m.content }}<|im_end|>{% endfor %}"), policyEncoder.EndIds);
        var rm = new Rlft.Policy.Training.Trainers.RewardModel(
            new Rlft.Policy.Training.Trainers.PolicyModel(Rlft.Policy.Checkpoints.Checkpoint.Load(dir), tokenizer, rmEncoder),
            new Rlft.Policy.Heads.RewardHead(64, seed: 5));
        ChatMessage[] conversation = [new("system", "Be brief."), new("user", "review the tea:")];
        var prompt = PromptInput.Chat(conversation, policyEncoder);
        Assert.Equal("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nreview the tea:<|im_end|>\n<|im_start|>assistant\n", prompt.Text);

        float score = Assert.Single(rm.ScoreSamples([(prompt, "the tea was great.")]));
        var seen = rmEncoder.Conversation([.. conversation, new ChatMessage("assistant", "the tea was great.")]);
        Assert.Equal("[system] Be brief.<|im_end|>[user] review the tea:<|im_end|>[assistant] the tea was great.<|im_end|>", tokenizer.DecodeWithSpecialTokens(seen.Ids));
        Assert.Equal(Assert.Single(rm.ScoreExamples([seen])), score, 6);
        // Scoring the policy's rendered text instead gives another sequence and another score.
        Assert.NotEqual(Assert.Single(rm.ScoreTexts([(prompt.Text, "the tea was great.")])), score, 4);
    }

    static (int Code, string Out, string Err) Cli(params string[] args)
    {
        var (o, e) = (new StringWriter(), new StringWriter());
        int code = Rlft.Host.Commands.Cli.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    [Theory]
    [InlineData("sft", """{"messages": [{"role": "user", "content": "Hi"}, {"role": "narrator", "content": "a"}]}""", "messages[1].role: unknown role \"narrator\" (expected system, user, assistant or tool)")]
    [InlineData("sft", """{"messages": [{"content": "Hi"}]}""", "messages[0].role: missing")]
    [InlineData("sft", """{"messages": []}""", "messages: empty list")]
    [InlineData("dpo", """{"prompt": [{"role": "user", "content": "Hi"}], "chosen": [{"role": "assistant", "content": 3}], "rejected": [{"role": "assistant", "content": "b"}]}""", "chosen[0].content: expected a string, got a number")]
    [InlineData("reward-model", """{"prompt": [{"role": "user", "content": "Hi"}], "chosen": "a", "rejected": [{"role": "assistant", "content": "b"}]}""", "chosen: expected a list of messages, got a string")]
    [InlineData("grpo", """{"prompt": [{"role": "user"}]}""", "prompt[0].content: missing")]
    [InlineData("ppo", """{"prompt": {"role": "user", "content": "Hi"}}""", "prompt: expected a string or a list of messages, got an object")]
    public void Run_refuses_bad_conversational_data_with_file_line_and_field_before_any_model_loads(string kind, string bad, string problem)
    {
        var good = kind switch
        {
            "sft" => """{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]}""",
            "dpo" or "reward-model" => """{"prompt": [{"role": "user", "content": "Hi"}], "chosen": [{"role": "assistant", "content": "a"}], "rejected": [{"role": "assistant", "content": "b"}]}""",
            _ => """{"prompt": [{"role": "user", "content": "Hi"}]}""",
        };
        string data = Path.Combine(Directory.CreateTempSubdirectory("rlft-baddata").FullName, "data.jsonl");
        File.WriteAllLines(data, [good, bad, good]);
        string job = JobHarness.JobFile($"{{ kind = {kind}, data = \"{data}\", steps = 1, batch-size = 2\n}}", extra: Chatml);
        var (code, output, err) = Cli("run", job);
        Assert.Equal(2, code);
        Assert.Equal($"rlft: rlft.job.stages[0].data: {data}:2: {problem}", err.TrimEnd());
        // Refused before the run directory (and so the init model) was made.
        Assert.DoesNotContain("→", output);
        Assert.False(Directory.Exists(JobSpec.Load(job).RunDirectory));
    }

    [Fact]
    public void Conversational_data_for_a_model_without_a_chat_template_is_refused_saying_so()
    {
        string job = JobHarness.JobFile("{ kind = sft, data = \"builtin:chat-sft\", steps = 1, batch-size = 2\n}");
        var (code, _, err) = Cli("run", job);
        Assert.Equal(2, code);
        Assert.Equal("rlft: rlft.job.stages[0].data: builtin:chat-sft holds conversations (lists of messages), and the model has no chat template "
            + "to render them: make the model with one (rlft.job.model.chat-template = chatml) or give one with rlft.job.chat-template = FILE", err.TrimEnd());
        // A template file that does not exist is refused as well, naming the key.
        string job2 = JobHarness.JobFile("{ kind = sft, data = \"builtin:chat-sft\", steps = 1, batch-size = 2\n}", extra: "chat-template = \"/nonexistent/t.jinja\"");
        (code, _, err) = Cli("run", job2);
        Assert.Equal(2, code);
        Assert.Equal("rlft: rlft.job.chat-template: chat template file not found: /nonexistent/t.jinja", err.TrimEnd());
    }

    [Fact]
    public void Inspect_data_shows_the_rendered_text_the_ids_and_the_loss_carrying_tokens()
    {
        string data = MessagesFile();
        string job = JobHarness.JobFile($"{{ kind = sft, data = \"{data}\", steps = 1, batch-size = 2\n}}", extra: Chatml);
        var (code, output, err) = Cli("inspect-data", job, "--stage", "0", "--limit", "2");
        Assert.True(code == 0, err);
        var lines = output.Split('\n');
        Assert.StartsWith("stage 0 (0-sft, sft): " + data + "; chat template: the model's; loss: completions only; in conversations every assistant turn", lines[0]);
        Assert.Equal(2, lines.Count(l => l.StartsWith("── ", StringComparison.Ordinal)));
        Assert.Contains($"── {data}:1: ", output);
        Assert.Contains("""
            <|im_start|>system
            You answer in one short sentence.<|im_end|>
            <|im_start|>user
            review the tea:<|im_end|>
            <|im_start|>assistant
            ⟦the tea was warm.<|im_end|>⟧

            ids: 
            """.Replace("\r", ""), output);
        Assert.Contains("<|im_start|>assistant\n⟦5.<|im_end|>⟧\n<|im_start|>user\nand 4 more?<|im_end|>\n<|im_start|>assistant\n⟦9, I think — ünïcödé.<|im_end|>⟧\n", output);

        // --json: the loss mask selects the same tokens the trainer learns from.
        (code, output, err) = Cli("inspect-data", job, "--stage", "0", "--limit", "5", "--json");
        Assert.True(code == 0, err);
        var objects = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        Assert.Equal(Conversations.Length, objects.Count);
        string modelDir = Path.Combine(Directory.CreateTempSubdirectory("rlft-insp-tok").FullName, "tok");
        Rlft.Policy.Models.ModelPresets.InitTokenizer("tiny", modelDir, Rlft.Rollout.Tasks.ReviewTask.TokenizerCorpus(3), chatTemplate: "chatml");
        using var tokenizer = Rlft.Policy.Tokenization.HfTokenizer.Load(modelDir);
        for (int c = 0; c < objects.Count; c++)
        {
            var example = objects[c]["example"]!;
            int[] ids = example["input_ids"]!.AsArray().Select(x => x!.GetValue<int>()).ToArray();
            bool[] mask = example["loss_mask"]!.AsArray().Select(x => x!.GetValue<int>() == 1).ToArray();
            Assert.Equal($"{data}:{c + 1}", objects[c]["where"]!.GetValue<string>());
            Assert.Equal(tokenizer.DecodeWithSpecialTokens(ids), example["text"]!.GetValue<string>());
            Assert.Equal(Conversations[c].Where(m => m.Role == "assistant").Select(m => m.Content + "<|im_end|>"),
                LossRuns(new EncodedExample(ids, Array.IndexOf(mask, true), mask), tokenizer));
        }
    }

    [Fact]
    public void Inspect_data_shows_both_sides_of_preference_pairs_and_online_prompts_with_the_generation_prompt()
    {
        string pairs = Jsonl("pairs.jsonl", [new JsonObject
        {
            ["prompt"] = Json([new("user", "review the tea:")]),
            ["chosen"] = Json([new("assistant", "great.")]), ["rejected"] = Json([new("assistant", "bad.")]),
        }]);
        string prompts = Jsonl("prompts.jsonl", [new JsonObject { ["prompt"] = Json([new("user", "review the tea:")]) }]);
        string job = JobHarness.JobFile($"{{ kind = dpo, data = \"{pairs}\", steps = 1, batch-size = 1\n}}\n{{ kind = grpo, data = \"{prompts}\", steps = 1, batch-size = 1\n}}", extra: Chatml);
        var (code, output, err) = Cli("inspect-data", job, "--stage", "0");
        Assert.True(code == 0, err);
        Assert.Contains($"── {pairs}:1 chosen: ", output);
        Assert.Contains("<|im_start|>user\nreview the tea:<|im_end|>\n<|im_start|>assistant\n⟦great.<|im_end|>⟧\n", output);
        Assert.Contains($"── {pairs}:1 rejected: ", output);
        Assert.Contains("<|im_start|>assistant\n⟦bad.<|im_end|>⟧\n", output);
        (code, output, err) = Cli("inspect-data", job, "--stage", "1", "--json");
        Assert.True(code == 0, err);
        var prompt = JsonNode.Parse(output)!["prompt"]!;
        Assert.Equal("<|im_start|>user\nreview the tea:<|im_end|>\n<|im_start|>assistant\n", prompt["text"]!.GetValue<string>());
        Assert.All(prompt["loss_mask"]!.AsArray(), m => Assert.Equal(0, m!.GetValue<int>()));
        (code, _, err) = Cli("inspect-data", job, "--stage", "2");
        Assert.Equal(2, code);
        Assert.Equal("rlft: --stage 2: the job has 2 stages (0 to 1)", err.TrimEnd());
    }
}
