using System.Text;
using Rlft.Actors.Compute;
using Rlft.Actors.Configuration;
using Rlft.Policy.Chat;
using Rlft.Policy.Tokenization;
using Rlft.Rollout.Data;

namespace Rlft.Actors.Jobs;

/// <summary>
/// The token lengths a job's data gives its training steps, for the memory estimate: for an offline stage (SFT, DPO,
/// reward model, distillation) the longest example — prompt and completion, or the longer side of a pair — and for an
/// online stage the longest prompt. A batch is padded to its longest sequence, so the longest example is what the
/// step's peak holds. Each record is encoded as the stage will encode it: the model's tokenizer, its end tokens and
/// the stage's chat template, where the tokenizer exists before the run (a checkpoint, or the one an earlier run of the
/// job made in init-model/). For a preset the run has not made yet, a record's JSONL line in UTF-8 bytes bounds its
/// tokens (a byte-level tokenizer never makes more tokens than bytes; the line's field names cover a template's few
/// markers). Files with more than <see cref="MaxRecords"/> records are measured on that many, spread over the file.
/// A stage whose data cannot be read is not measured (null): the data check that runs before the job names its problem.
/// </summary>
internal sealed class DataLengths : IDisposable
{
    /// <summary>Records encoded per file at most (evenly spaced through it).</summary>
    public const int MaxRecords = 10_000;

    readonly JobSpec _job;
    readonly string? _modelDir;
    readonly HfTokenizer? _tokenizer;
    readonly Dictionary<string, ExampleEncoder> _encoders = new();
    string? _scratch;

    public DataLengths(JobSpec job)
    {
        _job = job;
        _modelDir = job.Model.Path ?? Compute.InitModel.Existing(Path.Combine(job.RunDirectory, "init-model"), job.Model, job.Seed);
        if (_modelDir is not null)
        {
            try { _tokenizer = HfTokenizer.Load(_modelDir); }
            catch (Exception e) when (e is IOException or InvalidDataException or ArgumentException or InvalidOperationException) { _modelDir = null; }
        }
    }

    /// <summary>Whether lengths are counted in the model's tokens (else bounded by bytes).</summary>
    public bool Tokenized => _tokenizer is not null;

    /// <summary>The longest sequence of an offline policy stage's data (with its eval-data), or null when not measured.</summary>
    public int? LongestExample(StageSpec stage) => stage.Kind switch
    {
        StageKind.Sft or StageKind.Distill => Longest(stage, DatasetFormats.ReadSft, (r, e) => r.Encode(e).Ids.Length),
        StageKind.Dpo or StageKind.RewardModel when !stage.TrainsEncoder =>
            Longest(stage, DatasetFormats.ReadPreferences, (r, e) => r.Encode(e) is var p ? Math.Max(p.Chosen.Ids.Length, p.Rejected.Ids.Length) : 0),
        _ => null,
    };

    /// <summary>
    /// An encoder stage's longest input, bounded by its data's longest line in bytes (a WordPiece or BPE token covers at
    /// least one byte; the line's other fields only raise the bound) plus the special tokens; null when not measured.
    /// </summary>
    public int? LongestEncoderInput(StageSpec stage)
    {
        if (!stage.TrainsEncoder) return null;
        try
        {
            int longest = 0;
            foreach (var data in new[] { stage.Data, stage.EvalData }.OfType<string>().Where(d => d.Length > 0))
                longest = Math.Max(longest, LongestLineBytes(Resolve(data, stage)));
            return longest > 0 ? longest + 3 : null;
        }
        catch (Exception e) when (e is IOException or InvalidDataException or ArgumentException or ConfigException or UnauthorizedAccessException) { return null; }
    }

    /// <summary>The longest prompt of an online stage's data (with its eval-data), or null when not measured.</summary>
    public int? LongestPrompt(StageSpec stage) =>
        stage.IsOnline ? Longest(stage, DatasetFormats.ReadPrompts, (r, e) => r.Encode(e).Length) : null;

    int? Longest<T>(StageSpec stage, Func<string, List<T>> read, Func<T, ExampleEncoder, int> length) where T : notnull
    {
        try
        {
            int longest = 0;
            foreach (var data in new[] { stage.Data, stage.EvalData }.OfType<string>())
            {
                string path = Resolve(data, stage);
                if (_tokenizer is null) { longest = Math.Max(longest, LongestLineBytes(path)); continue; }
                var encoder = EncoderFor(stage);
                var records = read(path);
                foreach (var record in Spread(records)) longest = Math.Max(longest, length(record, encoder));
            }
            return longest > 0 ? longest : null;
        }
        catch (Exception e) when (e is IOException or InvalidDataException or ArgumentException or InvalidOperationException or ConfigException or FormatException or DatasetException or Policy.Chat.Jinja.JinjaException)
        {
            return null;
        }
    }

    ExampleEncoder EncoderFor(StageSpec stage)
    {
        string key = _job.ChatTemplateFor(stage) ?? "";
        if (!_encoders.TryGetValue(key, out var encoder))
            _encoders[key] = encoder = ModelFiles.Encoder(_modelDir!, _tokenizer!, key.Length == 0 ? null : key);
        return encoder;
    }

    /// <summary>At most <see cref="MaxRecords"/> records, evenly spaced (all of them when there are fewer).</summary>
    static IEnumerable<T> Spread<T>(List<T> records)
    {
        if (records.Count <= MaxRecords) return records;
        double step = (double)records.Count / MaxRecords;
        return Enumerable.Range(0, MaxRecords).Select(i => records[(int)(i * step)]);
    }

    static int LongestLineBytes(string path)
    {
        int longest = 0, n = 0;
        foreach (var line in File.ReadLines(path))
        {
            if (string.IsNullOrWhiteSpace(line)) continue;
            longest = Math.Max(longest, Encoding.UTF8.GetByteCount(line));
            if (++n >= 100 * MaxRecords) break;
        }
        return longest;
    }

    /// <summary>
    /// The data's file: a path, the run's copy of a built-in dataset, or (when the run has not written it yet) the
    /// built-in dataset written into a scratch directory from the job's seed, deleted when this is disposed.
    /// </summary>
    string Resolve(string data, StageSpec stage)
    {
        string key = $"rlft.job.stages[{stage.Index}].data";
        if (!data.StartsWith("builtin:", StringComparison.Ordinal)) return DataResolver.Resolve(data, _job.RunDirectory, _job.Seed, key);
        string own = Path.Combine(_job.RunDirectory, "data", data["builtin:".Length..] + ".jsonl");
        if (File.Exists(own)) return own;
        _scratch ??= Directory.CreateTempSubdirectory("rlft-estimate-").FullName;
        return DataResolver.Resolve(data, _scratch, _job.Seed, key);
    }

    public void Dispose()
    {
        _tokenizer?.Dispose();
        if (_scratch is not null)
        {
            try { Directory.Delete(_scratch, true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }
}
