using Rlft.Policy.Tokenization;

namespace Rlft.Policy.Encoders;

/// <summary>One window of a question and a slice of its context, as the model sees it.</summary>
/// <param name="Input">Ids and token types: the question, then (as text_pair) the context slice.</param>
/// <param name="Spans">Per token, its character span in the context; null for question and special tokens.</param>
internal sealed record QaWindow(EncoderInput Input, (int Start, int End)?[] Spans);

/// <summary>A decoded answer: characters [Start, End) of the context, its tokens, and p(start)·p(end) within its window.</summary>
internal sealed record QaAnswer(string Text, int Start, int End, double Score, int StartToken, int EndToken);

/// <summary>
/// Extractive question answering around a model: long contexts split into overlapping windows
/// (transformers' <c>truncation="only_second", stride, return_overflowing_tokens</c>), answers located in each window's
/// tokens for training (the [CLS] position, 0, when the window does not hold the whole answer), and the best span
/// decoded back to characters: start ≤ end, at most <c>maxAnswerLength</c> tokens, both inside the context.
/// </summary>
internal static class QaSpans
{
    /// <summary>
    /// The windows of one example. The question is cut to <paramref name="maxQueryLength"/> tokens; each window holds as
    /// much context as <paramref name="maxLength"/> leaves, and consecutive windows share <paramref name="stride"/> tokens
    /// (at most half a window's context).
    /// </summary>
    public static List<QaWindow> Windows(EncoderTokenizer tokenizer, string question, string context, int maxLength, int stride, int maxQueryLength)
    {
        var q = tokenizer.Inner.Encode(question, addSpecialTokens: false);
        if (q.Length > maxQueryLength) q = q[..maxQueryLength];
        var (ids, offsets) = tokenizer.EncodeWithOffsets(context);
        int room = maxLength - tokenizer.Template.Added(pair: true) - q.Length;
        if (room < 1) throw new ArgumentException($"max-length {maxLength} leaves no room for the context after a {q.Length}-token question");
        // The overlap is at most half a window (transformers' QA pipeline caps doc_stride at max_seq_len / 2), so every
        // window advances by at least half its context.
        int step = room - Math.Min(Math.Max(0, stride), room / 2);
        var windows = new List<QaWindow>();
        for (int start = 0; ; start += step)
        {
            int n = Math.Min(room, ids.Length - start);
            var (wIds, types, seqs) = tokenizer.Template.Apply(q, ids[start..(start + n)]);
            var spans = new (int, int)?[wIds.Length];
            for (int i = 0, k = 0; i < wIds.Length; i++)
                if (seqs[i] == 1) spans[i] = offsets[start + k++];
            windows.Add(new QaWindow(new EncoderInput(wIds, types, seqs), spans));
            if (start + n >= ids.Length) break;
        }
        return windows;
    }

    /// <summary>
    /// The answer's first and last token in <paramref name="window"/>, for characters [answerStart, answerEnd); (0, 0)
    /// — the first token, [CLS] — when the window does not contain the whole answer (transformers' run_qa).
    /// </summary>
    public static (int Start, int End) Label(QaWindow window, int answerStart, int answerEnd)
    {
        int first = -1, last = -1;
        for (int i = 0; i < window.Spans.Length; i++)
        {
            if (window.Spans[i] is not { } s || s.End <= s.Start) continue;
            if (first < 0 && s.End > answerStart) { if (s.Start > answerStart) return (0, 0); first = i; }
            if (s.Start < answerEnd) last = i;
        }
        if (first < 0 || last < first) return (0, 0);
        var end = window.Spans[last]!.Value;
        return end.End >= answerEnd ? (first, last) : (0, 0);
    }

    /// <summary>
    /// The best span of one window: over context tokens i ≤ j with j − i + 1 ≤ <paramref name="maxAnswerLength"/>, the
    /// largest start_i + end_j; its score is p(start)·p(end) with each softmax taken over the window's context tokens.
    /// Null when the window holds no context.
    /// </summary>
    public static QaAnswer? Best(ReadOnlySpan<float> startLogits, ReadOnlySpan<float> endLogits, QaWindow window, string context, int maxAnswerLength)
    {
        var ctx = new List<int>();
        for (int i = 0; i < window.Spans.Length; i++) if (window.Spans[i] is { } s && s.End > s.Start) ctx.Add(i);
        if (ctx.Count == 0) return null;
        int bi = -1, bj = -1;
        double best = double.NegativeInfinity;
        for (int a = 0; a < ctx.Count; a++)
            for (int b = a; b < ctx.Count && ctx[b] - ctx[a] < maxAnswerLength; b++)
            {
                double s = startLogits[ctx[a]] + (double)endLogits[ctx[b]];
                if (s > best) (best, bi, bj) = (s, ctx[a], ctx[b]);
            }
        double LogSumExp(ReadOnlySpan<float> x)
        {
            double m = double.NegativeInfinity;
            foreach (int i in ctx) m = Math.Max(m, x[i]);
            double sum = 0;
            foreach (int i in ctx) sum += Math.Exp(x[i] - m);
            return m + Math.Log(sum);
        }
        double score = Math.Exp(startLogits[bi] - LogSumExp(startLogits) + endLogits[bj] - LogSumExp(endLogits));
        int start = window.Spans[bi]!.Value.Start, end = window.Spans[bj]!.Value.End;
        return new QaAnswer(context[start..end], start, end, score, bi, bj);
    }

    /// <summary>SQuAD's answer normalisation: lower case, no punctuation, no articles (a, an, the), single spaces.</summary>
    public static string Normalize(string s)
    {
        var chars = s.ToLowerInvariant().Where(c => !char.IsPunctuation(c) && !char.IsSymbol(c)).ToArray();
        var words = new string(chars).Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Where(w => w is not ("a" or "an" or "the"));
        return string.Join(' ', words);
    }

    /// <summary>SQuAD exact match: 1 when the normalised prediction equals a normalised gold answer.</summary>
    public static double ExactMatch(string prediction, IEnumerable<string> gold) =>
        gold.Any(g => Normalize(g) == Normalize(prediction)) ? 1.0 : 0.0;

    /// <summary>SQuAD F1: the best over gold answers of the token-overlap F1 of the normalised texts.</summary>
    public static double F1(string prediction, IEnumerable<string> gold) => gold.Select(g =>
    {
        var p = Normalize(prediction).Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var t = Normalize(g).Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (p.Length == 0 || t.Length == 0) return p.Length == t.Length ? 1.0 : 0.0;
        var counts = t.GroupBy(x => x).ToDictionary(x => x.Key, x => x.Count());
        int common = 0;
        foreach (var w in p) if (counts.TryGetValue(w, out int c) && c > 0) { common++; counts[w] = c - 1; }
        if (common == 0) return 0.0;
        double precision = (double)common / p.Length, recall = (double)common / t.Length;
        return 2 * precision * recall / (precision + recall);
    }).DefaultIfEmpty(0).Max();
}
