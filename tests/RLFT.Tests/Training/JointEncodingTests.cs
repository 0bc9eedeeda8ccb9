using Rlft.Policy.Chat;
using Rlft.Policy.Generation;
using Rlft.Policy.Heads;
using Rlft.Policy.Models;
using Rlft.Policy.Tokenization;
using Rlft.Policy.Training;
using Rlft.Policy.Training.Trainers;
using Rlft.Tests.Chat;
using Rlft.Tests.Policy;
using static TorchSharp.torch;

namespace Rlft.Tests.Training;

/// <summary>The trainers see the joint encoding: their losses equal a computation on the one-text ids, not on glued pieces.</summary>
public class JointEncodingTests
{
    static readonly Lazy<HfTokenizer> Tok = new(() => HfTokenizer.Load(TestTokenizers.ByteLevelChatMl()));

    static PolicyModel Policy(ChatTemplate? template = null)
    {
        var model = ModelFactory.Create(TinyModels.Config("gpt2", Tok.Value.VocabSize));
        model.InitWeights(seed: 3, std: 0.2);
        model.eval();
        return new PolicyModel(model, Tok.Value, new ExampleEncoder(Tok.Value, template));
    }

    /// <summary>Mean −log p over the loss tokens of <paramref name="ids"/>, from a plain forward over the whole sequence.</summary>
    static double ReferenceLoss(PolicyModel policy, int[] ids, bool[] loss)
    {
        using var _ = no_grad();
        var input = tensor(ids.Select(i => (long)i).ToArray(), [1, ids.Length]);
        var lp = LogProbs.OfSequences(policy.Model, input, null).data<float>().ToArray();   // entry t: log p(ids[t+1] | ..t)
        var picked = Enumerable.Range(1, ids.Length - 1).Where(t => loss[t]).Select(t => (double)lp[t - 1]).ToList();
        return -picked.Average();
    }

    [Fact]
    public void Sft_loss_is_computed_on_the_joint_encoding()
    {
        var policy = Policy();
        using var sft = new SftTrainer(policy, new OptimizerOptions());
        double trained = sft.Loss([("Hello ", "world")]);

        var joint = policy.Encoder.PromptCompletion("Hello ", "world");
        Assert.Equal([.. Tok.Value.Encode("Hello world"), Tok.Value.EosId], joint.Ids);
        Assert.Equal(ReferenceLoss(policy, joint.Ids, joint.LossMask), trained, 5);

        // The glued encoding ("Hello", " " | "world", EOS) scores different tokens: the test would see the old path.
        using var glued = policy.LogProbsOf([Tok.Value.Encode("Hello ")], [[.. Tok.Value.Encode("world"), Tok.Value.EosId]]);
        double gluedLoss = Losses.SftLoss(glued.LogProbs, glued.Mask).Stats["loss/sft"];
        Assert.True(Math.Abs(gluedLoss - trained) > 1e-3, $"joint {trained} vs glued {gluedLoss}");
    }

    [Fact]
    public void Sft_loss_on_a_conversation_covers_only_the_assistant_turns()
    {
        var policy = Policy(ChatTemplate.FromSource(TestTokenizers.ChatMlTemplate));
        var example = policy.Encoder.Conversation([new("user", "Hi"), new("assistant", "Hello."), new("user", "Bye"), new("assistant", "See you.")]);
        using var sft = new SftTrainer(policy, new OptimizerOptions());
        Assert.Equal(ReferenceLoss(policy, example.Ids, example.LossMask), sft.Loss([example]), 5);
        Assert.True(example.LossTokens < example.Completion.Length);   // the second user turn sits inside the completion, unmasked
    }

    [Fact]
    public void Reward_model_scores_the_joint_sequence_ending_in_eos()
    {
        var policy = Policy();
        var head = new RewardHead(policy.Model.Config.HiddenSize, seed: 5);
        var rm = new RewardModel(policy, head);
        using var _ = no_grad();
        float viaText = rm.Score([("Hello ", "world")]).item<float>();

        int[] ids = [.. Tok.Value.Encode("Hello world"), Tok.Value.EosId];
        using var batch = TokenBatch.LeftPad([ids], Tok.Value.PadId);
        using var output = policy.Model.Forward(batch.InputIds, batch.AttentionMask, logitsToKeep: -1);
        Assert.Equal(head.forward(output.HiddenStates, batch.AttentionMask).item<float>(), viaText, 5);
    }

    [Fact]
    public void Dpo_encodes_both_sides_with_the_prompt_as_one_text()
    {
        var policy = Policy();
        using var dpo = new DpoTrainer(policy, new FrozenReference(policy.FrozenCopy()), new DpoOptions(), new OptimizerOptions());
        var pair = Assert.Single(dpo.Encode([("Hello ", "world", "there")]));
        Assert.Equal([.. Tok.Value.Encode("Hello world"), Tok.Value.EosId], pair.Chosen.Ids);
        Assert.Equal([.. Tok.Value.Encode("Hello there"), Tok.Value.EosId], pair.Rejected.Ids);
        var stats = dpo.Step([pair]);
        Assert.Equal(Math.Log(2), stats["loss/dpo"], 4);   // policy = reference at the first step
    }
}
