using Rlft.Host.Commands;

// Before anything loads libtorch (the library's module initializer does the same for other hosts).
Rlft.Policy.Runtime.OpenMpWaits.Prefer();
return Cli.Run(args);
