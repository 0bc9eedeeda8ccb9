using System.CommandLine;
using Rlft.Actors.Configuration;
using Rlft.Actors.Jobs;
using Rlft.Policy.Memory;

namespace Rlft.Host.Commands;

/// <summary>`rlft estimate JOB.conf`: the memory the job will hold, per role and in total, without running anything.</summary>
internal static class EstimateCommand
{
    public static Command Create()
    {
        var job = new Argument<string?>("job") { Description = "Job file (HOCON), e.g. hocon/quickstart.conf", Arity = ArgumentArity.ZeroOrOne };
        var fits = new Option<bool>("--fits") { Description = "Print the table of what fits in 8/16/24 GiB and on 24/80 GiB GPUs at the published shapes (markdown), instead of a job's estimate" };
        var set = new Option<string[]>("--set") { Description = "Override a job key: --set model.preset=qwen2-0.5b (repeatable)", AllowMultipleArgumentsPerToken = false };
        var promptTokens = new Option<int?>("--prompt-tokens") { Description = "Tokens per prompt for every online stage (default: the longest prompt of each stage's data)" };
        var sequenceTokens = new Option<int?>("--sequence-tokens") { Description = "Tokens per example for every offline stage: SFT, DPO, reward model, distillation (default: the longest example of each stage's data)" };
        var command = new Command("estimate", "Print the memory a job will hold, per role and in total (reads the model's config.json, never its weights).")
            { job, set, promptTokens, sequenceTokens, fits };
        command.SetAction(result =>
        {
            var o = result.InvocationConfiguration.Output;
            if (result.GetValue(fits))
            {
                if (result.GetValue(job) is not null) throw new CliException("estimate --fits: the table covers the published shapes; drop the job file");
                foreach (var line in FitTable.Markdown()) o.WriteLine(line);
                return 0;
            }
            int? prompt = result.GetValue(promptTokens), sequence = result.GetValue(sequenceTokens);
            if (prompt < 1) throw new CliException($"--prompt-tokens: {prompt} must be at least 1");
            if (sequence < 1) throw new CliException($"--sequence-tokens: {sequence} must be at least 1");
            string path = RlftConfig.ResolvePath(result.GetValue(job) ?? throw new CliException("estimate: give a job file (e.g. hocon/quickstart.conf), or --fits"));
            var spec = JobSpec.Load(path, result.GetValue(set) ?? []);
            MemoryEstimate estimate;
            try { estimate = JobMemory.Estimate(spec, prompt, sequence); }
            catch (Exception e) when (e is IOException or InvalidDataException or ArgumentException)
            {
                throw new CliException($"estimate: {e.Message}");
            }
            o.WriteLine($"job '{spec.Name}': memory estimate ({(prompt is { } p ? $"{p}-token prompts" : "prompts")}, "
                + $"{(sequence is { } q ? $"{q}-token offline examples" : "offline examples")}{(prompt is null || sequence is null ? "; lengths not given are the data's longest" : "")})");
            foreach (var line in estimate.Table()) o.WriteLine(line);
            var (available, source) = AvailableMemory.Read();
            o.WriteLine(JobMemory.OnCuda(spec.Device)
                ? "on a GPU: the learner's, rollout's and reward's models live in device memory"
                : $"available here: {MemoryEstimate.Human(available)} ({source}): {(estimate.Total <= available ? "fits" : "does NOT fit; rlft run refuses it without --force")}");
            return 0;
        });
        return command;
    }
}
