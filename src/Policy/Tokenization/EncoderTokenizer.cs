namespace Rlft.Policy.Tokenization;

/// <summary>One encoder input: ids with the post-processor's special tokens, token type ids, and which text each token came from.</summary>
/// <param name="SequenceIds">−1 for a special token, 0 for the first text, 1 for the second.</param>
internal sealed record EncoderInput(int[] Ids, int[] TypeIds, int[] SequenceIds)
{
    public int Length => Ids.Length;
}

/// <summary>
/// An encoder's tokenizer: <c>tokenizer(text)</c> and <c>tokenizer(text, text_pair)</c> as transformers computes them
/// (special tokens and token type ids from the post-processor, see <see cref="PairTemplate"/>), truncation to a
/// maximum length (<c>longest_first</c>: a token at a time from the longer text), and character offsets of each
/// token for extractive question answering.
/// </summary>
internal sealed class EncoderTokenizer : IDisposable
{
    public HfTokenizer Inner { get; }
    public PairTemplate Template { get; }
    public int PadId => Inner.PadId;

    public EncoderTokenizer(HfTokenizer inner, PairTemplate template) => (Inner, Template) = (inner, template);

    /// <summary>
    /// Loads tokenizer.json from a model directory (pad id from tokenizer_config.json / config.json), or one converted
    /// from the directory's vocab.txt or vocab.json + merges.txt where it has no tokenizer.json (see <see cref="SlowTokenizerFiles"/>).
    /// </summary>
    public static EncoderTokenizer Load(string dir)
    {
        string file = Directory.Exists(dir) ? SlowTokenizerFiles.Resolve(dir) ?? Path.Combine(dir, "tokenizer.json") : dir;
        var inner = HfTokenizer.Load(file);
        try { return new EncoderTokenizer(inner, PairTemplate.FromFile(file)); }
        catch { inner.Dispose(); throw; }
    }

    /// <summary>
    /// <c>tokenizer(text, text_pair, truncation=True, max_length=maxLength)</c>: each text encoded without special tokens,
    /// the longer one shortened a token at a time until the whole fits, then wrapped by the template.
    /// </summary>
    public EncoderInput Encode(string text, string? pair = null, int maxLength = int.MaxValue)
    {
        var a = Inner.Encode(text, addSpecialTokens: false).ToList();
        var b = pair is null ? null : Inner.Encode(pair, addSpecialTokens: false).ToList();
        int budget = maxLength - Template.Added(b is not null);
        if (budget < 0) throw new ArgumentException($"max length {maxLength} leaves no room for the {Template.Added(b is not null)} special tokens");
        while (a.Count + (b?.Count ?? 0) > budget)
        {
            if (b is not null && b.Count > a.Count) b.RemoveAt(b.Count - 1);
            else a.RemoveAt(a.Count - 1);
        }
        var (ids, types, seqs) = Template.Apply(a, b);
        return new EncoderInput(ids, types, seqs);
    }

    /// <summary>
    /// <paramref name="text"/> without special tokens, with each token's character span [Start, End) in the text. The text
    /// is encoded a word at a time (a whitespace run and the non-space run after it), which gives the same ids as the
    /// whole: WordPiece and byte-level BPE pre-tokenizers never join across a whitespace boundary. Within a word each
    /// token's own text (WordPiece's <c>##</c> dropped, byte-level BPE's leading space trimmed) is found in order,
    /// ignoring case; a token of whitespace alone covers no characters. Where a token's text cannot be found (accents
    /// stripped by the normaliser, [UNK], a partial UTF-8 byte) every token of that word spans the whole word.
    /// </summary>
    public (int[] Ids, (int Start, int End)[] Offsets) EncodeWithOffsets(string text)
    {
        var ids = new List<int>();
        var offsets = new List<(int, int)>();
        foreach (var (start, end) in Words(text))
        {
            string chunk = text[start..end];
            int content = start + (chunk.Length - chunk.TrimStart().Length);
            int[] wordIds = Inner.Encode(chunk, addSpecialTokens: false);
            if (wordIds.Length == 0) continue;
            var spans = new (int, int)[wordIds.Length];
            int cursor = content;
            bool exact = true;
            for (int i = 0; i < wordIds.Length && exact; i++)
            {
                string raw = Inner.Decode([wordIds[i]]);
                string piece = raw.Trim();
                if (piece.StartsWith("##", StringComparison.Ordinal) && piece.Length > 2) piece = piece[2..];
                if (piece.Length == 0 && raw.Length > 0) { spans[i] = (cursor, cursor); continue; }   // whitespace alone
                int at = piece.Length == 0 ? -1 : text.IndexOf(piece, cursor, end - cursor, StringComparison.OrdinalIgnoreCase);
                if (at < 0 || text[cursor..at].Trim().Length > 0) { exact = false; break; }               // not next in the word
                spans[i] = (at, at + piece.Length);
                cursor = at + piece.Length;
            }
            exact &= text[cursor..end].Trim().Length == 0;
            for (int i = 0; i < wordIds.Length; i++)
            {
                ids.Add(wordIds[i]);
                offsets.Add(exact ? spans[i] : (content, end));
            }
        }
        return (ids.ToArray(), offsets.ToArray());
    }

    /// <summary>[start, end) of each run of whitespace plus the non-whitespace after it.</summary>
    static IEnumerable<(int, int)> Words(string text)
    {
        int i = 0;
        while (i < text.Length)
        {
            int start = i;
            while (i < text.Length && char.IsWhiteSpace(text[i])) i++;
            while (i < text.Length && !char.IsWhiteSpace(text[i])) i++;
            yield return (start, i);
        }
    }

    public void Dispose() => Inner.Dispose();
}
