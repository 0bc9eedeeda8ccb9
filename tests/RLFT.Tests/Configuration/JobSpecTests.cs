using Rlft.Actors.Configuration;
using Rlft.Actors.Jobs;
using Rlft.Policy.Training;

namespace Rlft.Tests.Configuration;

public class JobSpecTests
{
    static JobSpec Parse(string hocon) => JobSpec.Parse(RlftConfig.ParseText(hocon, "job.conf"));

    const string Minimal = """
        rlft.job {
          name = t
          stages = [ { kind = sft, data = "builtin:sft", steps = 5 } ]
        }
        """;

    /// <summary>
    /// The learning-rate schedule spans the stage's optimizer updates, not its steps: a PPO step makes epochs ×
    /// mini-batches updates and a GRPO step one per epoch (a schedule over steps would reach zero a quarter of the way
    /// through a PPO stage of 4 epochs); accumulation makes one update of several steps.
    /// </summary>
    [Theory]
    [InlineData("{ kind = ppo, data = x, steps = 16, batch-size = 8, ppo { epochs = 2, mini-batches = 2 } }", 64)]
    [InlineData("{ kind = ppo, data = x, steps = 10 }", 40)]
    [InlineData("{ kind = grpo, data = x, steps = 12, batch-size = 8, grpo { group-size = 4, epochs = 3 } }", 36)]
    [InlineData("{ kind = sft, data = x, steps = 15, optimizer { gradient-accumulation-steps = 4 } }", 4)]
    [InlineData("{ kind = ppo, data = x, steps = 3\n ppo { epochs = 2 }\n optimizer { gradient-accumulation-steps = 4 } }", 2)]
    [InlineData("{ kind = dpo, data = x, steps = 7 }", 7)]
    public void The_schedule_spans_the_stages_optimizer_updates(string stage, int updates)
    {
        var job = Parse($"rlft.job {{ name = t\n stages = [\n{stage}\n] }}");
        Assert.Equal(updates, job.Stages[0].Optimizer.TotalSteps);
    }

    [Fact]
    public void The_shipped_presets_parse()
    {
        foreach (var file in Directory.GetFiles(RlftConfig.HoconDirectory, "*.conf").Where(f => File.ReadAllText(f).Contains("rlft.job")))
        {
            var job = JobSpec.Load(file);
            Assert.NotEmpty(job.Stages);
        }
        var quick = JobSpec.Load(Path.Combine(RlftConfig.HoconDirectory, "quickstart.conf"));
        Assert.Equal([StageKind.Sft, StageKind.RewardModel, StageKind.Ppo], quick.Stages.Select(s => s.Kind));
    }

    [Fact]
    public void The_weight_sync_settings_default_to_a_free_port_and_fp32_and_a_bad_value_names_its_key()
    {
        Assert.Equal(0, Parse(Minimal).WeightStreamPort);
        Assert.Equal(-1, Parse(Minimal.Replace("name = t", "name = t, weight-sync { stream-port = -1 }")).WeightStreamPort);
        Assert.Equal(7355, Parse(Minimal.Replace("name = t", "name = t, weight-sync { stream-port = 7355 }")).WeightStreamPort);
        var e = Assert.Throws<ConfigException>(() => Parse(Minimal.Replace("name = t", "name = t, weight-sync { stream-port = 70000 }")));
        Assert.StartsWith("rlft.job.weight-sync.stream-port", Assert.Single(e.Errors));
        e = Assert.Throws<ConfigException>(() => Parse(Minimal.Replace("name = t", "name = t, weight-sync { stream-prot = 1 }")));
        Assert.StartsWith("rlft.job.weight-sync.stream-prot: unknown key", Assert.Single(e.Errors));
        Assert.False(Parse(Minimal).SyncBf16);
        Assert.True(Parse(Minimal.Replace("name = t", "name = t, weight-sync { sync-dtype = bf16 }")).SyncBf16);
        e = Assert.Throws<ConfigException>(() => Parse(Minimal.Replace("name = t", "name = t, weight-sync { sync-dtype = fp16 }")));
        Assert.StartsWith("rlft.job.weight-sync.sync-dtype: 'fp16' is not one of fp32, bf16", Assert.Single(e.Errors));
    }

    [Fact]
    public void Defaults_come_from_the_documented_sources()
    {
        var job = Parse(Minimal);
        Assert.Equal("auto", job.Device);
        Assert.Equal(1, job.MaxPolicyLag);
        Assert.Equal(16, job.RolloutSlots);
        Assert.Equal(8, Parse(Minimal.Replace("name = t", "name = t, rollout { slots = 8 }")).RolloutSlots);
        Assert.Equal(0, Parse(Minimal.Replace("name = t", "name = t, rollout { continuous-batching = off, slots = 8 }")).RolloutSlots);
        var s = job.Stages[0];
        Assert.Equal(16, s.BatchSize);
        Assert.Equal(0.2, s.Ppo.ClipRange);
        Assert.Equal(0.1, s.Dpo.Beta);
        Assert.Equal(5, s.Optimizer.TotalSteps);
    }

    [Theory]
    [InlineData("rlft.job { name = t, sed = 1, stages = [ { kind = sft, data = x, steps = 1 } ] }", "rlft.job.sed: unknown key")]
    [InlineData("rlft.job { name = t, stages = [ { kind = sft, data = x, steps = 1, stepz = 2 } ] }", "rlft.job.stages[0].stepz: unknown key")]
    [InlineData("rlft.job { name = t, stages = [ { kind = sft, data = x, steps = 1 }, { kind = ppo, data = x, steps = 1, ppo { gamma = 2 } } ] }", "rlft.job.stages[1].ppo.gamma: 2 is outside [0, 1]")]
    [InlineData("rlft.job { name = t, stages = [ { kind = sft, data = x, steps = 1, ppo { gama = 1 } } ] }", "rlft.job.stages[0].ppo.gama: unknown key")]
    [InlineData("rlft.job { name = t, stages = [ { kind = sft, data = x, steps = 0 } ] }", "rlft.job.stages[0].steps: 0 is outside [1,")]
    [InlineData("rlft.job { name = t, lora { rank = 4 }\n stages = [ { kind = sft, data = x, steps = 1 }, { kind = reward-model, data = x, steps = 1 } ] }", "rlft.job.stages[1]: a reward-model stage trains a full copy of the policy's weights, and with rlft.job.lora in a job with no online or federated stage")]
    [InlineData("rlft.job { name = t, lora { rank = 0 }\n stages = [ { kind = ppo, data = x, steps = 1 } ] }", "rlft.job.lora.rank: 0 is outside [1,")]
    [InlineData("rlft.job { name = t, lora { rnk = 4 }\n stages = [ { kind = ppo, data = x, steps = 1 } ] }", "rlft.job.lora.rnk: unknown key")]
    [InlineData("rlft.job { name = t, lora { rank = 4 }\n stages = [ { kind = ppo, data = x, steps = 1 }, { kind = dpo, data = x, steps = 1 } ] }", "rlft.job.stages[1]: a 1-dpo stage cannot follow a LoRA stage")]
    [InlineData("rlft.job { name = t, stages = [ { kind = rl, data = x, steps = 1 } ] }", "rlft.job.stages[0].kind: 'rl' is not one of")]
    [InlineData("rlft.job { name = t, stages = [ { kind = sft, steps = 1 } ] }", "rlft.job.stages[0].data: missing required key")]
    [InlineData("rlft.job { name = t, device = tpu, stages = [ { kind = sft, data = x, steps = 1 } ] }", "rlft.job.device: 'tpu' is not one of")]
    [InlineData("rlft.job { name = t, stages = [] }", "rlft.job.stages: a job needs at least one stage")]
    [InlineData("rlft.job { name = \"../x\", stages = [ { kind = sft, data = x, steps = 1 } ] }", "rlft.job.name: '../x' is not usable")]
    [InlineData("rlft.job { name = t, stages = [ { kind = sft, data = x, steps = 1, optimizer { lr = -1 } } ] }", "rlft.job.stages[0].optimizer.lr:")]
    [InlineData("rlft.job { name = t, stages = [ { kind = sft, data = x, steps = 1, optimizer { kind = adam8 } } ] }", "rlft.job.stages[0].optimizer.kind: 'adam8' is not one of adamw, adamw-8bit")]
    [InlineData("other { }", "rlft.job: missing")]
    [InlineData("rlft.job { name = t, rollout { slot = 4 }\n stages = [ { kind = sft, data = x, steps = 1 } ] }", "rlft.job.rollout.slot: unknown key")]
    [InlineData("rlft.job { name = t, rollout { slots = 0 }\n stages = [ { kind = sft, data = x, steps = 1 } ] }", "rlft.job.rollout.slots: 0 is outside [1,")]
    [InlineData("rlft.job { name = t, rollout { continuous-batching = maybe }\n stages = [ { kind = sft, data = x, steps = 1 } ] }", "rlft.job.rollout.continuous-batching: expected true or false")]
    public void Bad_jobs_are_refused_naming_the_key_path(string hocon, string expected)
    {
        var e = Assert.Throws<ConfigException>(() => Parse(hocon));
        Assert.StartsWith(expected, e.Message);
    }

    [Theory]
    [InlineData("{ kind = sft, data = x, steps = 1 }", true)]
    [InlineData("{ kind = dpo, data = x, steps = 1 }", true)]
    [InlineData("{ kind = sft, data = x, steps = 1 }, { kind = dpo, data = x, steps = 1 }, { kind = sft, data = x, steps = 1 }", true)]
    [InlineData("{ kind = sft, data = x, steps = 1 }, { kind = ppo, data = x, steps = 1 }", false)]
    [InlineData("{ kind = sft, data = x, steps = 1 }, { kind = sft, federated { rounds = 1 } }", false)]
    public void Lora_attaches_at_the_start_of_a_job_with_no_online_or_federated_stage_and_at_the_first_such_stage_otherwise(string stages, bool fromStart)
    {
        var job = Parse($"rlft.job {{ name = t, lora {{ rank = 4 }}\n stages = [ {stages} ] }}");
        Assert.NotNull(job.Lora);
        Assert.Equal(fromStart, job.LoraFromStart);
        Assert.False(Parse($"rlft.job {{ name = t\n stages = [ {stages} ] }}").LoraFromStart);
    }

    [Fact]
    public void A_quantized_base_trains_adapters_in_every_stage_kind_in_any_order()
    {
        var job = Parse("""
            rlft.job {
              name = t
              model { arch = gpt2, preset = tiny, quantize = nf4, compute-dtype = bf16, quantize-skip-modules = [lm_head, c_fc] }
              lora { rank = 4 }
              stages = [
                { kind = sft, data = x, steps = 1 }
                { kind = ppo, data = x, steps = 1 }
                { kind = dpo, data = x, steps = 1 }
              ]
            }
            """);
        var q = job.Model.Quantization;
        Assert.True(job.QuantizedBase);
        Assert.Equal(Rlft.Policy.Quantization.QuantizationKind.Nf4, q.Kind);
        Assert.True(q.DoubleQuant);
        Assert.Equal(TorchSharp.torch.ScalarType.BFloat16, q.ComputeDtype);
        Assert.Equal(["lm_head", "c_fc"], q.SkipModules);
        Assert.NotNull(job.Lora);
        var plain = Parse(Minimal).Model.Quantization;
        Assert.False(plain.Enabled);
        Assert.Null(plain.ComputeDtype);
        var int8 = Parse(Minimal.Replace("name = t", "name = t\n model { quantize = int8 }\n lora { rank = 2 }")).Model.Quantization;
        Assert.Equal(Rlft.Policy.Quantization.QuantizationKind.Int8, int8.Kind);
        Assert.False(int8.DoubleQuant);
    }

    [Fact]
    public void The_optimizer_kind_is_adamw_by_default_and_adamw_8bit_per_stage()
    {
        Assert.Equal(OptimizerKind.AdamW, Parse(Minimal).Stages[0].Optimizer.Kind);
        var job = Parse("rlft.job { name = t, stages = [ { kind = sft, data = x, steps = 1 }, { kind = ppo, data = x, steps = 1, optimizer { kind = adamw-8bit } } ] }");
        Assert.Equal(OptimizerKind.AdamW, job.Stages[0].Optimizer.Kind);
        Assert.Equal(OptimizerKind.AdamW8bit, job.Stages[1].Optimizer.Kind);
    }

    [Fact]
    public void Gradient_checkpointing_is_off_by_default_set_by_the_job_and_overridden_by_a_stage()
    {
        Assert.False(Parse(Minimal).Stages[0].GradientCheckpointing);
        var job = Parse("""
            rlft.job {
              name = t
              gradient-checkpointing = on
              stages = [ { kind = sft, data = x, steps = 1 }, { kind = dpo, data = x, steps = 1, gradient-checkpointing = off } ]
            }
            """);
        Assert.Equal([true, false], job.Stages.Select(s => s.GradientCheckpointing));
        var stageOnly = Parse("rlft.job { name = t, stages = [ { kind = sft, data = x, steps = 1 }, { kind = ppo, data = x, steps = 1, gradient-checkpointing = true } ] }");
        Assert.Equal([false, true], stageOnly.Stages.Select(s => s.GradientCheckpointing));
    }

    [Theory]
    [InlineData("rlft.job { name = t, gradient-checkpointing = maybe, stages = [ { kind = sft, data = x, steps = 1 } ] }", "rlft.job.gradient-checkpointing: expected true or false, got 'maybe'")]
    [InlineData("rlft.job { name = t, stages = [ { kind = sft, data = x, steps = 1, gradient-checkpointing = 2 } ] }", "rlft.job.stages[0].gradient-checkpointing: expected true or false")]
    public void A_gradient_checkpointing_value_that_is_not_a_boolean_is_refused_naming_the_key(string hocon, string expected)
    {
        var e = Assert.Throws<ConfigException>(() => Parse(hocon));
        Assert.StartsWith(expected, e.Message);
    }

    [Fact]
    public void A_published_model_preset_implies_its_architecture()
    {
        var job = Parse("rlft.job { name = t, model { preset = \"qwen2-0.5b\" }\n stages = [ { kind = sft, data = x, steps = 1 } ] }");
        Assert.Equal(("qwen2", "qwen2-0.5b"), (job.Model.Arch, job.Model.Preset));
        Assert.Equal("gpt2", Parse(Minimal).Model.Arch);
        var e = Assert.Throws<ConfigException>(() => Parse("rlft.job { name = t, model { arch = llama, preset = gpt2-124m }\n stages = [ { kind = sft, data = x, steps = 1 } ] }"));
        Assert.Contains("rlft.job.model.arch: preset 'gpt2-124m' is a gpt2 model; it cannot be built as 'llama'", e.Message);
    }

    [Fact]
    public void Overrides_set_keys_under_the_job()
    {
        string dir = Directory.CreateTempSubdirectory("rlft-job").FullName;
        string path = Path.Combine(dir, "job.conf");
        File.WriteAllText(path, Minimal);
        var job = JobSpec.Load(path, ["seed=9", "output-dir=/tmp/x"]);
        Assert.Equal(9, job.Seed);
        Assert.Equal("/tmp/x", job.OutputRoot);
        Assert.StartsWith("--set seed: expected key=value", Assert.Throws<ConfigException>(() => JobSpec.Load(path, ["seed"])).Message);
        Directory.Delete(dir, true);
    }

    [Fact]
    public void Frozen_copies_are_fp32_unless_the_model_says_bf16_which_a_quantized_base_refuses()
    {
        const string stages = "stages = [ { kind = ppo, data = x, steps = 1 } ]";
        Assert.Equal(TorchSharp.torch.ScalarType.Float32, Parse($"rlft.job {{ name = t, model {{ arch = gpt2, preset = tiny }}\n {stages} }}").Model.FrozenDtype);
        Assert.Equal(TorchSharp.torch.ScalarType.BFloat16, Parse($"rlft.job {{ name = t, model {{ arch = gpt2, preset = tiny, frozen-dtype = bf16 }}\n {stages} }}").Model.FrozenDtype);
        var bad = Assert.Throws<ConfigException>(() => Parse($"rlft.job {{ name = t, model {{ arch = gpt2, preset = tiny, frozen-dtype = fp16 }}\n {stages} }}"));
        Assert.Contains("rlft.job.model.frozen-dtype", bad.Message);
        var quantized = Assert.Throws<ConfigException>(() => Parse($"rlft.job {{ name = t, model {{ arch = gpt2, preset = tiny, quantize = nf4, frozen-dtype = bf16 }}\n lora {{ rank = 4 }}\n {stages} }}"));
        Assert.Contains("rlft.job.model.frozen-dtype: a nf4 base is frozen in 4 or 8 bits already", quantized.Message);
    }
}
