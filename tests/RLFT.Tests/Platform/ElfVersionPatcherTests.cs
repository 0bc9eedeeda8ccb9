using Rlft.Build;

namespace Rlft.Tests.Platform;

public class ElfVersionPatcherTests
{
    [Fact]
    public void Sets_the_weak_flag_on_the_glibcxx_3_4_32_requirement_only()
    {
        var elf = SyntheticElf.Build(out var flags, ("GLIBCXX_3.4.30", 0), ("GLIBCXX_3.4.32", 0), ("CXXABI_1.3", 0));
        var before = (byte[])elf.Clone();

        Assert.Equal(ElfPatchOutcome.Patched, ElfVersionPatcher.Patch(elf));

        Assert.Equal(2, elf[flags[1]]);
        Assert.Equal(0, elf[flags[0]]);
        Assert.Equal(0, elf[flags[2]]);
        // Exactly one byte changed.
        Assert.Equal(1, elf.Zip(before).Count(p => p.Item1 != p.Item2));
    }

    [Fact]
    public void Is_idempotent()
    {
        var elf = SyntheticElf.Build(("GLIBCXX_3.4.32", 0));
        Assert.Equal(ElfPatchOutcome.Patched, ElfVersionPatcher.Patch(elf));
        var once = (byte[])elf.Clone();
        Assert.Equal(ElfPatchOutcome.AlreadyWeak, ElfVersionPatcher.Patch(elf));
        Assert.Equal(once, elf);
    }

    [Fact]
    public void Keeps_other_flag_bits()
    {
        var elf = SyntheticElf.Build(out var flags, ("GLIBCXX_3.4.32", 0x1));
        ElfVersionPatcher.Patch(elf);
        Assert.Equal(0x3, elf[flags[0]]);
    }

    [Fact]
    public void Is_a_no_op_when_the_requirement_is_absent()
    {
        var elf = SyntheticElf.Build(("GLIBCXX_3.4.30", 0), ("CXXABI_1.3", 0));
        var before = (byte[])elf.Clone();
        Assert.Equal(ElfPatchOutcome.RequirementAbsent, ElfVersionPatcher.Patch(elf));
        Assert.Equal(before, elf);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(10)]
    [InlineData(63)]
    public void Refuses_truncated_headers(int length)
    {
        var e = Assert.Throws<ElfPatchException>(() => ElfVersionPatcher.Patch(new byte[length]));
        Assert.Contains("not an ELF file", e.Message);
    }

    [Fact]
    public void Refuses_garbage()
    {
        var garbage = Enumerable.Range(0, 4096).Select(i => (byte)(i * 31 + 7)).ToArray();
        var e = Assert.Throws<ElfPatchException>(() => ElfVersionPatcher.Patch(garbage));
        Assert.Contains("bad magic", e.Message);
    }

    [Fact]
    public void Refuses_an_elf_cut_before_its_section_headers()
    {
        var elf = SyntheticElf.Build(("GLIBCXX_3.4.32", 0));
        var cut = elf[..(elf.Length - 100)];
        var e = Assert.Throws<ElfPatchException>(() => ElfVersionPatcher.Patch(cut));
        Assert.Contains("truncated", e.Message);
    }

    [Fact]
    public void Refuses_32_bit_and_big_endian_files()
    {
        var elf = SyntheticElf.Build(("GLIBCXX_3.4.32", 0));
        var e32 = (byte[])elf.Clone(); e32[4] = 1;
        var be = (byte[])elf.Clone(); be[5] = 2;
        Assert.Contains("ELF64", Assert.Throws<ElfPatchException>(() => ElfVersionPatcher.Patch(e32)).Message);
        Assert.Contains("little-endian", Assert.Throws<ElfPatchException>(() => ElfVersionPatcher.Patch(be)).Message);
    }

    [Fact]
    public void Refuses_a_version_name_outside_its_string_table()
    {
        var elf = SyntheticElf.Build(out var flags, ("GLIBCXX_3.4.32", 0));
        // vna_name sits 4 bytes after vna_flags; point it far away.
        BitConverter.GetBytes(100000u).CopyTo(elf, flags[0] + 4);
        Assert.Contains("string table", Assert.Throws<ElfPatchException>(() => ElfVersionPatcher.Patch(elf)).Message);
    }

    [Fact]
    public void Patching_a_file_keeps_its_timestamp_and_names_the_file_on_error()
    {
        string dir = Directory.CreateTempSubdirectory("rlft-elf").FullName;
        string path = Path.Combine(dir, "libLibTorchSharp.so");
        File.WriteAllBytes(path, SyntheticElf.Build(("GLIBCXX_3.4.32", 0)));
        var stamp = new DateTime(2024, 1, 2, 3, 4, 5, DateTimeKind.Utc);
        File.SetLastWriteTimeUtc(path, stamp);

        Assert.Equal(ElfPatchOutcome.Patched, ElfVersionPatcher.PatchFile(path));
        Assert.Equal(stamp, File.GetLastWriteTimeUtc(path));
        Assert.Equal(ElfPatchOutcome.AlreadyWeak, ElfVersionPatcher.PatchFile(path));
        Assert.Empty(Directory.GetFiles(dir, "*.tmp"));

        string bad = Path.Combine(dir, "bad.so");
        File.WriteAllText(bad, "hello");
        Assert.Contains("bad.so", Assert.Throws<ElfPatchException>(() => ElfVersionPatcher.PatchFile(bad)).Message);
        Directory.Delete(dir, true);
    }

    [Fact]
    public void The_shipped_library_in_this_test_output_is_patched()
    {
        // The build patched the copy next to this assembly; patching again must find it already weak.
        string lib = Directory.GetFiles(AppContext.BaseDirectory, "libLibTorchSharp.so", SearchOption.AllDirectories).First();
        var bytes = File.ReadAllBytes(lib);
        Assert.Equal(ElfPatchOutcome.AlreadyWeak, ElfVersionPatcher.Patch(bytes));
    }

    [Fact]
    public void The_nuget_cache_copy_is_left_untouched()
    {
        string home = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        var cached = Directory.Exists(home)
            ? Directory.GetFiles(Path.Combine(home, "torchsharp"), "libLibTorchSharp.so", SearchOption.AllDirectories).FirstOrDefault(p => p.Contains("linux-x64"))
            : null;
        Assert.SkipWhen(cached is null, "no TorchSharp package in the NuGet cache");
        var bytes = File.ReadAllBytes(cached!);
        // The cache keeps the original (strong) requirement: patching a copy in memory still has work to do.
        Assert.Equal(ElfPatchOutcome.Patched, ElfVersionPatcher.Patch(bytes));
    }
}
