using System.Security.Cryptography;
using System.Text;
using TorchSharp;

namespace Rlft.Actors.Compute.Federated;

/// <summary>
/// What a client's model must share with the server's for their weights to be exchanged: the names, shapes and dtypes
/// of the base model's parameters (LoRA adapters left out: they attach when a federated stage begins, on both sides
/// alike). A hash of them travels in <see cref="Protocol.JoinFederation"/>; the values do not.
/// </summary>
internal static class ModelStructure
{
    public static string Hash(torch.nn.Module model)
    {
        var text = new StringBuilder();
        foreach (var (name, p) in model.named_parameters())
        {
            if (name.Contains("lora_", StringComparison.Ordinal)) continue;
            text.Append(name).Append(':').Append(string.Join('x', p.shape)).Append(':').Append(p.dtype).Append('\n');
        }
        return Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())))[..16].ToLowerInvariant();
    }

    /// <summary>Why a client with <paramref name="client"/> cannot join a server with <paramref name="server"/>, or null when they agree.</summary>
    public static string? Mismatch(string client, string server) => client == server ? null
        : $"the client's model structure (hash {(client.Length == 0 ? "none" : client)}) differs from the server's (hash {server}): "
          + "parameter names, shapes or dtypes disagree; every node must load the job's model (rlft.job.model)";
}
