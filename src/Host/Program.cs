using Rlft.Host.Commands;

return Cli.Run(args);
