using Rlft.Policy.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Rlft.Tests.Platform;

public class TorchLoadsTests
{
    [Fact]
    public void Matmul_and_softmax_give_known_values()
    {
        using var scope = NewDisposeScope();
        var a = tensor(new float[] { 1, 2, 3, 4, 5, 6 }, [2, 3]);
        var b = tensor(new float[] { 7, 8, 9, 10, 11, 12 }, [3, 2]);
        var c = a.matmul(b);
        Assert.Equal(new float[] { 58, 64, 139, 154 }, c.data<float>().ToArray());

        var s = nn.functional.softmax(tensor(new float[] { 0, MathF.Log(3) }), 0).data<float>().ToArray();
        Assert.Equal(0.25f, s[0], 6);
        Assert.Equal(0.75f, s[1], 6);
    }

    [Fact]
    public void Autograd_computes_a_known_gradient()
    {
        using var scope = NewDisposeScope();
        var x = tensor(new float[] { 1, 2, 3 }, requires_grad: true);
        (x * x * x).sum().backward();   // d/dx x^3 = 3x^2
        Assert.Equal(new float[] { 3, 12, 27 }, x.grad!.data<float>().ToArray());
    }

    [Fact]
    public void Runtime_report_names_versions_and_backend()
    {
        var r = TorchRuntime.Describe();
        Assert.Equal("cpu", r.Backend);
        Assert.StartsWith("2.", r.LibTorchVersion);
        Assert.True(r.Threads >= 1);
        Assert.False(r.CudaAvailable && r.CudaDeviceCount == 0);
    }

    [Fact]
    public void Device_selection_refuses_cuda_without_a_gpu_and_unknown_names()
    {
        Assert.Equal(DeviceType.CPU, TorchRuntime.ResolveDevice("cpu").type);
        Assert.Equal(cuda.is_available() ? DeviceType.CUDA : DeviceType.CPU, TorchRuntime.ResolveDevice("auto").type);
        if (!cuda.is_available())
            Assert.Contains("CUDA is not available", Assert.Throws<ArgumentException>(() => TorchRuntime.ResolveDevice("cuda")).Message);
        Assert.Contains("unknown device 'tpu'", Assert.Throws<ArgumentException>(() => TorchRuntime.ResolveDevice("tpu")).Message);
    }
}
