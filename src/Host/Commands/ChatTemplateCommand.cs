using System.CommandLine;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Rlft.Policy.Chat;
using Rlft.Policy.Chat.Jinja;
using Rlft.Policy.Tokenization;

namespace Rlft.Host.Commands;

/// <summary>
/// `rlft chat-template`: renders conversations with a model's chat template, as transformers'
/// <c>apply_chat_template</c> does. Input lines <c>{"messages": [...], "add_generation_prompt": bool}</c> (optionally
/// <c>tools</c>, <c>documents</c>, <c>chat_template_kwargs</c>); one output line each: <c>{"text", "input_ids"}</c>, the ids
/// being the text encoded without adding special tokens, or <c>{"error"}</c> with the template's message. The other
/// lines still render; the command exits 1 when any line failed. The model directory needs only tokenizer files.
/// </summary>
internal static class ChatTemplateCommand
{
    static readonly JsonSerializerOptions Json = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Model or tokenizer directory (tokenizer.json, tokenizer_config.json).", Required = true };
        var input = new Option<string>("--input") { Description = "JSONL file of {\"messages\": [...], \"add_generation_prompt\": bool} lines.", Required = true };
        var output = new Option<string?>("--output") { Description = "JSONL file to write (default: standard output)." };
        var template = new Option<string?>("--chat-template") { Description = "A Jinja file to use instead of the model's chat template." };
        var command = new Command("chat-template", "Render conversations with a chat template: text and token ids, as transformers' apply_chat_template.")
            { model, input, output, template };
        command.SetAction(result => ModelCommandSupport.Guard(() =>
        {
            string dir = result.GetValue(model)!, path = result.GetValue(input)!;
            if (!Directory.Exists(dir)) throw new CliException($"model directory not found: {dir}");
            if (!File.Exists(path)) throw new CliException($"input file not found: {path}");
            ChatTemplate chat;
            try { chat = ChatTemplate.Load(dir, result.GetValue(template)); }
            catch (ChatTemplateException e) { throw new CliException(e.Message); }
            using var tokenizer = HfTokenizer.Load(dir);

            var lines = new List<string>();
            bool failed = false;
            int lineNo = 0;
            foreach (var line in File.ReadLines(path))
            {
                lineNo++;
                if (string.IsNullOrWhiteSpace(line)) continue;
                JsonObject answer;
                try { answer = RenderLine(chat, tokenizer, line, $"{path}:{lineNo}"); }
                catch (InputException e) { answer = new JsonObject { ["error"] = e.Message }; }
                catch (TemplateRaisedException e) { answer = new JsonObject { ["error"] = e.Message }; }
                catch (JinjaException e) { answer = new JsonObject { ["error"] = $"{chat.Origin}: {e.Message}" }; }
                failed |= answer.ContainsKey("error");
                lines.Add(answer.ToJsonString(Json));
            }
            string? outPath = result.GetValue(output);
            if (outPath is null) foreach (var l in lines) result.InvocationConfiguration.Output.WriteLine(l);
            else
            {
                File.WriteAllLines(outPath + ".tmp", lines);
                File.Move(outPath + ".tmp", outPath, overwrite: true);
            }
            return failed ? 1 : 0;
        }));
        return command;
    }

    sealed class InputException(string message) : Exception(message);

    static JsonObject RenderLine(ChatTemplate chat, HfTokenizer tokenizer, string line, string where)
    {
        JsonObject o;
        try { o = JsonNode.Parse(line) as JsonObject ?? throw new InputException($"{where}: expected a JSON object"); }
        catch (JsonException e) { throw new InputException($"{where}: invalid JSON ({e.Message})"); }
        if (o["messages"] is not JsonArray messages) throw new InputException($"{where}: messages: expected a list of {{\"role\", \"content\"}} objects");
        bool addGenerationPrompt = o["add_generation_prompt"] switch
        {
            null => false,
            JsonValue v when v.TryGetValue<bool>(out bool b) => b,
            _ => throw new InputException($"{where}: add_generation_prompt: expected true or false"),
        };
        var extra = new Dictionary<string, object?>();
        if (o["chat_template_kwargs"] is JsonObject kwargs) foreach (var (k, v) in kwargs) extra[k] = v;
        else if (o["chat_template_kwargs"] is not null) throw new InputException($"{where}: chat_template_kwargs: expected an object");
        foreach (var key in new[] { "tools", "documents" })
            if (o[key] is { } value) extra[key] = value;
        string text = chat.RenderJson(messages, addGenerationPrompt, extra);
        var ids = tokenizer.Encode(text, addSpecialTokens: false);
        return new JsonObject { ["text"] = text, ["input_ids"] = new JsonArray(ids.Select(i => (JsonNode)i).ToArray()) };
    }
}
