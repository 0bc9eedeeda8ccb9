# RLFT with the CUDA libtorch (TorchSharp-cuda-linux, which carries the CUDA runtime libraries it needs; the
# NVIDIA driver comes from the host through the NVIDIA container toolkit). Build from the repository root:
#   docker build -f deploy/docker/cuda.Dockerfile -t rlft:cuda .
#   docker run --gpus all rlft:cuda info
# Needs a NuGet feed that serves TorchSharp-cuda-linux (nuget.org does).

# --- build: the SDK publishes the CLI (framework-dependent, linux-x64) to /app ---
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
COPY global.json Directory.Build.props Directory.Build.targets Directory.Packages.props README.md LICENSE ./
COPY build/ build/
COPY src/ src/
COPY hocon/ hocon/
# No .git in the build context: SourceLink has no repository to describe, so it is off here.
RUN dotnet publish src/Host/Host.csproj -c Release -o /app \
      -p:RlftTorchBackend=cuda -p:EnableSourceLink=false -p:PublishRepositoryUrl=false

# --- runtime: ASP.NET Core runtime (the rater page, dashboard, health and bootstrap endpoints are Kestrel) ---
FROM mcr.microsoft.com/dotnet/aspnet:10.0 AS runtime
WORKDIR /app
COPY --from=build /app ./
ENV NVIDIA_VISIBLE_DEVICES=all NVIDIA_DRIVER_CAPABILITIES=compute,utility
# Runs and the feedback journal go here (a volume in deploy/k8s); owned by the image's non-root user.
RUN mkdir -p /var/lib/rlft/runs && chown -R $APP_UID /var/lib/rlft
USER $APP_UID
# remoting, management (cluster bootstrap), health probes, rater page, dashboard
EXPOSE 4053 8558 8080 5081 8090
ENTRYPOINT ["/app/rlft"]
CMD ["info"]
