using Rlft.Policy.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace Rlft.Policy.Encoders;

/// <summary>Question-answering settings (transformers' run_qa / pipeline names): window length, overlap, answer length.</summary>
public sealed record QaOptions
{
    /// <summary>Tokens per window, question and special tokens included. Default 384 (run_qa).</summary>
    public int MaxLength { get; init; } = 384;
    /// <summary>Tokens shared by consecutive windows of a long context. Default 128 (run_qa's doc_stride).</summary>
    public int Stride { get; init; } = 128;
    /// <summary>Longest question, in tokens. Default 64.</summary>
    public int MaxQueryLength { get; init; } = 64;
    /// <summary>Longest answer, in tokens. Default 30 (run_qa, the pipeline uses 15).</summary>
    public int MaxAnswerLength { get; init; } = 30;
}

/// <summary>
/// An encoder with its tokenizer: texts (and text pairs) in, logits out, as <c>model(**tokenizer(text, text_pair,
/// truncation=True))</c> computes them; question answering over windows. Inputs longer than
/// <see cref="MaxLength"/> are truncated (longest_first).
/// </summary>
internal sealed class EncoderTextModel : IDisposable
{
    public EncoderModel Model { get; }
    public EncoderTokenizer Tokenizer { get; }
    /// <summary>The truncation length: the smaller of the requested one and what the position table holds.</summary>
    public int MaxLength { get; }

    public EncoderTextModel(EncoderModel model, EncoderTokenizer tokenizer, int maxLength = 512)
    {
        if (tokenizer.Inner.VocabSize > model.Config.VocabSize)
            throw new InvalidDataException($"tokenizer.json: the tokenizer's largest id is {tokenizer.Inner.VocabSize - 1}, but the model's vocab_size is {model.Config.VocabSize}");
        (Model, Tokenizer, MaxLength) = (model, tokenizer, Math.Min(maxLength, model.Config.MaxSequenceLength));
    }

    /// <summary>Loads a model directory as it is (with its head) and its tokenizer.</summary>
    public static EncoderTextModel Load(string dir, Device? device = null, int maxLength = 512)
    {
        var model = EncoderCheckpoint.Load(dir, device);
        try { return new EncoderTextModel(model, EncoderTokenizer.Load(dir), maxLength); }
        catch { model.Dispose(); throw; }
    }

    public EncoderInput Encode(string text, string? pair = null) => Tokenizer.Encode(text, pair, MaxLength);

    /// <summary>Differentiable logits of encoded inputs (see <see cref="EncoderOutput"/> for their shapes).</summary>
    public EncoderOutput Forward(IReadOnlyList<EncoderInput> inputs)
    {
        // Padded with the model's pad_token_id: RoBERTa's positions skip the tokens that carry it.
        using var batch = EncoderBatch.Create(inputs, Model.Config.PadTokenId, Model.Device);
        return Model.Forward(batch.InputIds, batch.AttentionMask, batch.TokenTypeIds);
    }

    /// <summary>Sequence-classification logits per item, without gradients, in batches of <paramref name="batchSize"/>.</summary>
    public float[][] Logits(IReadOnlyList<(string Text, string? Pair)> items, int batchSize = 32)
    {
        if (Model.Config.Task != EncoderTask.SequenceClassification)
            throw new InvalidOperationException($"{Model.Config.ArchitectureName} is not a sequence classifier");
        using var _ = no_grad();
        int labels = Model.Config.NumLabels;
        var result = new List<float[]>(items.Count);
        for (int i = 0; i < items.Count; i += batchSize)
        {
            using var scope = NewDisposeScope();
            var chunk = items.Skip(i).Take(batchSize).Select(x => Encode(x.Text, x.Pair)).ToList();
            using var output = Forward(chunk);
            var values = output.Logits.cpu().data<float>().ToArray();
            for (int b = 0; b < chunk.Count; b++) result.Add(values[(b * labels)..((b + 1) * labels)]);
        }
        return result.ToArray();
    }

    /// <summary>The best answer to <paramref name="question"/> in <paramref name="context"/> over all its windows (null: no context tokens).</summary>
    public QaAnswer? Answer(string question, string context, QaOptions options)
    {
        if (Model.Config.Task != EncoderTask.QuestionAnswering)
            throw new InvalidOperationException($"{Model.Config.ArchitectureName} is not a question-answering model");
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var windows = QaSpans.Windows(Tokenizer, question, context, Math.Min(options.MaxLength, MaxLength), options.Stride, options.MaxQueryLength);
        using var output = Forward(windows.Select(w => w.Input).ToList());
        long t = output.Logits.shape[1];
        var logits = output.Logits.cpu().data<float>().ToArray();                     // (W, T, 2) flattened
        QaAnswer? best = null;
        for (int w = 0; w < windows.Count; w++)
        {
            var start = new float[t]; var end = new float[t];
            for (int i = 0; i < t; i++) { start[i] = logits[(w * t + i) * 2]; end[i] = logits[(w * t + i) * 2 + 1]; }
            var answer = QaSpans.Best(start, end, windows[w], context, options.MaxAnswerLength);
            if (answer is not null && (best is null || answer.Score > best.Score)) best = answer;
        }
        return best;
    }

    public void Dispose()
    {
        Model.Dispose();
        Tokenizer.Dispose();
    }
}
