using Rlft.Rollout.Data;

namespace Rlft.Hosting;

/// <summary>
/// A stage's dataset: a JSONL file, a built-in dataset, or records held by the program. Records from code are written
/// as JSONL (the formats a job file's datasets use) into the run directory's <c>data/code/</c> folder when the job is
/// built, so they are checked line by line like any dataset and a resumed run reads the same data.
/// </summary>
public abstract record RlftData
{
    RlftData() { }

    /// <summary>A JSONL file (prompts, SFT pairs or preference pairs, as the stage's kind reads).</summary>
    public static RlftData File(string path) => new FileData(path);

    /// <summary>A built-in dataset, e.g. <c>Builtin("prompts")</c> for <c>builtin:prompts</c>.</summary>
    public static RlftData Builtin(string name) => new FileData("builtin:" + name);

    /// <summary>Prompts for an online stage (PPO, GRPO, online DPO).</summary>
    public static RlftData Prompts(IEnumerable<string> prompts) => new Records<PromptExample>(prompts.Select(p => new PromptExample(p)));

    /// <summary>Prompts with their verifiable answers (<c>{"prompt", "answer"}</c>), which reward functions read as <c>Reference</c>.</summary>
    public static RlftData Prompts(IEnumerable<PromptExample> prompts) => new Records<PromptExample>(prompts);

    /// <summary>Prompt/completion pairs for SFT.</summary>
    public static RlftData Sft(IEnumerable<SftExample> examples) => new Records<SftExample>(examples);

    /// <summary>Preference pairs (<c>{"prompt", "chosen", "rejected"}</c>) for DPO and reward-model stages.</summary>
    public static RlftData Preferences(IEnumerable<PreferenceExample> pairs) => new Records<PreferenceExample>(pairs);

    /// <summary>Records held by the program (written into the run directory when the job is built).</summary>
    internal abstract bool FromCode { get; }

    /// <summary>The value of the stage's data key: the path or built-in name (a code dataset's file under <paramref name="codeDataDir"/>).</summary>
    internal abstract string Reference(string codeDataDir, string label);

    /// <summary>Writes a code dataset to the file <see cref="Reference"/> named (nothing for files and built-ins).</summary>
    internal abstract void Write(string codeDataDir, string label);

    sealed record FileData(string Path) : RlftData
    {
        internal override bool FromCode => false;
        internal override string Reference(string codeDataDir, string label) => Path;
        internal override void Write(string codeDataDir, string label) { }
    }

    sealed record Records<T>(IEnumerable<T> Items) : RlftData
    {
        internal override bool FromCode => true;
        internal override string Reference(string codeDataDir, string label) => System.IO.Path.Combine(codeDataDir, label + ".jsonl");
        internal override void Write(string codeDataDir, string label) => Jsonl.Write(Reference(codeDataDir, label), Items);
    }
}
