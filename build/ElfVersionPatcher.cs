// Marks one symbol-version requirement of an ELF64 shared library as weak (VER_FLG_WEAK).
//
// Why: TorchSharp 0.107's libLibTorchSharp.so was linked by GCC 13 and requires GLIBCXX_3.4.32 from
// libstdc++.so.6, which Debian 12 (GCC 12, up to GLIBCXX_3.4.30) lacks. The only symbol bound to that
// version is `_ZSt21ios_base_library_initv`, a marker nothing calls. A weak requirement lets the loader
// accept the library. The build patches each output copy (never the NuGet cache).
//
// This file is compiled twice: by MSBuild as an inline task (build/Rlft.Build.targets) and by the
// test project (with RLFT_ELF_PATCHER_NO_TASK defined) so the logic is tested directly.
using System;
using System.IO;
using System.Text;

namespace Rlft.Build
{
    public enum ElfPatchOutcome { RequirementAbsent, AlreadyWeak, Patched }

    public sealed class ElfPatchException : Exception
    {
        public ElfPatchException(string message) : base(message) { }
    }

    public static class ElfVersionPatcher
    {
        public const string DefaultVersion = "GLIBCXX_3.4.32";
        const uint ShtGnuVerneed = 0x6ffffffe;
        const ushort VerFlgWeak = 0x2;

        /// <summary>Patches the file in place, keeping its timestamp; returns what it did.</summary>
        public static ElfPatchOutcome PatchFile(string path, string version = DefaultVersion)
        {
            if (!File.Exists(path)) throw new ElfPatchException($"{path}: file not found");
            var stamp = File.GetLastWriteTimeUtc(path);
            byte[] bytes = File.ReadAllBytes(path);
            ElfPatchOutcome outcome;
            try { outcome = Patch(bytes, version); }
            catch (ElfPatchException e) { throw new ElfPatchException($"{path}: {e.Message}"); }
            if (outcome == ElfPatchOutcome.Patched)
            {
                // Write to a sibling file, then move it over: a crash never leaves a half-written library.
                string tmp = path + ".rlft-patch.tmp";
                File.WriteAllBytes(tmp, bytes);
                File.Replace(tmp, path, null);
                File.SetLastWriteTimeUtc(path, stamp);
            }
            return outcome;
        }

        /// <summary>Patches an ELF64 little-endian image in memory.</summary>
        public static ElfPatchOutcome Patch(byte[] elf, string version = DefaultVersion)
        {
            if (elf.Length < 64) throw new ElfPatchException($"not an ELF file: {elf.Length} bytes is shorter than an ELF64 header");
            if (elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F')
                throw new ElfPatchException("not an ELF file: bad magic number");
            if (elf[4] != 2) throw new ElfPatchException($"unexpected ELF class {elf[4]} (expected 2, ELF64)");
            if (elf[5] != 1) throw new ElfPatchException($"unexpected ELF data encoding {elf[5]} (expected 1, little-endian)");

            ulong shoff = U64(elf, 0x28);
            int shentsize = U16(elf, 0x3A);
            int shnum = U16(elf, 0x3C);
            if (shoff == 0 || shnum == 0) throw new ElfPatchException("ELF file has no section headers");
            if (shentsize < 64) throw new ElfPatchException($"unexpected section header size {shentsize} (expected 64)");
            Check(elf, shoff, (ulong)shentsize * (ulong)shnum, "section header table");

            bool found = false, alreadyWeak = false, patched = false;
            for (int s = 0; s < shnum; s++)
            {
                long sh = (long)shoff + (long)s * shentsize;
                if (U32(elf, sh + 4) != ShtGnuVerneed) continue;
                found = true;
                ulong offset = U64(elf, sh + 0x18), size = U64(elf, sh + 0x20);
                uint link = U32(elf, sh + 0x28), count = U32(elf, sh + 0x2C);
                Check(elf, offset, size, ".gnu.version_r section");
                if (link >= shnum) throw new ElfPatchException($".gnu.version_r links to section {link}, but there are only {shnum}");
                long strSh = (long)shoff + (long)link * shentsize;
                ulong strOff = U64(elf, strSh + 0x18), strSize = U64(elf, strSh + 0x20);
                Check(elf, strOff, strSize, "version string table");

                long need = (long)offset;
                for (uint n = 0; n < count; n++)
                {
                    Within(need, 16, offset, size, "Verneed entry");
                    int cnt = U16(elf, need + 2);
                    uint aux = U32(elf, need + 8), next = U32(elf, need + 12);
                    long a = need + aux;
                    for (int k = 0; k < cnt; k++)
                    {
                        Within(a, 16, offset, size, "Vernaux entry");
                        ushort flags = (ushort)U16(elf, a + 4);
                        uint nameIndex = U32(elf, a + 8), anext = U32(elf, a + 12);
                        string name = CString(elf, strOff, strSize, nameIndex);
                        if (name == version)
                        {
                            if ((flags & VerFlgWeak) != 0) alreadyWeak = true;
                            else
                            {
                                flags |= VerFlgWeak;
                                elf[a + 4] = (byte)(flags & 0xff);
                                elf[a + 5] = (byte)(flags >> 8);
                                patched = true;
                            }
                        }
                        if (anext == 0) break;
                        a += anext;
                    }
                    if (next == 0) break;
                    need += next;
                }
            }
            if (!found) return ElfPatchOutcome.RequirementAbsent;
            if (patched) return ElfPatchOutcome.Patched;
            return alreadyWeak ? ElfPatchOutcome.AlreadyWeak : ElfPatchOutcome.RequirementAbsent;
        }

        static void Check(byte[] elf, ulong offset, ulong size, string what)
        {
            if (offset > (ulong)elf.Length || size > (ulong)elf.Length - offset)
                throw new ElfPatchException($"truncated or corrupt ELF: {what} at offset {offset} (+{size} bytes) lies outside the {elf.Length}-byte file");
        }

        static void Within(long pos, long len, ulong offset, ulong size, string what)
        {
            if (pos < (long)offset || pos + len > (long)(offset + size))
                throw new ElfPatchException($"corrupt ELF: {what} at offset {pos} lies outside .gnu.version_r");
        }

        static string CString(byte[] elf, ulong tableOffset, ulong tableSize, uint index)
        {
            if (index >= tableSize) throw new ElfPatchException($"corrupt ELF: version name index {index} outside its string table");
            long start = (long)tableOffset + index, end = start;
            long limit = (long)(tableOffset + tableSize);
            while (end < limit && elf[end] != 0) end++;
            if (end >= limit) throw new ElfPatchException("corrupt ELF: unterminated version name");
            return Encoding.ASCII.GetString(elf, (int)start, (int)(end - start));
        }

        static int U16(byte[] b, long o) { Bounds(b, o, 2); return b[o] | (b[o + 1] << 8); }
        static uint U32(byte[] b, long o) { Bounds(b, o, 4); return BitConverter.ToUInt32(b, (int)o); }
        static ulong U64(byte[] b, long o) { Bounds(b, o, 8); return BitConverter.ToUInt64(b, (int)o); }
        static void Bounds(byte[] b, long o, int n)
        {
            if (o < 0 || o + n > b.Length) throw new ElfPatchException($"truncated ELF: read of {n} bytes at offset {o} past the end ({b.Length} bytes)");
        }
    }

#if !RLFT_ELF_PATCHER_NO_TASK
    /// <summary>MSBuild task: patch every given libLibTorchSharp.so copy.</summary>
    public sealed class PatchGlibcxxRequirement : Microsoft.Build.Utilities.Task
    {
        [Microsoft.Build.Framework.Required]
        public Microsoft.Build.Framework.ITaskItem[] Files { get; set; } = Array.Empty<Microsoft.Build.Framework.ITaskItem>();
        public string Version { get; set; } = ElfVersionPatcher.DefaultVersion;

        public override bool Execute()
        {
            foreach (var item in Files)
            {
                string path = item.GetMetadata("FullPath");
                try
                {
                    var outcome = ElfVersionPatcher.PatchFile(path, Version);
                    Log.LogMessage(Microsoft.Build.Framework.MessageImportance.Normal, $"RLFT: {path}: {outcome} ({Version})");
                }
                catch (Exception e)
                {
                    Log.LogError($"RLFT: cannot patch the {Version} requirement of libLibTorchSharp.so: {e.Message}");
                }
            }
            return !Log.HasLoggedErrors;
        }
    }
#endif
}
