using System.Text;

namespace Rlft.Tests.Platform;

/// <summary>
/// Builds a minimal ELF64 little-endian image with a string table and a .gnu.version_r section
/// needing the given versions from libstdc++.so.6, laid out as the linker does.
/// </summary>
public static class SyntheticElf
{

    public static byte[] Build(params (string Version, ushort Flags)[] needs) => Build(out _, needs);

    /// <summary>Also returns the file offsets of each Vernaux's vna_flags.</summary>
    public static byte[] Build(out int[] flagsOffsets, params (string Version, ushort Flags)[] needs)
    {
        // String table: "\0libstdc++.so.6\0" + versions.
        var str = new MemoryStream();
        str.WriteByte(0);
        int fileName = (int)str.Length; WriteZ(str, "libstdc++.so.6");
        var names = needs.Select(n => { int at = (int)str.Length; WriteZ(str, n.Version); return at; }).ToArray();
        var shstr = new MemoryStream();
        shstr.WriteByte(0);
        int nDynstr = (int)shstr.Length; WriteZ(shstr, ".dynstr");
        int nVerneed = (int)shstr.Length; WriteZ(shstr, ".gnu.version_r");
        int nShstr = (int)shstr.Length; WriteZ(shstr, ".shstrtab");

        // .gnu.version_r: one Verneed then its Vernaux entries.
        var ver = new MemoryStream();
        var w = new BinaryWriter(ver);
        w.Write((ushort)1); w.Write((ushort)needs.Length); w.Write((uint)fileName); w.Write((uint)16); w.Write((uint)0);
        for (int i = 0; i < needs.Length; i++)
        {
            w.Write(0x0u); w.Write(needs[i].Flags); w.Write((ushort)(i + 2)); w.Write((uint)names[i]);
            w.Write((uint)(i == needs.Length - 1 ? 0 : 16));
        }

        const int headerSize = 64;
        int dynstrOff = headerSize;
        int verOff = dynstrOff + (int)str.Length;
        int shstrOff = verOff + (int)ver.Length;
        int shOff = Align(shstrOff + (int)shstr.Length, 8);
        var file = new byte[shOff + 4 * 64];
        var f = new BinaryWriter(new MemoryStream(file));
        f.Write(new byte[] { 0x7f, (byte)'E', (byte)'L', (byte)'F', 2, 1, 1, 0 });
        f.Seek(0x10, SeekOrigin.Begin); f.Write((ushort)3); f.Write((ushort)62); f.Write(1u);
        f.Seek(0x28, SeekOrigin.Begin); f.Write((ulong)shOff);
        f.Seek(0x34, SeekOrigin.Begin); f.Write((ushort)64); f.Write((ushort)0); f.Write((ushort)0);
        f.Write((ushort)64); f.Write((ushort)4); f.Write((ushort)3);
        Array.Copy(str.ToArray(), 0, file, dynstrOff, str.Length);
        Array.Copy(ver.ToArray(), 0, file, verOff, ver.Length);
        Array.Copy(shstr.ToArray(), 0, file, shstrOff, shstr.Length);
        Section(file, shOff + 64, nDynstr, 3, dynstrOff, (int)str.Length, 0, 0);
        Section(file, shOff + 128, nVerneed, 0x6ffffffe, verOff, (int)ver.Length, 1, 1);
        Section(file, shOff + 192, nShstr, 3, shstrOff, (int)shstr.Length, 0, 0);
        flagsOffsets = Enumerable.Range(0, needs.Length).Select(i => verOff + 16 + i * 16 + 4).ToArray();
        return file;
    }

    static void Section(byte[] file, int at, int name, uint type, int offset, int size, uint link, uint info)
    {
        var s = new BinaryWriter(new MemoryStream(file, at, 64));
        s.Write((uint)name); s.Write(type); s.Write(0UL); s.Write(0UL);
        s.Write((ulong)offset); s.Write((ulong)size); s.Write(link); s.Write(info); s.Write(1UL); s.Write(0UL);
    }

    static void WriteZ(Stream s, string text) { var b = Encoding.ASCII.GetBytes(text); s.Write(b); s.WriteByte(0); }
    static int Align(int x, int a) => (x + a - 1) / a * a;
}
