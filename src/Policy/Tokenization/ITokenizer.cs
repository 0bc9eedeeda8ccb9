namespace Rlft.Policy.Tokenization;

/// <summary>
/// Text ↔ token ids for a model. The members with a body describe a tokenizer whose post-processor adds nothing
/// and that has no special tokens; <see cref="HfTokenizer"/> implements them from its file.
/// </summary>
public interface ITokenizer
{
    /// <summary>Encodes with the file's post-processor (a BOS only when it says so): <c>tokenizer(text)</c>.</summary>
    int[] Encode(string text);

    /// <summary>
    /// Encodes <paramref name="text"/>; with <paramref name="addSpecialTokens"/> false the post-processor adds nothing,
    /// as <c>tokenizer(text, add_special_tokens=False)</c> (special tokens written in the text are still recognised).
    /// </summary>
    int[] Encode(string text, bool addSpecialTokens) => Encode(text);

    /// <summary>Text of the ids; special tokens (EOS, padding) are dropped as the HF decoder does with skip_special_tokens.</summary>
    string Decode(IReadOnlyList<int> ids);

    /// <summary>Text of the ids with special tokens written out (<c>&lt;|im_end|&gt;</c>), for showing training data.</summary>
    string DecodeWithSpecialTokens(IReadOnlyList<int> ids) => Decode(ids);

    /// <summary>The ids the post-processor puts before a single sequence (e.g. BOS); empty when it adds none.</summary>
    IReadOnlyList<int> PrefixIds => [];

    /// <summary>Special (added) tokens by content.</summary>
    IReadOnlyDictionary<string, int> SpecialTokens => new Dictionary<string, int>();

    int EosId { get; }
    int PadId { get; }
    int? BosId { get; }
    int VocabSize { get; }
}
