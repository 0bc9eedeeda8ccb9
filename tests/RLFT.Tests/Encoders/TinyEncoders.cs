using System.Text.Json.Nodes;
using Rlft.Policy.Checkpoints;
using Rlft.Policy.Encoders;
using Rlft.Policy.Tokenization;

namespace Rlft.Tests.Encoders;

/// <summary>Tiny encoder checkpoints (real tokenizers of each family, trained on a few sentences) for the encoder tests.</summary>
static class TinyEncoders
{
    public const string Corpus = "the movie was great and fun. the book was dull. where does anna live? anna lives in paris.\n"
                               + "it was a lovely song, really! the meal was cold and sad. bob lives in rome; the hotel was warm.";

    public static readonly string[] Archs = ["bert", "roberta", "distilbert"];

    public static string TempDir()
    {
        var dir = Path.Combine(Path.GetTempPath(), "rlft-encoder-tests", Guid.NewGuid().ToString("N"));
        System.IO.Directory.CreateDirectory(dir);
        return dir;
    }

    /// <summary>A seeded checkpoint directory; std 0.2 (not HF's 0.02) so logits differ visibly between inputs.</summary>
    public static string Directory(string arch, EncoderTask task = EncoderTask.SequenceClassification, int labels = 3, long seed = 1, double std = 0.2)
    {
        string dir = TempDir();
        var names = task == EncoderTask.QuestionAnswering ? ["start", "end"] : Enumerable.Range(0, labels).Select(i => $"L{i}").ToList();
        using var model = EncoderPresets.InitModel(arch, "tiny", dir, seed, Corpus, vocabSize: arch == "roberta" ? 300 : 120, task: task, labels: names);
        model.InitWeights(seed, std);
        EncoderCheckpoint.Save(model, dir, dir);
        return dir;
    }

    public static JsonObject Config(string dir) => (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "config.json")))!;

    public static Dictionary<string, TorchSharp.torch.Tensor> Tensors(string dir) => SafetensorsFile.Load(Path.Combine(dir, Checkpoint.WeightsFile));
}
