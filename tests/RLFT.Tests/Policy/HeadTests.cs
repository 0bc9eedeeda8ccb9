using Rlft.Policy.Heads;
using static TorchSharp.torch;

namespace Rlft.Tests.Policy;

public class HeadTests
{
    [Fact]
    public void Reward_head_reads_the_last_real_token_under_left_or_right_padding()
    {
        using var model = TinyModels.Create("llama");
        var head = new RewardHead(32, seed: 4);
        using var _ = no_grad();
        using var alone = model.Forward(tensor(new long[] { 5, 6, 7 }).unsqueeze(0));
        var expected = head.forward(alone.HiddenStates, ones(1, 3)).item<float>();
        using var left = model.Forward(tensor(new long[] { 0, 0, 5, 6, 7 }).unsqueeze(0), tensor(new long[] { 0, 0, 1, 1, 1 }).unsqueeze(0));
        using var right = model.Forward(tensor(new long[] { 5, 6, 7, 0, 0 }).unsqueeze(0), tensor(new long[] { 1, 1, 1, 0, 0 }).unsqueeze(0));
        Assert.Equal(expected, head.forward(left.HiddenStates, tensor(new long[] { 0, 0, 1, 1, 1 }).unsqueeze(0)).item<float>(), 1e-5f);
        Assert.Equal(expected, head.forward(right.HiddenStates, tensor(new long[] { 1, 1, 1, 0, 0 }).unsqueeze(0)).item<float>(), 1e-5f);
    }

    [Fact]
    public void Heads_give_the_documented_shapes_and_save_and_load_exactly()
    {
        var value = new ValueHead(32, seed: 1);
        var reward = new RewardHead(32, seed: 2);
        var hidden = randn(3, 5, 32);
        Assert.Equal(new long[] { 3, 5 }, value.forward(hidden).shape);
        Assert.Equal(new long[] { 3 }, reward.forward(hidden, ones(3, 5)).shape);
        string dir = TinyModels.TempDir();
        value.Save(Path.Combine(dir, "value_head.safetensors"));
        reward.Save(Path.Combine(dir, "reward_head.safetensors"));
        Assert.True(value.forward(hidden).Equals(ValueHead.Load(Path.Combine(dir, "value_head.safetensors"), 32).forward(hidden)));
        Assert.True(reward.forward(hidden, ones(3, 5)).Equals(RewardHead.Load(Path.Combine(dir, "reward_head.safetensors"), 32).forward(hidden, ones(3, 5))));
    }
}
