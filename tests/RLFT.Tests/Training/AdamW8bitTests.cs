using Rlft.Policy.Training;
using Rlft.Policy.Training.Optimizers;
using Rlft.Policy.Training.Trainers;
using TorchSharp;
using Parameter = TorchSharp.Modules.Parameter;
using OptimizerOptions = Rlft.Policy.Training.OptimizerOptions;
using static TorchSharp.torch;

namespace Rlft.Tests.Training;

/// <summary>
/// <c>optimizer.kind = adamw-8bit</c>: the block-wise quantizer's maps and round-trip error, the update against torch's
/// AdamW, bit-exact save and restore, and a model that learns with it.
/// </summary>
public class AdamW8bitTests(ITestOutputHelper output)
{
    [Fact]
    public void The_dynamic_maps_are_bitsandbytes_ones()
    {
        var signed = BlockwiseQuantizer.DynamicMap(signed: true);
        var unsigned = BlockwiseQuantizer.DynamicMap(signed: false);
        foreach (var map in new[] { signed, unsigned })
        {
            Assert.Equal(256, map.Length);
            Assert.True(map.Zip(map.Skip(1), (a, b) => a <= b).All(ok => ok), "sorted");
            Assert.Contains(0f, map);
            Assert.Equal(1f, map[^1]);
        }
        // create_dynamic_map(signed=True): the smallest magnitude is 1e-6 · mean(0.1, 1), the largest negative −0.99297.
        Assert.Equal(5.5e-7f, signed.Where(x => x > 0).Min(), 1e-12);
        Assert.Equal(-(0.98593750 + 1) / 2, signed[0], 5);
        Assert.Equal(127, signed.Count(x => x < 0));
        // create_dynamic_map(signed=False): no negatives, the smallest step 1e-6 · mean(0.1, 0.55).
        Assert.Equal(0f, unsigned[0]);
        Assert.Equal(3.25e-7f, unsigned[1], 1e-12);
    }

    [Theory]
    [InlineData(true, 2048)]
    [InlineData(false, 2048)]
    [InlineData(true, 256)]
    public void Round_trip_picks_the_nearest_code_and_stays_within_half_a_code_gap_of_each_blocks_absmax(bool signed, int block)
    {
        using var scope = NewDisposeScope();
        using var q = new BlockwiseQuantizer(signed, block);
        var gen = new torch.Generator(7);
        long n = 9L * block + block / 3;                                   // a partial last block
        long blocks = q.Blocks(n);
        // Blocks of very different scales (1e-4 … 1e2), heavy-tailed within a block, one all-zero block.
        var scale = pow(10.0, rand(blocks, generator: gen) * 6 - 4).repeat_interleave(block).narrow(0, 0, n);
        var x = randn(n, generator: gen) * scale * exp(randn(n, generator: gen));
        if (!signed) x = x.abs();
        x.narrow(0, 2 * block, block).zero_();
        var codes = zeros(n, dtype: ScalarType.Byte);
        var absmax = zeros(blocks);
        q.Quantize(x, codes, absmax);
        var back = q.Dequantize(codes, absmax);

        // The absmax is the block's max |x|, exactly; a zero block decodes to zeros.
        var padded = cat([x.abs(), zeros(blocks * block - n)]).view(blocks, block);
        Assert.True(absmax.Equals(padded.amax([1])), "absmax per block");
        Assert.True(back.narrow(0, 2 * block, block).Equals(zeros(block)), "a zero block decodes to zeros");

        // Each value's code is the nearest map entry (reference: a brute-force argmin over the 256 entries).
        var normed = x / absmax.where(absmax > 0, ones_like(absmax)).repeat_interleave(block).narrow(0, 0, n);
        var nearest = (normed.unsqueeze(1) - q.Map.unsqueeze(0)).abs().argmin(1);      // (n)
        var chosen = (normed - q.Map.index_select(0, codes.to(ScalarType.Int64))).abs();
        var best = (normed - q.Map.index_select(0, nearest)).abs();
        Assert.True((chosen - best).abs().max().ToSingle() <= 1e-7f, "nearest code");

        // Error bound per block: half the widest gap between codes (or the distance from −1 to the lowest code) × absmax.
        var map = q.Map.data<float>().ToArray();
        double halfGap = map.Zip(map.Skip(1), (a, b) => (b - a) / 2.0).Max();
        double bound = Math.Max(halfGap, signed ? 1 + map[0] : 0) * (1 + 1e-5);   // slack for fp32 rounding
        var err = cat([(back - x).abs(), zeros(blocks * block - n)]).view(blocks, block).amax([1]);
        var ratio = (err / absmax.clamp_min(1e-30)).max().ToDouble();
        output.WriteLine($"signed={signed} block={block}: worst |error| / absmax {ratio:E3}, bound {bound:E3}");
        Assert.True(ratio <= bound, $"worst error {ratio} of absmax exceeds {bound}");
        // Relative precision of values within two decades of their block's absmax: the dynamic map's point.
        var big = (x.abs() >= absmax.repeat_interleave(block).narrow(0, 0, n) * 1e-2);
        double rel = ((back - x).abs() / x.abs().clamp_min(1e-30)).masked_select(big).mean().ToDouble();
        output.WriteLine($"mean relative error of values ≥ 1e-2·absmax: {rel:P2}");
        // (measured: 2.0–2.4 % signed, which has half the codes per decade, 1.2 % unsigned)
        Assert.True(rel <= (signed ? 0.03 : 0.015), $"mean relative error {rel:P2}");
    }

    /// <summary>A small regression model: two projections large enough to quantize; the biases and a small 2-D head keep fp32 moments.</summary>
    sealed class Mlp : nn.Module<Tensor, Tensor>
    {
        readonly TorchSharp.Modules.Linear fc1, fc2, head;
        public Mlp() : base("mlp")
        {
            fc1 = nn.Linear(64, 128);
            fc2 = nn.Linear(128, 48);
            head = nn.Linear(48, 8);
            RegisterComponents();
        }
        public override Tensor forward(Tensor x) => head.forward(nn.functional.gelu(fc2.forward(nn.functional.gelu(fc1.forward(x)))));
    }

    /// <summary>A fresh model with the weights of <paramref name="like"/> (tests run in parallel: the global seed is not ours alone).</summary>
    static (Mlp Model, List<Parameter> Parameters) Model(Mlp? like = null)
    {
        var m = new Mlp();
        if (like is not null)
            using (no_grad())
                foreach (var (p, q) in m.parameters().Zip(like.parameters())) p.copy_(q);
        return (m, m.parameters().ToList());
    }

    [Fact]
    public void Trajectories_follow_torchs_adamw_within_a_few_percent_of_the_distance_travelled()
    {
        const int steps = 60;
        const double lr = 3e-3, wd = 0.01;
        var gen = new torch.Generator(3);
        var inputs = randn(256, 64, generator: gen);
        var targets = randn(256, 8, generator: gen);
        var (m32, p32) = Model();
        var (m8, p8) = Model(m32);
        var start = p32.Select(p => p.detach().clone()).ToList();
        using var reference = optim.AdamW(p32, lr, 0.9, 0.999, 1e-8, wd);
        using var eight = new AdamW8bit(p8, lr, 0.9, 0.999, 1e-8, wd);
        double Loss(Mlp m, int step) => nn.functional.mse_loss(m.forward(inputs.narrow(0, step % 4 * 64, 64)), targets.narrow(0, step % 4 * 64, 64)).ToDouble();
        double worst = 0, firstStep = 0, loss32 = 0, loss8 = 0;
        for (int t = 0; t < steps; t++)
        {
            using var scope = NewDisposeScope();
            foreach (var (model, opt) in new (Mlp, Action)[] { (m32, () => reference.step()), (m8, () => eight.Step()) })
            {
                var x = inputs.narrow(0, t % 4 * 64, 64);
                nn.functional.mse_loss(model.forward(x), targets.narrow(0, t % 4 * 64, 64)).backward();
                opt();
                foreach (var p in model.parameters()) p.grad = null;
            }
            // Distance between the two runs, relative to how far the reference has moved from the start.
            double diff = 0, moved = 0;
            for (int i = 0; i < p32.Count; i++)
            {
                diff += (p8[i] - p32[i]).square().sum().ToDouble();
                moved += (p32[i] - start[i]).square().sum().ToDouble();
            }
            double rel = Math.Sqrt(diff / moved);
            if (t == 0) firstStep = rel;
            worst = Math.Max(worst, rel);
            (loss32, loss8) = (Loss(m32, t), Loss(m8, t));
        }
        output.WriteLine($"first step {firstStep:E2}; worst ‖θ8 − θ32‖ / ‖θ32 − θ0‖ over {steps} steps {worst:P2}; last loss fp32 {loss32:F5} 8-bit {loss8:F5}");
        // The first update starts from zero moments, which quantize exactly: it is torch's to rounding.
        Assert.True(firstStep < 1e-5, $"first step differs by {firstStep:E2}");
        // Later updates read moments rounded to 8 bits: the runs drift apart by a few percent of the distance travelled.
        Assert.True(worst <= 0.03, $"trajectories differ by {worst:P2} of the distance travelled");
        Assert.True(Math.Abs(loss8 - loss32) <= 0.02 * loss32, $"loss {loss8} vs {loss32}");
        Assert.True(eight.StateBytes < 0.3 * 8 * p8.Sum(p => p.numel()), $"state {eight.StateBytes} bytes");
    }

    [Fact]
    public void Moments_stay_within_the_quantization_bound_of_an_exact_fp64_computation()
    {
        // Fed the same gradients, the dequantized moments track exact ones (fp64, never rounded). Each update rounds a
        // moment by at most half a code gap of its block's absmax (0.70 % signed, 0.35 % unsigned), and the errors decay
        // with β: after 30 updates at most Σ β^k · half a gap (6.7 % for m, 10.4 % for v); measured about 2.7 % for both.
        var w = new Parameter(zeros(3 * 2048 + 100));
        using var eight = new AdamW8bit([w], 1e-3, 0.9, 0.999, 1e-8, 0);
        var gen = new torch.Generator(5);
        var scale = pow(10.0, rand(4, generator: gen) * 2 - 1).repeat_interleave(2048).narrow(0, 0, w.shape[0]);   // a scale per block
        var m = zeros(w.shape, dtype: ScalarType.Float64);
        var v = zeros(w.shape, dtype: ScalarType.Float64);
        for (int t = 0; t < 30; t++)
        {
            var g = randn(w.shape, generator: gen) * scale;
            w.grad = g.clone();
            eight.Step();
            m = m * 0.9 + g.to(ScalarType.Float64) * 0.1;
            v = v * 0.999 + g.to(ScalarType.Float64).square() * 0.001;
        }
        var (m8, v8) = eight.Moments(0)!.Value;
        double mErr = ((m8.to(ScalarType.Float64) - m).abs().max() / m.abs().max()).ToDouble();
        double vErr = ((v8.to(ScalarType.Float64) - v).abs().max() / v.abs().max()).ToDouble();
        output.WriteLine($"max |m8 − m| / max|m| {mErr:E2}, max |v8 − v| / max|v| {vErr:E2}");
        double mBound = Enumerable.Range(0, 30).Sum(k => Math.Pow(0.9, k)) * 0.00704, vBound = Enumerable.Range(0, 30).Sum(k => Math.Pow(0.999, k)) * 0.00352;
        Assert.True(mErr < mBound && vErr < vBound, $"moment errors {mErr} (bound {mBound}), {vErr} (bound {vBound})");
        Assert.Equal(30, eight.StepOf(0));
    }

    [Fact]
    public void The_state_is_saved_and_restored_bit_for_bit_and_training_goes_on_identically()
    {
        string dir = Directory.CreateTempSubdirectory("rlft-adam8").FullName;
        try
        {
            var options = new OptimizerOptions { Kind = OptimizerKind.AdamW8bit, LearningRate = 1e-2, TotalSteps = 20, WeightDecay = 0.01 };
            var (model, parameters) = Model();
            var x = randn(32, 64, generator: new torch.Generator(9));
            void Train(Mlp m, TrainingOptimizer o) { o.Backward(m.forward(x).square().mean()); o.Step(); }
            using var optimizer = new TrainingOptimizer(parameters, options);
            for (int i = 0; i < 5; i++) Train(model, optimizer);
            string first = Path.Combine(dir, "optimizer.bin"), second = Path.Combine(dir, "again.bin");
            optimizer.Save(first);

            var (copy, copyParameters) = Model(model);
            using var restored = new TrainingOptimizer(copyParameters, options);
            restored.Load(first);
            restored.Save(second);
            Assert.Equal(File.ReadAllBytes(first), File.ReadAllBytes(second));
            Assert.Equal(optimizer.OptimizerStep, restored.OptimizerStep);

            for (int i = 0; i < 3; i++) { Train(model, optimizer); Train(copy, restored); }
            for (int i = 0; i < parameters.Count; i++) Assert.True(parameters[i].Equals(copyParameters[i]), $"parameter {i} after resuming");

            // State of the other kind is refused with both kinds named.
            using var plain = new TrainingOptimizer(Model().Parameters, options with { Kind = OptimizerKind.AdamW });
            var e = Assert.Throws<InvalidDataException>(() => plain.Load(first));
            Assert.Equal($"{first}: optimizer state of kind adamw-8bit, and optimizer.kind is adamw", e.Message);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Sft_with_the_8bit_optimizer_halves_the_completion_loss()
    {
        var policy = TinyTask.Load();
        var data = TinyTask.Sft(2000, 1);
        var heldOut = TinyTask.Sft(64, 99);
        using var sft = new SftTrainer(policy, new OptimizerOptions { Kind = OptimizerKind.AdamW8bit, LearningRate = 2e-3, TotalSteps = 150, WarmupSteps = 10 });
        double before = sft.Loss(heldOut);
        for (int s = 0; s < 150; s++) sft.Step(Enumerable.Range(0, 32).Select(i => data[(s * 32 + i) % data.Count]).ToList());
        double after = sft.Loss(heldOut);
        output.WriteLine($"sft held-out loss with adamw-8bit {before:F3} -> {after:F3}");
        Assert.True(after <= 0.5 * before, $"loss {before:F3} -> {after:F3}");
    }
}
