namespace Rlft.Policy.Tokenization;

/// <summary>Text ↔ token ids for a model. Encode applies the file's post-processor (a BOS only when it says so).</summary>
public interface ITokenizer
{
    int[] Encode(string text);
    /// <summary>Text of the ids; special tokens (EOS, padding) are dropped as the HF decoder does with skip_special_tokens.</summary>
    string Decode(IReadOnlyList<int> ids);
    int EosId { get; }
    int PadId { get; }
    int? BosId { get; }
    int VocabSize { get; }
}
